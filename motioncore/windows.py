"""Windows of motion seen from one frame: re-centred on that frame's root and turned to face -Y,
as the LaFAN1 protocol (Harvey et al. 2020) and the in-betweener see them."""
from __future__ import annotations

import numpy as np

from . import rotations as rot
from .canonical import heading_yaw
from .clip import Motion


def face_forward(motion: Motion, frame: int) -> tuple[Motion, np.ndarray, float]:
    """(the motion moved so that at `frame` its root is over the origin and it faces -Y,
    that frame's root XY, its yaw); `restore` undoes it."""
    xy = motion.root_position[frame, :2].copy()
    yaw = float(heading_yaw(motion.positions()[frame: frame + 1])[0])
    return _turn(motion, -yaw, -xy), xy, yaw


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
