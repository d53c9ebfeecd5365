"""Windows of motion seen from one frame: re-centred on that frame's root and turned to face -Y,
as the LaFAN1 protocol (Harvey et al. 2020) and the in-betweener see them."""
from __future__ import annotations

import numpy as np

from . import rotations as rot
from .canonical import heading_yaw_at
from .clip import Motion

# The LaFAN1 benchmark's training windows, from which it takes the L2P statistics.
LAFAN_TRAIN_WINDOW, LAFAN_TRAIN_OFFSET = 50, 20


def face_forward(motion: Motion, frame: int) -> tuple[Motion, np.ndarray, float]:
    """(the motion moved so that at `frame` its root is over the origin and it faces -Y,
    that frame's root XY, its yaw); `restore` undoes it."""
    xy = motion.root_position[frame, :2].copy()
    yaw = heading_yaw_at(motion, frame)
    return _turn(motion, -yaw, -xy), xy, yaw


def face_forward_about_mean(motion: Motion, frame: int) -> Motion:
    """The LaFAN1 benchmark's framing (its `get_lafan1_set`): the window moved so that its mean
    root XY is at the origin, then turned about the origin to face -Y at `frame`."""
    return _turn(motion, -heading_yaw_at(motion, frame), -motion.root_position[:, :2].mean(axis=0))


def lafan_windows(motion: Motion, window: int, offset: int, frame: int) -> list[Motion]:
    """Sliding windows as the LaFAN1 benchmark cuts them (`get_lafan1_set`): one every `offset`
    frames while start + window < the clip's frames (so a clip of exactly `window` frames gives
    none), each framed by `face_forward_about_mean` at `frame`."""
    return [face_forward_about_mean(motion.trim(s, s + window), frame)
            for s in range(0, motion.num_frames - window, offset)]


def position_stats(windows: list[Motion]) -> tuple[np.ndarray, np.ndarray]:
    """(J, 3) mean and standard deviation of world joint positions over every frame of the
    windows: the L2P normalisation of the LaFAN1 benchmark (`get_train_stats`)."""
    pos = np.concatenate([w.positions() for w in windows])
    return pos.mean(axis=0), pos.std(axis=0)


def restore(motion: Motion, xy: np.ndarray, yaw: float) -> Motion:
    """Inverse of face_forward."""
    turned = _turn(motion, yaw, np.zeros(2))
    root = turned.root_position.copy()
    root[:, :2] += xy
    return Motion(motion.skeleton, motion.fps, root, turned.local_rotations)


def _turn(motion: Motion, yaw: float, shift_xy: np.ndarray) -> Motion:
    q = rot.yaw_rotation(np.array(yaw))
    root = motion.root_position.copy()
    root[:, :2] += shift_xy
    root = rot.rotate(q, root)
    local = motion.local_rotations.copy()
    local[:, 0] = rot.multiply(q, local[:, 0])
    return Motion(motion.skeleton, motion.fps, root, local)
