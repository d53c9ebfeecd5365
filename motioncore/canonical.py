"""The canonical skeleton and the conversion of Bandai Namco BVH onto it.

Canonical skeleton (the model's and the add-on's common ground):
- 21 joints, Hips is the root; names as in the Bandai Namco dataset (see CANONICAL_JOINTS).
- Metres, Z up, the character faces -Y and its left hand is on +X (Blender's front view).
- Rest pose is a T-pose: spine and neck straight up, arms along +X (left) and -X (right),
  legs straight down, feet pointing forward (-Y).
- Every joint's rest frame is aligned with the world axes, so a local rotation is the turn
  away from the T-pose, and mirroring is a reflection of the quaternions.

Bandai BVH joints carry arbitrary rest frames (their zero-rotation pose is contorted). Each
Bandai joint gets a constant alignment rotation A so that the canonical world rotation is
`C = B * A` (B: Bandai world rotation); A is derived once from a real standing frame and
stored in canonical_skeleton.json beside this file (`derive_alignment` rebuilds it).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import rotations as rot
from .clip import Motion
from .skeleton import Skeleton, local_from_world

MODEL_FPS = 20.0  # frame rate of the model's features
CANONICAL_JOINTS = (
    "Hips", "Spine", "Chest", "Neck", "Head",
    "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L",
    "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R",
    "UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L",
    "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R",
)
CANONICAL_PARENTS = (-1, 0, 1, 2, 3, 2, 5, 6, 7, 2, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)
FEET = ("Foot_L", "Toes_L", "Foot_R", "Toes_R")
# What Edit may regenerate alone; the other joints (and, without Hips, the root) are kept.
BODY_PARTS = {
    "body": CANONICAL_JOINTS,
    "upper": ("Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L",
              "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R"),
    "legs": ("Hips", "UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L", "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R"),
}
# Source joints that may sit above Hips and carry nothing of their own.
PASS_THROUGH_JOINTS = ("joint_Root",)

_DATA_FILE = Path(__file__).with_name("canonical_skeleton.json")

# T-pose direction of each joint's bone towards its (first) child.
_TPOSE_DIRECTION = {
    "Spine": (0, 0, 1), "Neck": (0, 0, 1),
    "Shoulder_L": (1, 0, 0), "UpperArm_L": (1, 0, 0), "LowerArm_L": (1, 0, 0),
    "Shoulder_R": (-1, 0, 0), "UpperArm_R": (-1, 0, 0), "LowerArm_R": (-1, 0, 0),
    "UpperLeg_L": (0, 0, -1), "LowerLeg_L": (0, 0, -1), "Foot_L": (0, -1, 0),
    "UpperLeg_R": (0, 0, -1), "LowerLeg_R": (0, 0, -1), "Foot_R": (0, -1, 0),
}
# Joints with several children are set by an up bone and a left-right pair.
_FRAME_BY = {"Hips": ("Spine", "UpperLeg_L", "UpperLeg_R"),
             "Chest": ("Neck", "Shoulder_L", "Shoulder_R")}


class SkeletonMismatchError(ValueError):
    """A skeleton whose joints cannot be mapped onto the canonical one."""


@lru_cache(maxsize=1)
def _stored() -> dict:
    return json.loads(_DATA_FILE.read_text())


def canonical_skeleton() -> Skeleton:
    """The canonical 21-joint skeleton in its T-pose (metres, Z up, facing -Y)."""
    data = _stored()
    return Skeleton(CANONICAL_JOINTS, CANONICAL_PARENTS, np.array(data["offsets"]))


def bandai_alignment() -> np.ndarray:
    """(21, 4) wxyz alignment rotations A of the Bandai joints (canonical order)."""
    return np.array(_stored()["bandai_alignment"])


def heading_yaw(positions: np.ndarray, skeleton: Skeleton | None = None) -> np.ndarray:
    """Facing angle about +Z in radians, (T, J, 3) canonical positions -> (T,).

    Taken from the hip line (left hip minus right hip) so it does not depend on rest frames;
    0 means facing -Y, and positive turns counter-clockwise seen from above.
    """
    sk = skeleton or canonical_skeleton()
    lateral = positions[:, sk.index("UpperLeg_L")] - positions[:, sk.index("UpperLeg_R")]
    return np.arctan2(lateral[:, 1], lateral[:, 0])


def heading_yaw_at(motion: Motion, frame: int) -> float:
    """heading_yaw of one frame of a motion. Where both hips hang from the root (the canonical
    skeleton), the hip line is the root's rotation of their offsets: no FK (a 30-frame
    in-between reads it twice)."""
    sk = motion.skeleton
    left, right = sk.index("UpperLeg_L"), sk.index("UpperLeg_R")
    if sk.parents[left] == 0 == sk.parents[right] and motion.local_translations is None:
        lateral = rot.rotate(motion.local_rotations[frame, 0], sk.offsets[left] - sk.offsets[right])
        return float(np.arctan2(lateral[1], lateral[0]))
    return float(heading_yaw(motion.trim(frame, frame + 1).positions(), sk)[0])


def derive_alignment(bandai: Motion, frame: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Alignment rotations and canonical T-pose offsets from one standing Bandai frame.

    Each bone is swung from its direction in that frame onto its T-pose direction (hips and
    chest are set by their up bone and hip or shoulder line), which keeps the natural twist
    of the standing pose. Returns (alignment (21, 4) wxyz, offsets (21, 3) metres), with
    offsets made exactly left/right symmetric.
    """
    sk = bandai.skeleton
    one = bandai.trim(frame, frame + 1)
    wr, wp = one.world()
    wr, wp = wr[0], wp[0]
    idx = {n: sk.index(n) for n in CANONICAL_JOINTS}
    lateral = wp[idx["UpperLeg_L"]] - wp[idx["UpperLeg_R"]]
    unyaw = rot.yaw_rotation(-np.arctan2(lateral[1], lateral[0]))
    pos = rot.rotate(unyaw, wp)
    world = rot.multiply(unyaw, wr)

    swing: dict[str, np.ndarray] = {}
    for j, name in enumerate(CANONICAL_JOINTS):
        if name in _FRAME_BY:
            up, left, right = (idx[n] for n in _FRAME_BY[name])
            z = pos[up] - pos[idx[name]]
            z /= np.linalg.norm(z)
            x = pos[left] - pos[right]
            x -= np.dot(x, z) * z
            x /= np.linalg.norm(x)
            current = np.stack([x, np.cross(z, x), z], axis=-1)  # columns: current x, y, z
            swing[name] = rot.from_matrix(current.T)
        elif name in _TPOSE_DIRECTION:
            child = CANONICAL_JOINTS[CANONICAL_PARENTS.index(j)]
            swing[name] = rot.shortest_arc(pos[idx[child]] - pos[idx[name]],
                                        np.array(_TPOSE_DIRECTION[name], dtype=float))
        else:  # leaves (Head, Hands, Toes) keep their pose relative to the parent bone
            swing[name] = swing[CANONICAL_JOINTS[CANONICAL_PARENTS[j]]]
    tpose = np.stack([rot.multiply(swing[n], world[idx[n]]) for n in CANONICAL_JOINTS])
    alignment = rot.conjugate(tpose)

    offsets = np.zeros((len(CANONICAL_JOINTS), 3))
    for j, name in enumerate(CANONICAL_JOINTS[1:], start=1):
        p = CANONICAL_PARENTS[j]
        offsets[j] = rot.rotate(tpose[p], sk.offsets[idx[name]])
    # Exact symmetry: average each side with the reflection of the other.
    skel = Skeleton(CANONICAL_JOINTS, CANONICAL_PARENTS, offsets)
    pair = skel.mirror_indices()
    reflect = np.array([-1.0, 1.0, 1.0])
    offsets = 0.5 * (offsets + offsets[pair] * reflect)
    return alignment, offsets


def check_joints(skeleton: Skeleton) -> None:
    """Raise SkeletonMismatchError unless the skeleton has every canonical joint and nothing
    else but pass-through roots."""
    names = set(skeleton.names)
    missing = [n for n in CANONICAL_JOINTS if n not in names]
    unknown = [n for n in skeleton.names if n not in CANONICAL_JOINTS and n not in PASS_THROUGH_JOINTS]
    if missing or unknown:
        parts = []
        if unknown:
            parts.append(f"unknown joints {unknown}")
        if missing:
            parts.append(f"missing joints {missing}")
        raise SkeletonMismatchError(
            "cannot convert to the canonical skeleton: " + "; ".join(parts)
            + ". Only Bandai Namco style skeletons are mapped so far.")


def to_canonical(motion: Motion) -> Motion:
    """A Bandai-style motion (read by read_bvh, Z up metres) on the canonical skeleton.

    World positions of every joint are kept (up to the sub-millimetre symmetrisation of the
    canonical bone lengths); per-joint position channels other than the root's are dropped.
    """
    check_joints(motion.skeleton)
    world_rot, world_pos = motion.world()
    idx = [motion.skeleton.index(n) for n in CANONICAL_JOINTS]
    canon_world = rot.multiply(world_rot[:, idx], bandai_alignment())
    sk = canonical_skeleton()
    local = rot.make_continuous(local_from_world(sk, canon_world))
    return Motion(sk, motion.fps, world_pos[:, idx[0]], local)


def from_canonical(motion: Motion, skeleton: Skeleton) -> Motion:
    """Inverse of to_canonical: a canonical motion on a Bandai-style `skeleton` (the one the
    input file had), pass-through roots unrotated, so results can be written back as the
    user's own BVH."""
    check_joints(skeleton)
    canon_world, canon_pos = motion.world()
    T, B = motion.num_frames, len(skeleton)
    world = np.tile(rot.identity(), (T, B, 1))
    for c, name in enumerate(CANONICAL_JOINTS):
        world[:, skeleton.index(name)] = rot.multiply(canon_world[:, c], rot.conjugate(bandai_alignment()[c]))
    # Pass-through roots hold no rotation; the root sits where the hips' rest offset puts them.
    hips = skeleton.index(CANONICAL_JOINTS[0])
    chain, j = [], hips
    while skeleton.parents[j] >= 0:
        chain.append(j)
        j = skeleton.parents[j]
    root = motion.root_position - sum(skeleton.offsets[k] for k in chain) if chain else motion.root_position
    return Motion(skeleton, motion.fps, root, rot.make_continuous(local_from_world(skeleton, world)))
