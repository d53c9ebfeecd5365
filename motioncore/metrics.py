"""Motion quality measures on canonical motion (numpy; shared by training, evaluation and
benchmarks)."""
from __future__ import annotations

import numpy as np

from motioncore import canonical, features
from motioncore import rotations as rot
from motioncore.clip import Motion


def local_positions(motion: Motion) -> np.ndarray:
    """(T, J, 3) joints relative to the root's ground point, facing removed: what MPJPE
    compares, so a tokenizer is not charged for drift of the integrated root path."""
    pos = motion.positions()
    unturn = rot.yaw_rotation(-canonical.heading_yaw(pos))[:, None]
    return rot.rotate(unturn, pos - pos[:, :1] * np.array([1.0, 1.0, 0.0]))


def mpjpe(a: Motion, b: Motion) -> float:
    """Mean per-joint position error in metres between two motions of equal length."""
    n = min(a.num_frames, b.num_frames)
    return float(np.linalg.norm(local_positions(a)[:n] - local_positions(b)[:n], axis=-1).mean())


def foot_skating(motion: Motion, height: float = features.CONTACT_HEIGHT) -> float:
    """Mean horizontal speed (m/s) of the support: in each frame with a foot joint near the floor
    (within `height` of the clip's lowest foot point), the slowest such joint. A real step always
    has a planted heel or toe, so this stays small; a pose sliding along the ground is charged its
    full speed. Frames with no foot near the floor (a run's flight) are left out."""
    pos = motion.positions()
    sk = motion.skeleton
    feet = pos[:, [sk.index(n) for n in canonical.FEET]]
    low = (feet[1:, :, 2] - feet[..., 2].min()) < height
    vel = np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1) * motion.fps
    support = np.where(low, vel, np.inf).min(axis=1)
    support = support[np.isfinite(support)]
    return float(support.mean()) if support.size else 0.0


def ground_penetration(motion: Motion, floor: float = 0.0) -> float:
    """Mean depth (m) of foot joints below the floor, over all frames and feet."""
    sk = motion.skeleton
    z = motion.positions()[:, [sk.index(n) for n in canonical.FEET], 2]
    return float(np.clip(floor - z, 0, None).mean())


def bone_length_spread(motion: Motion) -> float:
    """Largest change of any bone's length over the clip (m); 0 for a rigid skeleton."""
    pos = motion.positions()
    parents = np.array(motion.skeleton.parents[1:])
    lengths = np.linalg.norm(pos[:, 1:] - pos[:, parents], axis=-1)
    return float((lengths.max(0) - lengths.min(0)).max())


def body_speed(motion: Motion) -> float:
    """Mean speed (m/s) of the joints relative to the root, facing removed: how much the body
    itself moves, apart from travel. A pose sliding along a path scores near 0."""
    rel = local_positions(motion)
    rel = rel - rel[:, :1]
    return float(np.linalg.norm(np.diff(rel, axis=0), axis=-1).mean() * motion.fps)


def joint_acceleration(motion: Motion) -> np.ndarray:
    """(T - 2,) mean second difference of joint positions (m/frame^2) at frames 1..T-2."""
    p = motion.positions()
    return np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).mean(axis=-1)


def key_pop(motion: Motion, keys: np.ndarray) -> tuple[float, float]:
    """(acceleration at the inner keys, acceleration at the other frames between the keys): a
    pop at the keys shows as the first well above the second."""
    keys = np.asarray(keys)
    a = joint_acceleration(motion)
    between = np.setdiff1d(np.arange(1, keys[-1]), keys)
    return float(a[keys[1:-1] - 1].mean()), float(a[between - 1].mean())


def wrap_jump(motion: Motion) -> float:
    """Velocity jump across a loop's wrap (last frame into the first), over the clip's mean
    joint acceleration: near or below 1 is seamless."""
    p = motion.positions()
    jump = np.linalg.norm((p[1] - p[0]) - (p[-1] - p[-2]), axis=-1).mean()
    return float(jump / joint_acceleration(motion).mean())
