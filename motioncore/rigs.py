"""Rigs as the retargeting sees them, and which canonical joint each bone is: name presets
for the common rigs, detection from names or from the skeleton's shape, mappings as JSON.

A rig is its bones' names, parents and rest matrices in armature space (Blender's
`bone.matrix_local`). A mapping names the rig bone for each canonical joint it has.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .canonical import CANONICAL_JOINTS, canonical_skeleton


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
SIDES = ("L", "R")
LIMBS = ("Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot", "Toes")
TORSO = ("Hips", "Spine", "Chest", "Neck", "Head")


def _preset(torso: tuple[str, ...], limb: dict[str, str]) -> dict[str, str]:
    """Canonical joint -> bone; limb names use {s}/{S}/{Side}/{side} for l/L/Left/left."""
    out = dict(zip(TORSO, torso))
    words = {"L": ("l", "L", "Left", "left"), "R": ("r", "R", "Right", "right")}
    for side in SIDES:
        s, S, Side, side_word = words[side]
        for joint in LIMBS:
            out[f"{joint}_{side}"] = limb[joint].format(s=s, S=S, Side=Side, side=side_word)
    return out


PRESETS: dict[str, dict[str, str]] = {
    "bandai": {j: j for j in CANONICAL_JOINTS},
    # A generated Rigify rig's FK controls (listed before rigify_def, whose DEF bones it also
    # has, so that it wins the tie): the chest control turns the spine above the torso's pivot,
    # the top FK spine control the chest.
    "rigify": _preset(("torso", "chest", "spine_fk.003", "neck", "head"), {
        "Shoulder": "shoulder.{S}", "UpperArm": "upper_arm_fk.{S}", "LowerArm": "forearm_fk.{S}",
        "Hand": "hand_fk.{S}", "UpperLeg": "thigh_fk.{S}", "LowerLeg": "shin_fk.{S}", "Foot": "foot_fk.{S}",
        "Toes": "toe_fk.{S}"}),
    "rigify_metarig": _preset(("spine", "spine.001", "spine.003", "spine.004", "spine.006"), {
        "Shoulder": "shoulder.{S}", "UpperArm": "upper_arm.{S}", "LowerArm": "forearm.{S}", "Hand": "hand.{S}",
        "UpperLeg": "thigh.{S}", "LowerLeg": "shin.{S}", "Foot": "foot.{S}", "Toes": "toe.{S}"}),
    "mixamo": _preset(("mixamorig:Hips", "mixamorig:Spine", "mixamorig:Spine2", "mixamorig:Neck",
                       "mixamorig:Head"), {
        "Shoulder": "mixamorig:{Side}Shoulder", "UpperArm": "mixamorig:{Side}Arm",
        "LowerArm": "mixamorig:{Side}ForeArm", "Hand": "mixamorig:{Side}Hand",
        "UpperLeg": "mixamorig:{Side}UpLeg", "LowerLeg": "mixamorig:{Side}Leg", "Foot": "mixamorig:{Side}Foot",
        "Toes": "mixamorig:{Side}ToeBase"}),
    "ue5_mannequin": _preset(("pelvis", "spine_01", "spine_03", "neck_01", "head"), {
        "Shoulder": "clavicle_{s}", "UpperArm": "upperarm_{s}", "LowerArm": "lowerarm_{s}", "Hand": "hand_{s}",
        "UpperLeg": "thigh_{s}", "LowerLeg": "calf_{s}", "Foot": "foot_{s}", "Toes": "ball_{s}"}),
    # Auto-Rig Pro's FK controls, which animators key (the deform bones follow them).
    "auto_rig_pro": _preset(("c_root.x", "c_spine_01.x", "c_spine_02.x", "c_neck.x", "c_head.x"), {
        "Shoulder": "c_shoulder.{s}", "UpperArm": "c_arm_fk.{s}", "LowerArm": "c_forearm_fk.{s}",
        "Hand": "c_hand_fk.{s}", "UpperLeg": "c_thigh_fk.{s}", "LowerLeg": "c_leg_fk.{s}", "Foot": "c_foot_fk.{s}",
        "Toes": "c_toes_fk.{s}"}),
    # SMPL / SMPL-X joint names (the SMPL-X Blender add-on's bones); spine2 is left between.
    "smpl": _preset(("pelvis", "spine1", "spine3", "neck", "head"), {
        "Shoulder": "{side}_collar", "UpperArm": "{side}_shoulder", "LowerArm": "{side}_elbow",
        "Hand": "{side}_wrist", "UpperLeg": "{side}_hip", "LowerLeg": "{side}_knee", "Foot": "{side}_ankle",
        "Toes": "{side}_foot"}),
    # CMU mocap as BVH (the cgspeed conversion): LHipJoint/RHipJoint and Spine sit between.
    "cmu": _preset(("Hips", "LowerBack", "Spine1", "Neck", "Head"), {
        "Shoulder": "{Side}Shoulder", "UpperArm": "{Side}Arm", "LowerArm": "{Side}ForeArm", "Hand": "{Side}Hand",
        "UpperLeg": "{Side}UpLeg", "LowerLeg": "{Side}Leg", "Foot": "{Side}Foot", "Toes": "{Side}ToeBase"}),
    # Ubisoft LaFAN1 BVH: Spine1 sits between Spine and Spine2.
    "lafan1": _preset(("Hips", "Spine", "Spine2", "Neck", "Head"), {
        "Shoulder": "{Side}Shoulder", "UpperArm": "{Side}Arm", "LowerArm": "{Side}ForeArm", "Hand": "{Side}Hand",
        "UpperLeg": "{Side}UpLeg", "LowerLeg": "{Side}Leg", "Foot": "{Side}Foot", "Toes": "{Side}Toe"}),
}


PRESETS["rigify_def"] = {j: "DEF-" + b for j, b in PRESETS["rigify_metarig"].items()}  # generated deform bones

# Control rigs: where their joints sit (another preset's bones) and the switches their keys need
# (FK on, neck and head following the chest), keyed into every action written to them.
CONTROL_RIGS: dict[str, dict] = {
    "rigify": {"joints": "rigify_def", "switches": {
        **{f'pose.bones["{b}.{s}"]["IK_FK"]': 1.0 for b in ("upper_arm_parent", "thigh_parent") for s in "LR"},
        'pose.bones["torso"]["neck_follow"]': 1.0, 'pose.bones["torso"]["head_follow"]': 1.0}},
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


def detect(rig: Rig) -> tuple[str | None, float, dict[str, str]]:
    """detect_preset on the rig's bone names; where no preset fits well, a guess from the
    hierarchy and rest pose alone, named "hierarchy"."""
    found = detect_preset(rig.names)
    if found[1] >= NAME_CONFIDENCE:
        return found
    guess = guess_from_hierarchy(rig)
    confidence = len(guess) / len(CANONICAL_JOINTS)
    return ("hierarchy", confidence, guess) if confidence > found[1] else found


NAME_CONFIDENCE = 0.8  # below this share of a preset's bones, the hierarchy is asked too


def guess_from_hierarchy(rig: Rig) -> dict[str, str]:
    """Canonical joint -> bone, read from the shape of the skeleton (Z up, facing -Y, its left
    on +X): the hips are the first bone with two chains reaching down to the feet and one
    reaching up; the chest is where the spine branches into arms; each limb is its chain
    through the child with most descendants (so twist bones and fingers are passed by)."""
    B = len(rig.names)
    heads = rig.rest[:, :3, 3]
    kids: list[list[int]] = [[] for _ in range(B)]
    for b, p in enumerate(rig.parents):
        if p >= 0:
            kids[p].append(b)
    below = [[b] for b in range(B)]  # each bone's subtree, itself first
    for b in range(B - 1, -1, -1):
        for c in kids[b]:
            below[b] += below[c]
    height = float(np.ptp(heads[:, 2])) or 1.0
    low = [heads[sub, 2].min() for sub in below]
    high = [heads[sub, 2].max() for sub in below]

    def chain(b: int) -> list[int]:
        out = [b]
        while kids[out[-1]]:
            out.append(max(kids[out[-1]], key=lambda c: len(below[c])))
        return out

    hips = next((b for b in range(B)
                 if sum(low[c] < heads[b, 2] - 0.3 * height for c in kids[b]) >= 2
                 and any(high[c] > heads[b, 2] + 0.2 * height for c in kids[b])), None)
    if hips is None:
        return {}
    found = {"Hips": hips}
    legs = sorted((c for c in kids[hips] if low[c] < heads[hips, 2] - 0.3 * height),
                  key=lambda c: heads[below[c], 0].mean())[-1:-3:-1]  # +X (left) first
    for side, leg in zip(SIDES, legs):
        bones = chain(leg)
        knee = int(np.argmin(np.abs(heads[bones, 2] - heads[bones[0], 2] / 2)))
        for joint, k in (("UpperLeg", knee - 1), ("LowerLeg", knee), ("Foot", knee + 1), ("Toes", knee + 2)):
            if 0 <= k < len(bones):
                found[f"{joint}_{side}"] = bones[k]
    up = max((c for c in kids[hips] if c not in legs), key=lambda c: high[c])
    spine = chain(up)
    wide = lambda c: np.abs(heads[below[c], 0] - heads[hips, 0]).max() > 0.15 * height  # noqa: E731
    chest = next((b for b in spine if sum(wide(c) for c in kids[b]) >= 2), None)
    if chest is None:
        return found
    between = spine[: spine.index(chest)]
    if between:  # the bone nearest the canonical spine joint's share of the way up to the chest
        rest = canonical_skeleton().rest_positions()[:, 2]
        share = (rest[1] - rest[0]) / (rest[2] - rest[0])
        rise = (heads[between, 2] - heads[hips, 2]) / max(heads[chest, 2] - heads[hips, 2], 1e-9)
        found["Spine"] = between[int(np.argmin(np.abs(rise - share)))]
    found["Chest"] = chest
    arms = sorted((c for c in kids[chest] if wide(c)), key=lambda c: heads[below[c], 0].mean())[-1:-3:-1]
    rest_up = [c for c in kids[chest] if c not in arms]
    if rest_up:
        neck = chain(max(rest_up, key=lambda c: high[c]))
        found["Neck"] = neck[0]
        if len(neck) > 1:
            found["Head"] = neck[1]
    for side, arm in zip(SIDES, arms):
        bones = chain(arm)
        names = ("Shoulder", "UpperArm", "LowerArm", "Hand") if len(bones) >= 4 else ("UpperArm", "LowerArm", "Hand")
        for joint, b in zip(names, bones):
            found[f"{joint}_{side}"] = b
    return {j: rig.names[b] for j, b in found.items()}


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
