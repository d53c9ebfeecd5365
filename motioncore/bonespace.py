"""Canonical local rotations <-> an armature's pose-bone channels.

A rig's bone j has a rest orientation R_j (armature space, (3, 3), Blender's
`bone.matrix_local`), while canonical joint frames are world-aligned at rest. If the canonical
joint turns by world rotation C_j, the bone's posed orientation is C_j R_j, and Blender
composes pose bones as  posed_j = posed_parent (R_parent^-1 R_j) basis_j,  so

    basis_j = R_j^-1 (C_parent^-1 C_j) R_j = R_j^-1 L_j R_j      (L_j: canonical local)

and the root bone's location channel is R_0^-1 (root_position - rest_head_0).
"""
from __future__ import annotations

import numpy as np

from . import rotations as rot


def to_pose_channels(local_rotations: np.ndarray, root_position: np.ndarray,
                     rest_rotations: np.ndarray, root_rest_head: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(T, J, 4) canonical local wxyz, (T, 3) root metres, (J, 3, 3) bone rest orientations,
    (3,) root bone rest head -> (pose quaternions (T, J, 4) wxyz, sign-continuous; root
    location (T, 3) in the root bone's rest frame)."""
    r = rot.from_matrix(rest_rotations)  # (J, 4)
    basis = rot.multiply(rot.multiply(rot.conjugate(r), local_rotations), r)
    loc = rot.rotate(rot.conjugate(r[0]), root_position - root_rest_head)
    return rot.make_continuous(basis), loc


def from_pose_channels(pose_rotations: np.ndarray, root_location: np.ndarray,
                       rest_rotations: np.ndarray, root_rest_head: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of to_pose_channels: -> (canonical local (T, J, 4), root position (T, 3))."""
    r = rot.from_matrix(rest_rotations)
    local = rot.multiply(rot.multiply(r, pose_rotations), rot.conjugate(r))
    return local, rot.rotate(r[0], root_location) + root_rest_head
