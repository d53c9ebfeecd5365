"""Canonical motion <-> a rig's pose channels (pure numpy; the bpy side only reads rest
matrices and writes keys).

A rig is its bones' names, parents and rest matrices in armature space (Blender's
`bone.matrix_local`). A mapping names the rig bone for each canonical joint it has.

For a mapped bone b of canonical joint j, the bone's posed world orientation is

    W_b = G_j  Q_j  R_b

with G_j the canonical joint's world rotation (canonical rest frames are world-aligned, so
G_j is identity at the T-pose), R_b the bone's rest orientation and Q_j the rest alignment:
the rotation that takes the rig's rest pose onto the canonical T-pose for that bone (an
A-posed arm is swung up; hips and chest are aligned by their whole frame, up bone and
left-right line). Bones the mapping leaves out between mapped ones are held at rest, and
Blender's composition  W_b = W_parent (R_parent^-1 R_b) basis_b  gives each basis. The root
travels with the hips, scaled by leg length. `from_rig` is the exact inverse for mapped joints.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import rotations as rot
from .canonical import CANONICAL_JOINTS, CANONICAL_PARENTS, canonical_skeleton
from .clip import Motion


@dataclass(frozen=True)
class Rig:
    """names: B bone names, parents first; parents: index or -1; rest: (B, 4, 4) armature-space
    rest matrices (head in column 3; Blender's bone.matrix_local)."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    rest: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
        rest = np.asarray(self.rest, dtype=float)
        object.__setattr__(self, "rest", rest)
        if rest.shape != (len(self.names), 4, 4) or len(self.parents) != len(self.names):
            raise ValueError(f"a rig of {len(self.names)} bones needs as many parents and (B, 4, 4) rest "
                             f"matrices, got {len(self.parents)} and {rest.shape}")
        for b, p in enumerate(self.parents):
            if not -1 <= p < b:
                raise ValueError(f"bone {self.names[b]!r}: parents must come first")

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"the rig has no bone named {name!r}") from None


# -- presets -------------------------------------------------------------------------------
_SIDES = ("L", "R")
_LIMBS = ("Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot", "Toes")
_TORSO = ("Hips", "Spine", "Chest", "Neck", "Head")


def _preset(torso: tuple[str, ...], limb: dict[str, str]) -> dict[str, str]:
    """Canonical joint -> bone; limb names use {s}/{side}/{Side} for the side."""
    out = dict(zip(_TORSO, torso))
    words = {"L": ("l", "L", "Left"), "R": ("r", "R", "Right")}
    for side in _SIDES:
        s, S, Side = words[side]
        for joint in _LIMBS:
            out[f"{joint}_{side}"] = limb[joint].format(s=s, S=S, Side=Side)
    return out


PRESETS: dict[str, dict[str, str]] = {
    "bandai": {j: j for j in CANONICAL_JOINTS},
    "rigify_metarig": _preset(("spine", "spine.001", "spine.003", "spine.004", "spine.006"), {
        "Shoulder": "shoulder.{S}", "UpperArm": "upper_arm.{S}", "LowerArm": "forearm.{S}", "Hand": "hand.{S}",
        "UpperLeg": "thigh.{S}", "LowerLeg": "shin.{S}", "Foot": "foot.{S}", "Toes": "toe.{S}"}),
    "rigify_def": _preset(("DEF-spine", "DEF-spine.001", "DEF-spine.003", "DEF-spine.004", "DEF-spine.006"), {
        "Shoulder": "DEF-shoulder.{S}", "UpperArm": "DEF-upper_arm.{S}", "LowerArm": "DEF-forearm.{S}",
        "Hand": "DEF-hand.{S}", "UpperLeg": "DEF-thigh.{S}", "LowerLeg": "DEF-shin.{S}", "Foot": "DEF-foot.{S}",
        "Toes": "DEF-toe.{S}"}),
    "mixamo": _preset(("mixamorig:Hips", "mixamorig:Spine", "mixamorig:Spine2", "mixamorig:Neck",
                       "mixamorig:Head"), {
        "Shoulder": "mixamorig:{Side}Shoulder", "UpperArm": "mixamorig:{Side}Arm",
        "LowerArm": "mixamorig:{Side}ForeArm", "Hand": "mixamorig:{Side}Hand",
        "UpperLeg": "mixamorig:{Side}UpLeg", "LowerLeg": "mixamorig:{Side}Leg", "Foot": "mixamorig:{Side}Foot",
        "Toes": "mixamorig:{Side}ToeBase"}),
    "ue5_mannequin": _preset(("pelvis", "spine_01", "spine_03", "neck_01", "head"), {
        "Shoulder": "clavicle_{s}", "UpperArm": "upperarm_{s}", "LowerArm": "lowerarm_{s}", "Hand": "hand_{s}",
        "UpperLeg": "thigh_{s}", "LowerLeg": "calf_{s}", "Foot": "foot_{s}", "Toes": "ball_{s}"}),
}


def _plain(name: str) -> str:
    """Bone names compared without case and without a namespace prefix (mixamorig1:Hips)."""
    return re.sub(r"^[^:]*:", "", name).lower()


def detect_preset(bone_names: list[str] | tuple[str, ...]) -> tuple[str | None, float, dict[str, str]]:
    """(preset name, confidence 0..1, mapping onto the rig's actual bone names) of the preset
    whose bones the rig has most of; (None, 0, {}) when none fits at all."""
    by_plain = {_plain(n): n for n in bone_names}
    best: tuple[str | None, float, dict[str, str]] = (None, 0.0, {})
    for name, preset in PRESETS.items():
        found = {j: by_plain[_plain(b)] for j, b in preset.items() if _plain(b) in by_plain}
        confidence = len(found) / len(preset)
        if confidence > best[1]:
            best = (name, confidence, found)
    return best


def load_mapping(path: str | Path) -> dict[str, str]:
    """A custom mapping saved as JSON: {"mapping": {canonical joint: bone name}}."""
    try:
        data = json.loads(Path(path).read_text())
        mapping = data["mapping"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a DynamicPose mapping ({e})") from None
    unknown = sorted(set(mapping) - set(CANONICAL_JOINTS))
    if unknown or not all(isinstance(v, str) for v in mapping.values()):
        raise ValueError(f"{path}: unknown canonical joints {unknown} or bone names that are not text")
    return dict(mapping)


def save_mapping(path: str | Path, mapping: dict[str, str]) -> None:
    Path(path).write_text(json.dumps({"format_version": 1, "mapping": mapping}, indent=1))


# -- the transfer --------------------------------------------------------------------------
_FRAME_BY = {"Hips": ("Spine", "UpperLeg_L", "UpperLeg_R"), "Chest": ("Neck", "UpperArm_L", "UpperArm_R")}


class Retarget:
    """Moves motion between the canonical skeleton and one rig under one mapping."""

    def __init__(self, rig: Rig, mapping: dict[str, str]):
        unknown = sorted(set(mapping) - set(CANONICAL_JOINTS))
        if unknown:
            raise ValueError(f"the mapping names joints the canonical skeleton lacks: {unknown}")
        if "Hips" not in mapping:
            raise ValueError("the mapping must give a bone for Hips (it carries the root motion)")
        self.rig, self.skeleton = rig, canonical_skeleton()
        self.joint_bone = {j: rig.index(b) for j, b in mapping.items()}  # raises on a missing bone
        if len(set(self.joint_bone.values())) != len(self.joint_bone):
            raise ValueError("the mapping gives one bone to two joints")
        self.rest_rot = rot.from_matrix(rig.rest[:, :3, :3])
        self.heads = rig.rest[:, :3, 3]
        rest = self.skeleton.rest_positions()
        self.canon_rest = rest - [0.0, 0.0, rest[:, 2].min()]  # standing on z = 0, as the data does
        self.align = self._alignment()
        self.scale = self._scale()
        self.hips_bone = self.joint_bone["Hips"]
        # Bones we write: mapped ones and the bones that link them to each other and the root.
        mapped = set(self.joint_bone.values())
        written = set()
        for b in mapped:
            while b >= 0 and b not in written:
                written.add(b)
                b = rig.parents[b]
        self.written = sorted(written)
        self.bone_joint = {b: self.skeleton.index(j) for j, b in self.joint_bone.items()}

    def _dirs(self, joint: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(canonical, rig) rest direction from this joint to its first mapped child."""
        j = self.skeleton.index(joint)
        for c in self.skeleton.children(j):
            child = self.skeleton.names[c]
            if child in self.joint_bone:
                d_rig = self.heads[self.joint_bone[child]] - self.heads[self.joint_bone[joint]]
                if np.linalg.norm(d_rig) > 1e-9:
                    return self.canon_rest[c] - self.canon_rest[j], d_rig
        return None

    def _alignment(self) -> np.ndarray:
        """(J, 4) Q_j: the rotation taking the rig's rest onto the canonical T-pose, per joint."""
        q = np.tile(rot.identity(), (len(CANONICAL_JOINTS), 1))
        for j, name in enumerate(CANONICAL_JOINTS):
            if name not in self.joint_bone:
                continue
            frame = _FRAME_BY.get(name)
            if frame and all(n in self.joint_bone for n in frame):
                up, left, right = (self.skeleton.index(n) for n in frame)
                hb, ub, lb, rb = (self.heads[self.joint_bone[n]] for n in (name, *frame))
                canon = rot.frame_from(self.canon_rest[up] - self.canon_rest[j],
                                       self.canon_rest[left] - self.canon_rest[right])
                q[j] = rot.multiply(canon, rot.conjugate(rot.frame_from(ub - hb, lb - rb)))
                continue
            dirs = self._dirs(name)
            if dirs is not None:
                q[j] = rot.shortest_arc(dirs[1], dirs[0])
            elif j > 0:  # a leaf (hand, head, toes) keeps its pose relative to its parent bone
                q[j] = q[CANONICAL_PARENTS[j]]
        return q

    def _scale(self) -> float:
        """Rig units per canonical metre, from the leg (hip to ankle); 1 without legs."""
        for side in _SIDES:
            chain = [f"UpperLeg_{side}", f"LowerLeg_{side}", f"Foot_{side}"]
            if all(n in self.joint_bone for n in chain):
                rig = sum(np.linalg.norm(self.heads[self.joint_bone[b]] - self.heads[self.joint_bone[a]])
                          for a, b in zip(chain, chain[1:]))
                idx = [self.skeleton.index(n) for n in chain]
                canon = sum(np.linalg.norm(self.canon_rest[b] - self.canon_rest[a]) for a, b in zip(idx, idx[1:]))
                return float(rig / canon)
        return 1.0

    # -- canonical -> rig --------------------------------------------------------------------
    def to_rig(self, motion: Motion, in_place: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """A canonical motion -> (basis rotations (T, B, 4) wxyz, locations (T, B, 3)) for every
        bone of the rig; bones outside `written` are left at identity and zero."""
        if not motion.skeleton.same_shape(self.skeleton):
            raise ValueError("to_rig takes a motion on the canonical skeleton")
        G, P = motion.world()
        T, B = motion.num_frames, len(self.rig.names)
        basis = np.tile(rot.identity(), (T, B, 1))
        loc = np.zeros((T, B, 3))
        W = np.empty((T, B, 4))
        R = self.rest_rot
        for b in range(B):
            p = self.rig.parents[b]
            rel = R[b] if p < 0 else rot.multiply(rot.conjugate(R[p]), R[b])  # R_p^-1 R_b
            at_rest = rel if p < 0 else rot.multiply(W[:, p], rel)
            j = self.bone_joint.get(b)
            if j is None:
                W[:, b] = at_rest
                continue
            W[:, b] = rot.multiply(rot.multiply(G[:, j], self.align[j]), R[b])
            basis[:, b] = rot.multiply(rot.conjugate(at_rest), W[:, b])
        basis = rot.make_continuous(basis)
        # The hips bone carries the root: its ancestors stay at rest, so its head is h + R loc.
        travel = P[:, 0] - self.canon_rest[0]
        if in_place:
            travel[:, :2] = 0.0
        h = self.hips_bone
        loc[:, h] = rot.rotate(rot.conjugate(R[h]), self.scale * travel)
        return basis, loc

    # -- rig -> canonical --------------------------------------------------------------------
    def pose(self, basis: np.ndarray, loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rig forward kinematics: (T, B, 4), (T, B, 3) -> (world rotations (T, B, 4), bone heads
        (T, B, 3)) in armature space, composed as Blender composes pose bones."""
        T, B = basis.shape[:2]
        R, h = self.rest_rot, self.heads
        W, H = np.empty((T, B, 4)), np.empty((T, B, 3))
        for b in range(B):
            p = self.rig.parents[b]
            if p < 0:
                frame = np.broadcast_to(R[b], (T, 4))
                H[:, b] = h[b] + rot.rotate(frame, loc[:, b])
            else:
                parent_frame = rot.multiply(W[:, p], rot.conjugate(R[p]))  # posed parent x rest^-1
                frame = rot.multiply(parent_frame, R[b])
                H[:, b] = H[:, p] + rot.rotate(parent_frame, np.broadcast_to(h[b] - h[p], (T, 3))) \
                    + rot.rotate(frame, loc[:, b])
            W[:, b] = rot.multiply(frame, basis[:, b])
        return W, H

    def split_keys(self, by_bone: dict[str, set[float]]) -> tuple[list[float], dict[float, list[str]]]:
        """The user's key frames per rig bone -> (frames where every keyed joint has a key,
        {any other frame: the canonical joints keyed there}). Joints whose bones hold no keys at
        all do not count (they keep whatever the action gives them); unmapped bones neither."""
        keyed = {j: by_bone[self.rig.names[b]] for j, b in self.joint_bone.items()
                 if by_bone.get(self.rig.names[b])}
        frames = sorted(set().union(*keyed.values()))
        full = [f for f in frames if all(f in fs for fs in keyed.values())]
        partial = {f: [j for j in CANONICAL_JOINTS if f in keyed.get(j, ())] for f in frames if f not in full}
        return full, partial

    def from_rig(self, basis: np.ndarray, loc: np.ndarray, fps: float) -> Motion:
        """Pose channels of every bone -> the canonical motion they show. Canonical joints the
        mapping leaves out follow their parent."""
        W, H = self.pose(basis, loc)
        T = basis.shape[0]
        G = np.empty((T, len(CANONICAL_JOINTS), 4))
        for j, name in enumerate(CANONICAL_JOINTS):
            b = self.joint_bone.get(name)
            if b is None:
                G[:, j] = G[:, CANONICAL_PARENTS[j]]
            else:
                G[:, j] = rot.multiply(rot.multiply(W[:, b], rot.conjugate(self.rest_rot[b])),
                                       rot.conjugate(self.align[j]))
        local = np.empty_like(G)
        local[:, 0] = G[:, 0]
        for j in range(1, len(CANONICAL_JOINTS)):
            local[:, j] = rot.multiply(rot.conjugate(G[:, CANONICAL_PARENTS[j]]), G[:, j])
        root = self.canon_rest[0] + (H[:, self.hips_bone] - self.heads[self.hips_bone]) / self.scale
        return Motion(self.skeleton, fps, root, rot.make_continuous(local))
