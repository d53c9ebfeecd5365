"""Differentiable forward kinematics of the canonical skeleton from model features (torch),
for losses measured in metres rather than in normalised feature units."""
from __future__ import annotations

import torch

from motioncore.canonical import CANONICAL_PARENTS, canonical_skeleton
from motioncore.features import LAYOUT, NUM_JOINTS


def matrix_from_6d(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3), columns from Gram-Schmidt (as motioncore.rotations)."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-1)


def positions(rot6d: torch.Tensor, root: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Forward kinematics of the canonical skeleton: (..., J, 6) local rotations (joint 0
    relative to the world), (..., 3) root positions, (J, 3) offsets -> (..., J, 3) positions."""
    mats = matrix_from_6d(rot6d)
    offsets = offsets.to(rot6d.dtype)
    world = [mats[..., 0, :, :]]
    pos = [root]
    for j in range(1, NUM_JOINTS):
        p = CANONICAL_PARENTS[j]
        pos.append(pos[p] + (world[p] @ offsets[j][:, None])[..., 0])
        world.append(world[p] @ mats[..., j, :, :])
    return torch.stack(pos, dim=-2)


class FeatureFK(torch.nn.Module):
    """Raw features (..., T, F) -> joint positions relative to the root, facing removed
    (..., T, J, 3) metres: what the local_positions feature part holds, now from rotations."""

    def __init__(self):
        super().__init__()
        self.register_buffer("offsets", torch.tensor(canonical_skeleton().offsets, dtype=torch.float32),
                             persistent=False)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        shape = feats.shape[:-1]
        rots = torch.cat([feats[..., LAYOUT.root_rotation], feats[..., LAYOUT.local_rotations]], dim=-1)
        root = torch.zeros(*shape, 3, dtype=feats.dtype, device=feats.device)
        return positions(rots.reshape(*shape, NUM_JOINTS, 6), root, self.offsets)
