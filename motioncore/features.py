"""The model's per-frame motion features on the canonical skeleton, and their exact inverse.

Heading-invariant and root-relative (in the spirit of HumanML3D), so the model sees the same
numbers for a walk whichever way it faces. Per frame, in this order (see LAYOUT):

  root_yaw_velocity   1    change of facing since the previous frame, radians (0 at frame 0)
  root_velocity       2    root XY displacement since the previous frame, in the previous
                           frame's heading (metres; x: character's left, y: backwards)
  root_height         1    root Z, metres
  root_rotation       6    root rotation with the facing removed, 6D
  local_rotations   120    joints 1..20 relative to their parents, 6D
  local_positions    60    joints 1..20 minus the root, in the heading frame, metres
  joint_velocities   60    joints 1..20 displacement since the previous frame, heading frame
  foot_contacts       4    1.0 where Foot_L, Toes_L, Foot_R, Toes_R are planted

`from_features` rebuilds the motion from the root and rotation parts alone (velocities are
integrated), so it is exact up to float error; the position, velocity and contact parts are
redundant help for learning and for foot clean-up.
"""
from __future__ import annotations

import numpy as np

from . import rotations as rot
from .canonical import CANONICAL_JOINTS, FEET, canonical_skeleton, heading_yaw
from .clip import Motion

NUM_JOINTS = len(CANONICAL_JOINTS)
# Planted: slower than this (m/s) and lower than this above the clip's lowest point (m).
CONTACT_SPEED = 0.25
CONTACT_HEIGHT = 0.06


class FeatureLayout:
    """Slices of the feature vector; the single source of truth for its layout."""

    PARTS = (("root_yaw_velocity", 1), ("root_velocity", 2), ("root_height", 1),
             ("root_rotation", 6), ("local_rotations", 6 * (NUM_JOINTS - 1)),
             ("local_positions", 3 * (NUM_JOINTS - 1)), ("joint_velocities", 3 * (NUM_JOINTS - 1)),
             ("foot_contacts", len(FEET)))

    def __init__(self) -> None:
        start = 0
        for name, width in self.PARTS:
            setattr(self, name, slice(start, start + width))
            start += width
        self.size = start


LAYOUT = FeatureLayout()


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def foot_contacts(positions: np.ndarray, fps: float) -> np.ndarray:
    """(T, 21, 3) canonical positions -> (T, 4) contact flags for FEET (1.0 planted)."""
    sk = canonical_skeleton()
    idx = [sk.index(n) for n in FEET]
    feet = positions[:, idx]
    speed = np.zeros(feet.shape[:2])
    speed[1:] = np.linalg.norm(feet[1:] - feet[:-1], axis=-1) * fps
    speed[0] = speed[1] if len(feet) > 1 else 0.0
    floor = np.min(feet[..., 2], axis=0, keepdims=True)
    return ((speed < CONTACT_SPEED) & (feet[..., 2] - floor < CONTACT_HEIGHT)).astype(float)


# Height of a planted joint over the floor in the motion data (metres; medians over the
# committed real clips, tests/data): where grounded canonical motion has its feet.
PLANTED_HEIGHT = {"Foot": 0.12, "Toes": 0.045}


def ground_offset(motion: Motion) -> float:
    """How far to raise a canonical motion (metres, one value for the clip) so that its planted
    feet stand as high over z = 0 as planted feet do in the data: motion read from a rig of other
    proportions can float or sink a little, and the models were trained on grounded motion."""
    pos = motion.positions()
    planted = foot_contacts(pos, motion.fps) > 0
    sk = canonical_skeleton()
    gaps = [PLANTED_HEIGHT[name.split("_")[0]] - pos[planted[:, k], sk.index(name), 2] for k, name in enumerate(FEET)]
    gaps = np.concatenate(gaps)
    return float(np.median(gaps)) if len(gaps) else 0.0


def start_pose(motion: Motion) -> tuple[np.ndarray, float]:
    """(root XY (2,), facing yaw) at frame 0: what from_features needs to put a motion back
    exactly where it was."""
    pos = motion.positions()
    return motion.root_position[0, :2].copy(), float(heading_yaw(pos[:1])[0])


def to_features(motion: Motion) -> np.ndarray:
    """Canonical Motion -> (T, LAYOUT.size) float32 features."""
    sk = canonical_skeleton()
    if not motion.skeleton.same_shape(sk):
        raise ValueError("features need a motion on the canonical skeleton (see canonical.to_canonical)")
    T = motion.num_frames
    _, pos = motion.world()
    yaw = heading_yaw(pos)  # (T,)
    unturn = rot.yaw_rotation(-yaw)  # (T, 4)
    root = motion.root_position

    f = np.zeros((T, LAYOUT.size))
    f[1:, LAYOUT.root_yaw_velocity] = _wrap(np.diff(yaw))[:, None]
    step = np.zeros((T, 3))
    step[1:] = root[1:] - root[:-1]
    prev_unturn = np.concatenate([unturn[:1], unturn[:-1]])
    f[:, LAYOUT.root_velocity] = rot.rotate(prev_unturn, step)[:, :2]
    f[:, LAYOUT.root_height] = root[:, 2:3]
    root_rel = rot.multiply(unturn, motion.local_rotations[:, 0])
    f[:, LAYOUT.root_rotation] = rot.to_6d(root_rel)
    f[:, LAYOUT.local_rotations] = rot.to_6d(motion.local_rotations[:, 1:]).reshape(T, -1)
    rel = rot.rotate(unturn[:, None], pos[:, 1:] - root[:, None])
    f[:, LAYOUT.local_positions] = rel.reshape(T, -1)
    vel = np.zeros((T, NUM_JOINTS - 1, 3))
    vel[1:] = rot.rotate(unturn[1:, None], pos[1:, 1:] - pos[:-1, 1:])
    f[:, LAYOUT.joint_velocities] = vel.reshape(T, -1)
    f[:, LAYOUT.foot_contacts] = foot_contacts(pos, motion.fps)
    return f.astype(np.float32)


def from_features(features: np.ndarray, fps: float, start_xy: np.ndarray | None = None,
                  start_yaw: float = 0.0) -> Motion:
    """(T, LAYOUT.size) features -> canonical Motion.

    The root starts at start_xy (default the origin) facing start_yaw (default -Y). Rotation
    parts need not be exact 6D: Gram-Schmidt turns any network output into rotations.
    """
    f = np.asarray(features, dtype=float)
    if f.ndim != 2 or f.shape[1] != LAYOUT.size:
        raise ValueError(f"features must be (T, {LAYOUT.size}), got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or inf")
    T = f.shape[0]
    yaw = start_yaw + np.cumsum(f[:, LAYOUT.root_yaw_velocity][:, 0])
    turn = rot.yaw_rotation(yaw)
    prev_turn = np.concatenate([turn[:1], turn[:-1]])
    step = np.zeros((T, 3))
    step[:, :2] = f[:, LAYOUT.root_velocity]
    xy = np.cumsum(rot.rotate(prev_turn, step)[:, :2], axis=0)
    if start_xy is not None:
        xy += np.asarray(start_xy, dtype=float)[:2]
    root = np.concatenate([xy, f[:, LAYOUT.root_height]], axis=1)
    q = np.empty((T, NUM_JOINTS, 4))
    q[:, 0] = rot.multiply(turn, rot.from_6d(f[:, LAYOUT.root_rotation]))
    q[:, 1:] = rot.from_6d(f[:, LAYOUT.local_rotations].reshape(T, NUM_JOINTS - 1, 6))
    return Motion(canonical_skeleton(), fps, root, rot.make_continuous(q))
