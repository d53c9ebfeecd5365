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
    rest matrices (head in column 3; Blender's bone.matrix_local); tails: optional (B, 3) bone
    tails (default: the heads), which show where a chain ends (a shin whose foot hangs elsewhere)."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    rest: np.ndarray
    tails: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
        rest = np.asarray(self.rest, dtype=float)
        object.__setattr__(self, "rest", rest)
        if rest.shape != (len(self.names), 4, 4) or len(self.parents) != len(self.names):
            raise ValueError(f"a rig of {len(self.names)} bones needs as many parents and (B, 4, 4) rest "
                             f"matrices, got {len(self.parents)} and {rest.shape}")
        tails = rest[:, :3, 3].copy() if self.tails is None else np.asarray(self.tails, dtype=float)
        if tails.shape != (len(self.names), 3):
            raise ValueError(f"tails must be ({len(self.names)}, 3), got {tails.shape}")
        object.__setattr__(self, "tails", tails)
        for b, p in enumerate(self.parents):
            if not -1 <= p < b:
                raise ValueError(f"bone {self.names[b]!r}: parents must come first")

    def in_world(self, world: np.ndarray) -> "Rig":
        """The same rig with its rest pose in world space (a (4, 4) object matrix, parents
        included): detection reads shapes with world +Z up."""
        w = np.asarray(world, dtype=float)
        rest = w @ self.rest
        u, _, vt = np.linalg.svd(rest[:, :3, :3])  # drop the object's scale from the frames
        rest[:, :3, :3] = u @ vt
        return Rig(self.names, self.parents, rest, self.tails @ w[:3, :3].T + w[:3, 3])

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
    # CMU mocap in the cgspeed "3dsMax-friendly" BVH conversion (LeftHip is the thigh; lowerback,
    # LHipJoint and lowerneck sit between).
    "cmu_cgspeed": _preset(("Hips", "Chest", "Chest2", "Neck", "Head"), {
        "Shoulder": "{Side}Collar", "UpperArm": "{Side}Shoulder", "LowerArm": "{Side}Elbow", "Hand": "{Side}Wrist",
        "UpperLeg": "{Side}Hip", "LowerLeg": "{Side}Knee", "Foot": "{Side}Ankle", "Toes": "{Side}Toe"}),
    # VRM 0.x / 1.0 humanoid bone names (upperChest, where a model has one, sits between).
    "vrm": _preset(("hips", "spine", "chest", "neck", "head"), {
        "Shoulder": "{side}Shoulder", "UpperArm": "{side}UpperArm", "LowerArm": "{side}LowerArm",
        "Hand": "{side}Hand", "UpperLeg": "{side}UpperLeg", "LowerLeg": "{side}LowerLeg", "Foot": "{side}Foot",
        "Toes": "{side}Toes"}),
    # VRoid Studio exports (J_Bip_C_UpperChest sits between).
    "vroid": _preset(("J_Bip_C_Hips", "J_Bip_C_Spine", "J_Bip_C_Chest", "J_Bip_C_Neck", "J_Bip_C_Head"), {
        "Shoulder": "J_Bip_{S}_Shoulder", "UpperArm": "J_Bip_{S}_UpperArm", "LowerArm": "J_Bip_{S}_LowerArm",
        "Hand": "J_Bip_{S}_Hand", "UpperLeg": "J_Bip_{S}_UpperLeg", "LowerLeg": "J_Bip_{S}_LowerLeg",
        "Foot": "J_Bip_{S}_Foot", "Toes": "J_Bip_{S}_ToeBase"}),
    # Unity-style names as Quaternius characters ship them (RobotExpressive: Abdomen, Torso).
    "quaternius": _preset(("Hips", "Abdomen", "Torso", "Neck", "Head"), {
        "Shoulder": "Shoulder.{S}", "UpperArm": "UpperArm.{S}", "LowerArm": "LowerArm.{S}", "Hand": "Hand.{S}",
        "UpperLeg": "UpperLeg.{S}", "LowerLeg": "LowerLeg.{S}", "Foot": "Foot.{S}", "Toes": "Toes.{S}"}),
    # Reallusion Character Creator / iClone (CC_Base_Spine02 sits between, as do the twist bones).
    "character_creator": _preset(("CC_Base_Hip", "CC_Base_Waist", "CC_Base_Spine02", "CC_Base_NeckTwist01",
                                  "CC_Base_Head"), {
        "Shoulder": "CC_Base_{S}_Clavicle", "UpperArm": "CC_Base_{S}_Upperarm", "LowerArm": "CC_Base_{S}_Forearm",
        "Hand": "CC_Base_{S}_Hand", "UpperLeg": "CC_Base_{S}_Thigh", "LowerLeg": "CC_Base_{S}_Calf",
        "Foot": "CC_Base_{S}_Foot", "Toes": "CC_Base_{S}_ToeBase"}),
    # DAZ Genesis 8/9 (abdomen, chest and neck bones split in two; the lower ones sit between).
    "daz_genesis": _preset(("hip", "abdomenLower", "chestUpper", "neckLower", "head"), {
        "Shoulder": "{s}Collar", "UpperArm": "{s}ShldrBend", "LowerArm": "{s}ForearmBend", "Hand": "{s}Hand",
        "UpperLeg": "{s}ThighBend", "LowerLeg": "{s}Shin", "Foot": "{s}Foot", "Toes": "{s}Toe"}),
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


MIN_CONFIDENCE = 0.75  # below this, a mapping is not used until the user checks it
NAME_CONFIDENCE = 0.8  # below this share of a preset's bones, the hierarchy is asked too
# Without these a body cannot be placed: a mapping missing one is never reported as confident.
# (Hands and toes are left out: some rigs carry the hand on the forearm, or have no toe bone.)
ESSENTIAL = ("Hips", "Head") + tuple(f"{j}_{s}" for s in SIDES
                                     for j in ("UpperArm", "LowerArm", "UpperLeg", "LowerLeg", "Foot"))


def detect(rig: Rig) -> tuple[str | None, float, dict[str, str]]:
    """(how it was found, confidence 0..1, mapping) for a rig whose rest is in world space
    (Rig.in_world: +Z up; any facing). Names first; where no preset fits well, a guess from the
    hierarchy and rest pose alone, named "hierarchy". The confidence is the share of joints
    found, capped below MIN_CONFIDENCE when `problems` finds any."""
    name, share, found = detect_preset(rig.names)
    if share < NAME_CONFIDENCE:
        guess = guess_from_hierarchy(rig)
        if len(guess) / len(CANONICAL_JOINTS) > share:
            name, share, found = "hierarchy", len(guess) / len(CANONICAL_JOINTS), guess
    if name is None:
        return None, 0.0, {}
    return name, confidence(rig, found, share, shape=name == "hierarchy"), found


def confidence(rig: Rig, mapping: dict[str, str], share: float, shape: bool = True) -> float:
    """`share` of the joints found, or less than MIN_CONFIDENCE where the mapping has problems."""
    return share if not problems(rig, mapping, shape) else min(share, MIN_CONFIDENCE - 0.25)


def problems(rig: Rig, mapping: dict[str, str], shape: bool = True) -> list[str]:
    """What is wrong with a mapping on a rig in world space (+Z up), in words: missing essential
    joints and, with `shape` (a mapping read from the shape rather than from names, whose rest
    pose therefore stands), legs or torso in an impossible order (a knee where the foot
    should be)."""
    out = [f"no bone for {', '.join(j for j in ESSENTIAL if j not in mapping)}"] \
        if any(j not in mapping for j in ESSENTIAL) else []
    if not shape:
        return out
    known = {j: rig.names.index(b) for j, b in mapping.items() if b in rig.names}
    z = {j: rig.rest[b, 2, 3] for j, b in known.items()}
    everything = np.concatenate([rig.rest[:, 2, 3], rig.tails[:, 2]])
    floor, top = everything.min(), everything.max()
    height = max(top - floor, 1e-9)
    for side in SIDES:
        leg = [f"{j}_{side}" for j in ("UpperLeg", "LowerLeg", "Foot")]
        have = [j for j in leg if j in z]
        if any(z[a] < z[b] + 0.05 * height for a, b in zip(have, have[1:])):
            out.append(f"the {side} leg's joints are not one above the other ({', '.join(have)})")
        foot = f"Foot_{side}"
        if foot in z and z[foot] - floor > 0.15 * height:
            out.append(f"{foot} ({mapping[foot]}) is {(z[foot] - floor) / height:.0%} of the body above the floor")
    if "Hips" in z and "Head" in z and z["Head"] < z["Hips"] + 0.2 * height:
        out.append("the head is not above the hips")
    return out


def guess_from_hierarchy(rig: Rig) -> dict[str, str]:
    """Canonical joint -> bone, read from the shape of a skeleton in world space (+Z up, any
    facing): the hips are the first bone with two chains reaching down toward the floor and one
    reaching up; along each leg the ankle is the first joint near the floor, the knee and thigh
    the two above it; a foot parented elsewhere (an IK rig) is the bone under the shin, near the floor;
    forward is where the feet point; the chest is where the spine branches into two arms (up,
    out or hanging down); each limb is its chain through the child with most descendants."""
    B = len(rig.names)
    heads, tails = rig.rest[:, :3, 3], rig.tails
    kids: list[list[int]] = [[] for _ in range(B)]
    for b, p in enumerate(rig.parents):
        if p >= 0:
            kids[p].append(b)
    below = [[b] for b in range(B)]  # each bone's subtree, itself first
    for b in range(B - 1, -1, -1):
        for c in kids[b]:
            below[b] += below[c]
    pts = np.concatenate([heads, tails])
    floor = float(pts[:, 2].min())
    height = float(np.ptp(pts[:, 2])) or 1.0
    low = [min(heads[sub, 2].min(), tails[sub, 2].min()) for sub in below]
    high = [max(heads[sub, 2].max(), tails[sub, 2].max()) for sub in below]

    def chain(b: int) -> list[int]:
        out = [b]
        while kids[out[-1]]:
            out.append(max(kids[out[-1]], key=lambda c: len(below[c])))
        return out

    def reaches_down(b: int, c: int) -> bool:
        return low[c] < heads[b, 2] - 0.3 * (heads[b, 2] - floor)

    hips = next((b for b in range(B) if heads[b, 2] > floor + 0.3 * height
                 and sum(reaches_down(b, c) for c in kids[b]) >= 2
                 and any(high[c] > heads[b, 2] + 0.2 * height for c in kids[b])), None)
    if hips is None:
        return {}
    found: dict[str, int] = {"Hips": hips}
    leg_roots = sorted((c for c in kids[hips] if reaches_down(hips, c)), key=lambda c: low[c])[:2]
    legs = []
    for leg in leg_roots:
        bones = chain(leg)
        near = [i for i, b in enumerate(bones) if heads[b, 2] - floor < 0.12 * height]
        if near and near[0] >= 2:  # a foot at the end of the chain
            ankle = near[0]
            joints = {"UpperLeg": bones[ankle - 2], "LowerLeg": bones[ankle - 1], "Foot": bones[ankle]}
            if ankle + 1 < len(bones):
                joints["Toes"] = bones[ankle + 1]
        else:  # the chain stops at the shin: the foot hangs elsewhere (an IK rig), under the shin
            shin = int(np.argmin(heads[bones, 2]))
            if shin < 1:
                continue
            joints = {"UpperLeg": bones[shin - 1], "LowerLeg": bones[shin]}
            taken = {j.get("Foot") for j in legs}
            feet = [b for b in range(B) if b not in below[hips] and b not in taken
                    and heads[b, 2] - floor < 0.12 * height]
            foot = min(feet, key=lambda b: np.linalg.norm((heads[b] - heads[bones[shin]])[:2]), default=None)
            if foot is not None and np.linalg.norm((heads[foot] - heads[bones[shin]])[:2]) < 0.1 * height:
                joints["Foot"] = foot
                if kids[foot]:
                    joints["Toes"] = chain(foot)[1]
        legs.append(joints)
    # Forward: where the feet point (ankle to toe tip); left is up x forward.
    forward = np.zeros(3)
    for joints in legs:
        if "Foot" in joints:
            tip = tails[chain(joints["Foot"])[-1]]
            forward += tip - heads[joints["Foot"]]
    forward[2] = 0.0
    if np.linalg.norm(forward) < 1e-6 * height:
        forward = np.array([0.0, -1.0, 0.0])  # canonical: facing -Y
    left = np.cross([0.0, 0.0, 1.0], forward / np.linalg.norm(forward))

    def side_of(bones: list[int]) -> float:
        return float(np.mean(heads[bones] @ left))

    legs.sort(key=lambda j: -side_of(list(j.values())))  # left first
    for side, joints in zip(SIDES, legs):
        found.update({f"{name}_{side}": b for name, b in joints.items()})
    up = max((c for c in kids[hips] if c not in leg_roots), key=lambda c: high[c], default=None)
    if up is None:
        return {j: rig.names[b] for j, b in found.items()}
    spine = chain(up)

    def is_arm(c: int) -> bool:  # a side branch of three or more bones, off the body's middle
        return len(chain(c)) >= 3 and abs((heads[below[c]] - heads[hips]) @ left).max() > 0.1 * height

    chest = next((b for b in spine if sum(is_arm(c) for c in kids[b]) >= 2), None)
    if chest is None:
        return {j: rig.names[b] for j, b in found.items()}
    between = spine[: spine.index(chest)]
    between = [b for b in between if np.linalg.norm(heads[b] - heads[hips]) > 1e-6 * height] or between
    if between:  # the bone nearest the canonical spine joint's share of the way up to the chest
        rest = canonical_skeleton().rest_positions()[:, 2]
        share = (rest[1] - rest[0]) / (rest[2] - rest[0])
        rise = (heads[between, 2] - heads[hips, 2]) / max(heads[chest, 2] - heads[hips, 2], 1e-9)
        found["Spine"] = between[int(np.argmin(np.abs(rise - share)))]
    found["Chest"] = chest
    arms = sorted((c for c in kids[chest] if is_arm(c)), key=lambda c: -side_of(below[c]))
    arms = [arms[0], arms[-1]] if len(arms) >= 2 else []
    rest_up = [c for c in kids[chest] if c not in arms]
    if rest_up:
        neck = chain(max(rest_up, key=lambda c: high[c]))
        neck = [b for b in neck if np.linalg.norm(heads[b] - heads[chest]) > 0.02 * height] or neck
        found["Neck"] = neck[0]
        if len(neck) > 1:
            found["Head"] = neck[1]
    for side, arm in zip(SIDES, arms):
        bones = chain(arm)
        names = ("Shoulder", "UpperArm", "LowerArm", "Hand") if len(bones) >= 4 else ("UpperArm", "LowerArm", "Hand")
        for joint, b in zip(names, bones):
            found[f"{joint}_{side}"] = b
    return {j: rig.names[b] for j, b in found.items()}


MAX_MAPPING_BYTES = 1 << 20  # a mapping names 21 bones; anything this size is not one
MAX_BONE_NAME = 63           # Blender's limit on a bone name (bytes)


def load_mapping(path: str | Path) -> dict[str, str]:
    """A custom mapping saved as JSON: {"mapping": {canonical joint: bone name}}. Anything else
    (other JSON, deep nesting, a huge or unreadable file) is a ValueError that says what."""
    path = Path(path)
    what = f'{path}: not a DynamicPose mapping'
    try:
        if not path.is_file():
            raise ValueError("no such file")
        if path.stat().st_size > MAX_MAPPING_BYTES:
            raise ValueError(f"larger than {MAX_MAPPING_BYTES} bytes")
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, RecursionError) as e:
        raise ValueError(f"{what} ({e})") from None
    mapping = data.get("mapping") if isinstance(data, dict) else None
    if not isinstance(mapping, dict):
        raise ValueError(f'{what} (expected {{"mapping": {{canonical joint: bone name}}}})')
    unknown = sorted(str(k) for k in set(mapping) - set(CANONICAL_JOINTS))
    if unknown:
        raise ValueError(f"{what} (unknown canonical joints {unknown[:5]})")
    bad = [k for k, v in mapping.items() if not isinstance(v, str) or len(v.encode()) > MAX_BONE_NAME]
    if bad:
        raise ValueError(f"{what} (the bones for {bad[:5]} are not bone names: text of at most "
                         f"{MAX_BONE_NAME} bytes)")
    return dict(mapping)


def save_mapping(path: str | Path, mapping: dict[str, str]) -> None:
    Path(path).write_text(json.dumps({"format_version": 1, "mapping": mapping}, indent=1))
