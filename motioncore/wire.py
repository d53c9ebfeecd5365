"""The request/response form of a canonical motion (JSON-ready dicts), shared by the server,
the add-on's client and the embedded mode, so all of them carry the same numbers.

{"format": 1, "fps": f, "joint_names": [...21 canonical names...],
 "root_position": (T, 3) metres Z up, rounded to 1 micrometre,
 "local_rotations": (T, 21, 4) wxyz, rounded to 1e-7}
"""
from __future__ import annotations

import numpy as np

from . import canonical
from .clip import Motion

WIRE_FORMAT = 1


def to_wire(motion: Motion) -> dict:
    return {"format": WIRE_FORMAT, "fps": float(motion.fps), "joint_names": list(motion.skeleton.names),
            "root_position": np.round(motion.root_position, 6).tolist(),
            "local_rotations": np.round(motion.local_rotations, 7).tolist()}


def from_wire(data: dict) -> Motion:
    """Dict -> canonical Motion; raises ValueError naming what is wrong."""
    if data.get("format", WIRE_FORMAT) != WIRE_FORMAT:
        raise ValueError(f"motion format {data.get('format')!r}; expected {WIRE_FORMAT}")
    names = data.get("joint_names", list(canonical.CANONICAL_JOINTS))
    if tuple(names) != canonical.CANONICAL_JOINTS:
        raise ValueError(f"joints must be the canonical {list(canonical.CANONICAL_JOINTS)}")
    try:
        root = np.array(data["root_position"], dtype=float)
        q = np.array(data["local_rotations"], dtype=float)
        fps = float(data["fps"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"malformed motion: {e}") from None
    if q.ndim != 3 or q.shape[1:] != (len(names), 4):
        raise ValueError(f"local_rotations must be (T, {len(names)}, 4), got {q.shape}")
    norms = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(~np.isfinite(norms)) or np.any(norms < 1e-6):
        raise ValueError("local_rotations holds a zero or non-finite quaternion")
    return Motion(canonical.canonical_skeleton(), fps, root, q / norms)
