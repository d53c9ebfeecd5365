"""A Blender armature as a motioncore Rig, and the retargeting set up for it."""
from __future__ import annotations

import bpy
import numpy as np

from ..motioncore.retarget import Retarget
from ..motioncore.rigs import CONTROL_RIGS, MIN_CONFIDENCE, PRESETS, Rig, detect, problems
from . import action as act


def active_armature(context) -> bpy.types.Object | None:
    """The active object when it is an armature, else None (panels grey out, operators refuse)."""
    obj = context.active_object
    return obj if obj is not None and obj.type == "ARMATURE" else None


def has_action(obj: bpy.types.Object | None) -> bool:
    """Whether the object plays an action (what Edit, Extend and Mirror work on)."""
    return obj is not None and obj.animation_data is not None and obj.animation_data.action is not None


def rig_from_armature(obj: bpy.types.Object) -> Rig:
    """Bones in parents-first order with their armature-space rest matrices and tails."""
    if obj is None or obj.type != "ARMATURE":
        raise ValueError("select an armature object")
    order: list[bpy.types.Bone] = []
    stack = [b for b in obj.data.bones if b.parent is None][::-1]
    while stack:
        bone = stack.pop()
        order.append(bone)
        stack.extend(list(bone.children)[::-1])
    index = {b.name: i for i, b in enumerate(order)}
    return Rig([b.name for b in order], [index[b.parent.name] if b.parent else -1 for b in order],
               np.array([np.array(b.matrix_local) for b in order]), np.array([np.array(b.tail_local) for b in order]))


def world_matrix(obj: bpy.types.Object, update: bool = True) -> np.ndarray:
    """The object's world matrix (parents, constraints and animation included) at the current
    frame. update: evaluate the scene first, so a transform just set by a script counts (not
    allowed while a panel draws)."""
    if update:
        bpy.context.view_layer.update()
    return np.array(obj.matrix_world)


def detection(obj: bpy.types.Object, update: bool = True) -> tuple[str | None, float, dict[str, str]]:
    """detect() on the armature as it stands in the world, remembered per armature until its
    bones or transform change (the Retarget panel asks on every redraw)."""
    if obj is None or obj.type != "ARMATURE":
        raise ValueError("select an armature object")
    bones = obj.data.bones
    ends = np.empty(6 * len(bones), dtype=np.float32)  # heads, then tails: cheap to read in bulk
    bones.foreach_get("head_local", ends[: 3 * len(bones)])
    bones.foreach_get("tail_local", ends[3 * len(bones):])
    world = world_matrix(obj, update)
    key = (obj.data.name, tuple(bones.keys()), ends.tobytes(), world.round(5).tobytes())
    if _DETECTED.get(obj.name, (None,))[0] != key:
        _DETECTED[obj.name] = (key, detect(rig_from_armature(obj).in_world(world)))
    return _DETECTED[obj.name][1]


_DETECTED: dict[str, tuple] = {}


def doubt(obj: bpy.types.Object, preset: str | None, confidence: float, mapping: dict[str, str]) -> str | None:
    """Why a detected mapping may not be used (below MIN_CONFIDENCE), in words; None when it may."""
    if preset is not None and confidence >= MIN_CONFIDENCE:
        return None
    wrong = problems(rig_from_armature(obj).in_world(world_matrix(obj, update=False)), mapping,
                     shape=preset == "hierarchy") if mapping else ["nothing humanoid found"]
    return f"no reliable mapping found (best: {preset or 'none'}, {confidence:.0%}; {'; '.join(wrong)})"


def custom_mapping(obj: bpy.types.Object) -> dict[str, str] | None:
    """The mapping the user set in the Retarget panel, when it is switched on."""
    if not getattr(obj, "dynamicpose_use_custom", False):
        return None
    return {row.joint: row.bone for row in obj.dynamicpose_map if row.bone}


def retarget_for(obj: bpy.types.Object, mapping: dict[str, str] | None = None) -> Retarget:
    """The retargeting for this armature as it stands in the world: the given mapping, the
    user's custom one, or the best preset found (refused, with what is wrong, when unsure)."""
    rig = rig_from_armature(obj)
    world = world_matrix(obj)
    mapping = mapping if mapping is not None else custom_mapping(obj)
    preset = None
    if mapping is None:
        preset, confidence, mapping = detection(obj)
        unsure = doubt(obj, preset, confidence, mapping)
        if unsure:
            raise ValueError(f"{obj.name}: {unsure}; set a mapping in the Retarget panel")
    control = CONTROL_RIGS.get(preset)
    if control is None:
        return Retarget(rig, mapping, world=world)
    joints = {j: rig.rest[rig.index(b), :3, 3] for j, b in PRESETS[control["joints"]].items() if b in rig.names}
    switches = {path: value for path, value in control["switches"].items() if _resolve(obj, path) is not None}
    key = (obj.data.name, tuple(sorted(mapping.items())), rig.rest.round(6).tobytes(), tuple(sorted(switches.items())))
    if key not in _MEASURED:  # measuring turns every control once in Blender: do it once per rig
        _MEASURED.clear()
        _MEASURED[key] = measure_drivers(obj, mapping, switches)
    drivers, rest_pose, pivots = _MEASURED[key]
    return Retarget(rig, mapping, drivers=drivers, joint_heads=joints, switches=switches, rest_pose=rest_pose,
                    pivots=pivots, world=world)


_MEASURED: dict[tuple, tuple] = {}  # the last control rig measured (a rig's rest and mapping key it)


def _resolve(obj: bpy.types.Object, path: str):
    """'pose.bones["b"]["prop"]' -> (pose bone, prop), or None where the rig lacks it."""
    pb = obj.pose.bones.get(act.bone_of(path) or "")
    prop = path.rsplit('["', 1)[-1].rstrip('"]')
    return (pb, prop) if pb is not None and prop in pb.keys() else None


def measure_drivers(obj: bpy.types.Object, mapping: dict[str, str], switches: dict[str, float]
                    ) -> tuple[dict[str, str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(drivers, rest pose, pivots) of a control rig, measured by turning each mapped control
    in Blender. Drivers: which mapped control's turn each one follows (its parent turns with it
    rigidly; of several, the one fewest others follow). Rest pose: each control's matrix as
    evaluated at rest, switches on. Pivots: the point each control turns what it drives about.
    The rig's pose, action and switches are put back afterwards."""
    from mathutils import Matrix, Quaternion

    anim = obj.animation_data
    action = anim.action if anim else None
    slot = anim.action_slot if anim is not None and action is not None and hasattr(anim, "action_slot") else None
    bones = {j: obj.pose.bones[b] for j, b in mapping.items()}
    saved_pose = {j: pb.matrix_basis.copy() for j, pb in bones.items()}
    saved_switches = {}
    layer = bpy.context.view_layer
    try:
        if action is not None:
            anim.action = None
        for path, value in switches.items():
            pb, prop = _resolve(obj, path)
            saved_switches[path] = pb[prop]
            pb[prop] = value
        for pb in bones.values():
            pb.matrix_basis = Matrix.Identity(4)
        layer.update()

        def parent_turns() -> dict[str, np.ndarray]:
            return {j: np.array(pb.parent.matrix.to_3x3()) if pb.parent else np.eye(3) for j, pb in bones.items()}

        rest_pose = {j: np.array(pb.matrix) for j, pb in bones.items()}
        rest_world = {j: m[:3, :3] for j, m in rest_pose.items()}
        rest_parent = parent_turns()
        rest_heads = {j: np.array(pb.head) for j, pb in bones.items()}
        probe = Quaternion((0.3, 0.5, -0.2), 0.6).to_matrix().to_4x4()
        followers: dict[str, set[str]] = {}
        moves: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
        for d, pb in bones.items():
            pb.matrix_basis = probe
            layer.update()
            turn = np.array(pb.matrix.to_3x3()) @ rest_world[d].T
            moves[d] = (turn, {j: np.array(b.head) for j, b in bones.items()})
            now = parent_turns()
            followers[d] = {c for c in bones if c != d and not np.allclose(now[c], rest_parent[c], atol=1e-5)
                            and np.allclose(now[c], turn @ rest_parent[c], atol=1e-4)}
            pb.matrix_basis = Matrix.Identity(4)
        layer.update()
    finally:
        for path, old in saved_switches.items():
            pb, prop = _resolve(obj, path)
            pb[prop] = old
        for j, pb in bones.items():
            pb.matrix_basis = saved_pose[j]
        if action is not None:
            anim.action = action
            if slot is not None:
                anim.action_slot = slot
        layer.update()
    drivers = {}
    for c in bones:
        leaders = [d for d, f in followers.items() if c in f]
        if leaders:
            drivers[c] = min(leaders, key=lambda d: len(followers[d]))
    # Where each control really turns what it drives about: the heads it drives move as
    # p + turn (head - p). That fixes p up to the turn's axis; along it, p is the nearest
    # point to the control's own head.
    pivots = {}
    for d in bones:
        driven = [c for c, lead in drivers.items() if lead == d]
        if not driven:
            continue
        turn, heads = moves[d]
        rows = np.concatenate([np.eye(3) - turn] * len(driven))
        rhs = np.concatenate([heads[c] - turn @ rest_heads[c] for c in driven])
        p = np.linalg.lstsq(rows, rhs, rcond=None)[0]
        w, v = np.linalg.eig(turn)
        axis = np.real(v[:, np.argmin(np.abs(w - 1))])
        pivots[d] = p + axis * (axis @ (rest_heads[d] - p))
    return drivers, rest_pose, pivots
