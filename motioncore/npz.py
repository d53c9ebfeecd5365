"""Motions as .npz (numpy arrays only, readable with allow_pickle=False)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .clip import Motion
from .skeleton import Skeleton

NPZ_VERSION = 1


def save_npz(path: str | Path, motion: Motion) -> None:
    """Write root_position (T, 3) m, local_rotations (T, J, 4) wxyz, fps, joint names,
    parents and offsets (J, 3) m; Z up. Written whole, then renamed into place."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez(tmp, version=NPZ_VERSION, fps=motion.fps, root_position=motion.root_position,
             local_rotations=motion.local_rotations, names=np.array(motion.skeleton.names),
             parents=np.array(motion.skeleton.parents), offsets=motion.skeleton.offsets)
    tmp.replace(path)


def load_npz(path: str | Path) -> Motion:
    with np.load(path, allow_pickle=False) as f:
        if int(f["version"]) != NPZ_VERSION:
            raise ValueError(f"{path}: npz motion version {int(f['version'])}, expected {NPZ_VERSION}")
        skeleton = Skeleton([str(n) for n in f["names"]], f["parents"].tolist(), f["offsets"])
        return Motion(skeleton, float(f["fps"]), f["root_position"], f["local_rotations"])
