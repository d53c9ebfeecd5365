"""HumanML3D's layout read as canonical motion, for people who hold the dataset.

The layout (Guo et al. 2022): `new_joints/ID.npy` (T, 22, 3) world joint positions (Y up,
metres, 20 fps, SMPL joint order, the body facing +Z at frame 0), `texts/ID.txt` with one
`caption#tokens#start#end` per line (start and end in seconds; 0 for the whole clip),
`train.txt`/`val.txt`/`test.txt` listing ids. Ids starting with "M" are HumanML3D's own
left/right mirrors; they are skipped, as training mirrors every clip itself.

Positions carry no joint twist, so rotations are fitted: hips and chest take the frame of their
up bone and left-right line (as `canonical.derive_alignment` does for Bandai), every other bone
the smallest turn from its parent that points it at its child. On the clip's own bone lengths
(`clip_skeleton`) that reproduces every joint; on the canonical skeleton the same rotations are
the clip retargeted, the root path scaled by leg length.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from motioncore import rotations as rot
from motioncore.canonical import CANONICAL_JOINTS, CANONICAL_PARENTS, canonical_skeleton
from motioncore.clip import Motion
from motioncore.skeleton import Skeleton, local_from_world

FPS = 20.0
SMPL_JOINTS = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
# The SMPL joint at each canonical joint; spine2 has no canonical partner and is dropped.
SMPL_OF = {
    "Hips": "pelvis", "Spine": "spine1", "Chest": "spine3", "Neck": "neck", "Head": "head",
    "Shoulder_L": "left_collar", "UpperArm_L": "left_shoulder", "LowerArm_L": "left_elbow", "Hand_L": "left_wrist",
    "Shoulder_R": "right_collar", "UpperArm_R": "right_shoulder", "LowerArm_R": "right_elbow", "Hand_R": "right_wrist",
    "UpperLeg_L": "left_hip", "LowerLeg_L": "left_knee", "Foot_L": "left_ankle", "Toes_L": "left_foot",
    "UpperLeg_R": "right_hip", "LowerLeg_R": "right_knee", "Foot_R": "right_ankle", "Toes_R": "right_foot",
}
_PICK = np.array([SMPL_JOINTS.index(SMPL_OF[n]) for n in CANONICAL_JOINTS])
# Y up, facing +Z (left on +X) -> Z up, facing -Y (left on +X): a proper rotation about X.
_TO_CANONICAL_AXES = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Joints whose frame is set by an up child and a left-right pair of children.
_FRAME_BY = {"Hips": ("Spine", "UpperLeg_L", "UpperLeg_R"), "Chest": ("Neck", "Shoulder_L", "Shoulder_R")}
MAX_FRAMES = 20 * 60 * 10  # ten minutes at 20 fps; HumanML3D clips are at most 10 s


class HumanML3DError(ValueError):
    """A file that is not HumanML3D joint positions."""


def canonical_positions(joints: np.ndarray) -> np.ndarray:
    """(T, 22, 3) HumanML3D positions -> (T, 21, 3) canonical joints in canonical axes."""
    joints = np.asarray(joints, dtype=float)
    if joints.ndim != 3 or joints.shape[1:] != (len(SMPL_JOINTS), 3):
        raise HumanML3DError(f"HumanML3D joints are (frames, 22, 3); got {joints.shape}")
    if not 2 <= len(joints) <= MAX_FRAMES:
        raise HumanML3DError(f"{len(joints)} frames; a clip has 2 to {MAX_FRAMES}")
    if not np.isfinite(joints).all() or np.abs(joints).max() > 1e4:
        raise HumanML3DError("joint positions are not finite metres")
    return joints[:, _PICK] @ _TO_CANONICAL_AXES.T


def _rest_directions() -> np.ndarray:
    """(J, 3) unit direction of each joint's canonical rest offset from its parent."""
    off = canonical_skeleton().offsets
    n = np.linalg.norm(off, axis=-1, keepdims=True)
    return off / np.where(n > 0, n, 1.0)


def clip_skeleton(pos: np.ndarray) -> Skeleton:
    """The canonical topology with this clip's bone lengths (medians over its frames): rigid
    children of hips and chest where they sit in their frame, other bones along the canonical
    rest direction."""
    idx = {n: i for i, n in enumerate(CANONICAL_JOINTS)}
    offsets = np.zeros((len(CANONICAL_JOINTS), 3))
    framed = {}
    for joint, (up, left, right) in _FRAME_BY.items():
        j = idx[joint]
        frame = rot.frame_from(pos[:, idx[up]] - pos[:, j], pos[:, idx[left]] - pos[:, idx[right]])
        for child in (up, left, right):
            framed[idx[child]] = np.median(rot.rotate(rot.conjugate(frame), pos[:, idx[child]] - pos[:, j]), axis=0)
    directions = _rest_directions()
    for j in range(1, len(CANONICAL_JOINTS)):
        if j in framed:
            offsets[j] = framed[j]
        else:
            length = np.median(np.linalg.norm(pos[:, j] - pos[:, CANONICAL_PARENTS[j]], axis=-1))
            offsets[j] = length * directions[j]
    return Skeleton(CANONICAL_JOINTS, CANONICAL_PARENTS, offsets)


def fit_rotations(pos: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """(T, J, 4) local rotations that put `skeleton`'s bones along the joint positions `pos`."""
    T, J = pos.shape[:2]
    world = np.empty((T, J, 4))
    idx = {n: i for i, n in enumerate(CANONICAL_JOINTS)}
    children = {j: [c for c in range(J) if CANONICAL_PARENTS[c] == j] for j in range(J)}
    for j, name in enumerate(CANONICAL_JOINTS):
        parent = world[:, CANONICAL_PARENTS[j]] if j else rot.identity((T,))
        if name in _FRAME_BY:
            up, left, right = (idx[n] for n in _FRAME_BY[name])
            measured = rot.frame_from(pos[:, up] - pos[:, j], pos[:, left] - pos[:, right])
            # The same frame built from the rest offsets: what the joint's identity rotation shows.
            off = skeleton.offsets
            rest = rot.frame_from(off[up][None], (off[left] - off[right])[None])
            world[:, j] = rot.multiply(measured, rot.conjugate(rest))
        elif children[j]:
            child = children[j][0]
            aimed = rot.rotate(parent, np.broadcast_to(skeleton.offsets[child], (T, 3)))
            world[:, j] = rot.multiply(rot.shortest_arc(aimed, pos[:, child] - pos[:, j]), parent)
        else:  # hands, head and toes: nothing to aim at; they follow their parent
            world[:, j] = parent
    return rot.make_continuous(local_from_world(skeleton, world))


def motion_on_clip_skeleton(joints: np.ndarray) -> Motion:
    """HumanML3D joints as a motion on the clip's own bone lengths (reproduces its joints)."""
    pos = canonical_positions(joints)
    skeleton = clip_skeleton(pos)
    return Motion(skeleton, FPS, pos[:, 0], fit_rotations(pos, skeleton))


def leg_length(skeleton: Skeleton) -> float:
    """Height of the hips above the ankles in the rest pose (metres)."""
    rest = skeleton.rest_positions()
    return float(-rest[[CANONICAL_JOINTS.index("Foot_L"), CANONICAL_JOINTS.index("Foot_R")], 2].mean())


def to_canonical(joints: np.ndarray) -> Motion:
    """HumanML3D joints as canonical motion: the fitted rotations on the canonical skeleton, the
    root path scaled by the ratio of leg lengths so steps and height fit the canonical body."""
    own = motion_on_clip_skeleton(joints)
    canon = canonical_skeleton()
    scale = leg_length(canon) / leg_length(own.skeleton)
    return Motion(canon, FPS, own.root_position * scale, own.local_rotations)


def read_joints(path: Path) -> np.ndarray:
    """One `new_joints/ID.npy` (no pickle), checked to be HumanML3D positions."""
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise HumanML3DError(f"{path}: not a plain .npy array ({e})") from None
    if not np.issubdtype(array.dtype, np.floating):
        raise HumanML3DError(f"{path}: {array.dtype} values; joint positions are floats")
    try:
        canonical_positions(array)
    except HumanML3DError as e:
        raise HumanML3DError(f"{path}: {e}") from None
    return array


def read_captions(text: str) -> list[tuple[str, float, float]]:
    """`texts/ID.txt` lines -> (caption, start s, end s); 0, 0 (or unreadable times) is the whole clip."""
    out = []
    for line in text.splitlines():
        parts = line.strip().split("#")
        caption = parts[0].strip()
        if not caption:
            continue
        try:
            start, end = float(parts[2]), float(parts[3])
        except (IndexError, ValueError):
            start = end = 0.0
        if not (np.isfinite(start) and np.isfinite(end) and 0 <= start < end):
            start = end = 0.0
        out.append((caption, start, end))
    return out


def is_layout(folder: Path) -> bool:
    return (folder / "new_joints").is_dir()


def split_lists(folder: Path) -> dict[str, str]:
    """id -> split from the layout's train/val/test lists (empty where there are none)."""
    out = {}
    for split in ("train", "val", "test"):
        f = folder / f"{split}.txt"
        if f.is_file():
            for line in f.read_text(errors="replace").splitlines():
                if line.strip():
                    out[line.strip()] = split
    return out
