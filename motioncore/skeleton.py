"""Skeletons and forward kinematics.

A skeleton is a tree of joints listed parents-first. Each joint has an offset: the position
of its origin in its parent's frame when the parent's local rotation is the identity (the
rest pose). Units are whatever the owner uses; DynamicPose keeps metres, Z up.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import rotations as rot


@dataclass(frozen=True)
class Skeleton:
    """names: J joint names; parents: J parent indices (-1 for the root, which is joint 0);
    offsets: (J, 3) rest offsets in the parent frame; end_sites: {joint index: (3,) offset}
    for BVH End Site markers, kept so files round-trip."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
        offsets = np.asarray(self.offsets, dtype=float)
        object.__setattr__(self, "offsets", offsets)
        n = len(self.names)
        if offsets.shape != (n, 3):
            raise ValueError(f"offsets must be ({n}, 3) for {n} joints, got {offsets.shape}")
        if len(self.parents) != n:
            raise ValueError(f"{len(self.parents)} parents for {n} joints")
        if n == 0 or self.parents[0] != -1:
            raise ValueError("joint 0 must be the root (parent -1)")
        for j, p in enumerate(self.parents[1:], start=1):
            if not 0 <= p < j:
                raise ValueError(f"joint {self.names[j]!r} has parent index {p}; "
                                 "joints must be listed parents-first")
        if len(set(self.names)) != n:
            dup = sorted({x for x in self.names if self.names.count(x) > 1})
            raise ValueError(f"duplicate joint names: {dup}")
        if not np.all(np.isfinite(offsets)):
            raise ValueError("skeleton offsets contain NaN or inf")

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint named {name!r}; joints are {list(self.names)}") from None

    def children(self, j: int) -> list[int]:
        return [c for c, p in enumerate(self.parents) if p == j]

    def scaled(self, factor: float) -> "Skeleton":
        return Skeleton(self.names, self.parents, self.offsets * factor,
                        {j: o * factor for j, o in self.end_sites.items()})

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions in the rest pose, root at the origin."""
        pos = np.zeros((len(self), 3))
        for j in range(1, len(self)):
            pos[j] = pos[self.parents[j]] + self.offsets[j]
        return pos

    def mirror_indices(self, left: str = "_L", right: str = "_R") -> np.ndarray:
        """(J,) index of each joint's left/right partner (itself for centre joints)."""
        out = np.arange(len(self))
        for j, name in enumerate(self.names):
            for a, b in ((left, right), (right, left)):
                if name.endswith(a):
                    partner = name[: -len(a)] + b
                    if partner in self.names:
                        out[j] = self.names.index(partner)
        return out

    def same_shape(self, other: "Skeleton", atol: float = 1e-6) -> bool:
        return (self.names == other.names and self.parents == other.parents
                and np.allclose(self.offsets, other.offsets, atol=atol))


def forward_kinematics(
    skeleton: Skeleton,
    local_rotations: np.ndarray,
    root_position: np.ndarray,
    local_translations: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """World rotations and positions of every joint.

    local_rotations: (T, J, 4) wxyz, each joint relative to its parent.
    root_position: (T, 3) world position of joint 0.
    local_translations: optional (T, J, 3) per-frame offsets replacing skeleton.offsets
        (BVH files that animate every joint's position channels); row 0 is ignored.
    Returns (world_rotations (T, J, 4), world_positions (T, J, 3)).
    """
    T, J = local_rotations.shape[:2]
    if J != len(skeleton):
        raise ValueError(f"rotations have {J} joints, skeleton has {len(skeleton)}")
    world_rot = np.empty((T, J, 4))
    world_pos = np.empty((T, J, 3))
    world_rot[:, 0] = local_rotations[:, 0]
    world_pos[:, 0] = root_position
    offsets = skeleton.offsets if local_translations is None else local_translations
    for j in range(1, J):
        p = skeleton.parents[j]
        off = offsets[j] if local_translations is None else offsets[:, j]
        world_pos[:, j] = world_pos[:, p] + rot.rotate(world_rot[:, p], np.broadcast_to(off, (T, 3)))
        world_rot[:, j] = rot.multiply(world_rot[:, p], local_rotations[:, j])
    return world_rot, world_pos


def local_from_world(skeleton: Skeleton, world_rotations: np.ndarray) -> np.ndarray:
    """Inverse of the rotation part of FK: (T, J, 4) world -> (T, J, 4) local."""
    local = np.empty_like(world_rotations)
    local[:, 0] = world_rotations[:, 0]
    for j in range(1, len(skeleton)):
        p = skeleton.parents[j]
        local[:, j] = rot.multiply(rot.conjugate(world_rotations[:, p]), world_rotations[:, j])
    return local
