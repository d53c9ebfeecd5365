"""Pose channels in and out of Actions, in bulk, through the slotted-action API.

Blender 4.4+ actions are slotted (5.0 removed Action.fcurves); 4.2/4.3 keep fcurves on the
action itself. Keys go in with keyframe_points.add + foreach_set, about 100x faster than
keyframe_insert. Rotations are written in each bone's own rotation mode, so the user's rig
settings are never changed.
"""
from __future__ import annotations

import bpy
import numpy as np

from ..motioncore import rotations as rot

GENERATED_KEY = "GENERATED"  # keyframe type marking our keys (Blender 4.2+), so the user's stand out


def _channelbag(action: bpy.types.Action, obj: bpy.types.Object, create: bool):
    """The channel container of `action` for `obj`: the action itself on 4.2/4.3, the
    channelbag of its slot on 4.4+ (None if absent and not created)."""
    if not hasattr(action, "slots"):  # Blender 4.2/4.3: legacy actions hold their fcurves
        return action
    anim = obj.animation_data
    slot = anim.action_slot if anim is not None and anim.action == action else None
    if slot is None:
        slot = next((s for s in action.slots if s.target_id_type == "OBJECT"), None)
    if slot is None:
        if not create:
            return None
        slot = action.slots.new(id_type="OBJECT", name=obj.name)
    from bpy_extras import anim_utils

    if hasattr(anim_utils, "action_ensure_channelbag_for_slot"):  # Blender 5.0+
        bag = anim_utils.action_get_channelbag_for_slot(action, slot)
        return anim_utils.action_ensure_channelbag_for_slot(action, slot) if bag is None and create else bag
    # Blender 4.4/4.5: layered actions without 5.0's helpers; one layer, one keyframe strip.
    if not action.layers:
        if not create:
            return None
        action.layers.new("Layer")
    layer = action.layers[0]
    if not layer.strips:
        if not create:
            return None
        layer.strips.new(type="KEYFRAME")
    return layer.strips[0].channelbag(slot, ensure=create)


def _fcurves(action: bpy.types.Action, obj: bpy.types.Object, create: bool):
    bag = _channelbag(action, obj, create)
    return None if bag is None else bag.fcurves


_GROUP_PARAMETER: dict[str, str] = {}


def _group_parameter(bag) -> str:
    """The name fcurves.new takes the group by on this Blender ("" for none), asked of its
    RNA once per collection type: asking on every curve cost 10% of writing a take."""
    rna = bag.fcurves.bl_rna
    if rna.identifier not in _GROUP_PARAMETER:
        params = {p.identifier for p in rna.functions["new"].parameters}
        _GROUP_PARAMETER[rna.identifier] = next((n for n in ("group_name", "action_group") if n in params), "")
    return _GROUP_PARAMETER[rna.identifier]


def _new_fcurve(bag, path: str, index: int, group: str):
    """An fcurve in group `group`, however this Blender's API takes the group: 4.2/4.3
    `action_group=`, 5.0+ `group_name=`, 4.4/4.5 neither (the group is made and set)."""
    name = _group_parameter(bag)
    if name:
        return bag.fcurves.new(path, index=index, **{name: group})
    fc = bag.fcurves.new(path, index=index)
    grp = bag.groups.get(group) or bag.groups.new(group)
    fc.group = grp
    return fc


def assign(obj: bpy.types.Object, action: bpy.types.Action) -> None:
    """Make `action` the object's action, keeping the previous one safe (fake user)."""
    anim = obj.animation_data or obj.animation_data_create()
    if anim.action is not None and anim.action != action:
        anim.action.use_fake_user = True
    anim.action = action
    if hasattr(action, "slots"):
        slot = next((s for s in action.slots if s.target_id_type == "OBJECT"), None)
        anim.action_slot = slot or action.slots.new(id_type="OBJECT", name=obj.name)


def to_strip(obj: bpy.types.Object, action: bpy.types.Action, previous: bpy.types.Action | None,
             start: float) -> bpy.types.NlaStrip:
    """`action` (just written onto obj) moved to a strip of a new NLA track from `start`, and
    the object's `previous` action (or none) made its action again: a take to sequence, blend
    and layer over the animation that was there."""
    anim = obj.animation_data
    track = anim.nla_tracks.new()
    track.name = action.name
    strip = track.strips.new(action.name, int(round(start)), action)
    if hasattr(strip, "action_slot") and hasattr(action, "slots"):  # Blender 4.4+: strips name a slot
        strip.action_slot = next(s for s in action.slots if s.target_id_type == "OBJECT")
    anim.action = previous
    if previous is not None and hasattr(previous, "slots"):
        anim.action_slot = next((s for s in previous.slots if s.target_id_type == "OBJECT"), None)
    return strip


def _rotation_channels(mode: str, q: np.ndarray) -> tuple[str, np.ndarray]:
    """(T, 4) wxyz -> (property name, (T, n) values) in a bone's rotation mode."""
    if mode == "QUATERNION":
        return "rotation_quaternion", rot.make_continuous(q)
    if mode == "AXIS_ANGLE":
        aa = rot.to_axis_angle(q)
        angle = np.linalg.norm(aa, axis=-1, keepdims=True)
        axis = np.where(angle > 1e-9, aa / np.maximum(angle, 1e-12), [0.0, 1.0, 0.0])
        return "rotation_axis_angle", np.concatenate([angle, axis], axis=-1)
    euler = rot.to_blender_euler(q, mode)
    return "rotation_euler", np.unwrap(euler, axis=0)  # no 360-degree flips between keys


def pose_channels(obj: bpy.types.Object, bones: list[int], names: tuple[str, ...], basis: np.ndarray,
                  loc: np.ndarray, located: set[int]) -> dict[tuple[str, int, str], np.ndarray]:
    """{(data path, index, group): (T,) values} for the listed bones: rotations in each bone's
    mode, locations for the bones in `located`."""
    out = {}
    for b in bones:
        name = names[b]
        pb = obj.pose.bones[name]
        prop, values = _rotation_channels(pb.rotation_mode, basis[:, b])
        for i in range(values.shape[1]):
            out[(f'pose.bones["{name}"].{prop}', i, name)] = values[:, i]
        if b in located:
            for i in range(3):
                out[(f'pose.bones["{name}"].location', i, name)] = loc[:, b, i]
    return out


def write_action(obj: bpy.types.Object, name: str, channels: dict[tuple[str, int, str], np.ndarray],
                 frames: np.ndarray, key_type: str = GENERATED_KEY, base: bpy.types.Action | None = None,
                 keep: dict[str, set[float]] | None = None, then=None) -> bpy.types.Action:
    """A new Action on `obj` with one key per frame on each channel. With `base`, the new
    action starts as a copy of it and the given channels replace theirs only inside
    [frames[0], frames[-1]]; the base's keys on a bone's frames in `keep` ({bone: frames}, the
    user's own keys) stay as they are; then(action) runs last (thinning the keys). If anything
    fails, the object gets its previous action back and the new one is removed: nothing
    half-written is left."""
    previous = obj.animation_data.action if obj.animation_data else None
    previous_slot = obj.animation_data.action_slot if previous is not None and hasattr(previous, "slots") else None
    action = base.copy() if base is not None else bpy.data.actions.new(name)
    action.name = name
    try:
        _fill(obj, action, channels, np.asarray(frames, dtype=float), key_type, keep or {})
        if then is not None:
            then(action)
    except Exception:
        if previous is not None:
            obj.animation_data.action = previous
            if previous_slot is not None:
                obj.animation_data.action_slot = previous_slot
        elif obj.animation_data is not None:
            obj.animation_data.action = None
        bpy.data.actions.remove(action)
        raise
    return action


def _fill(obj, action, channels, frames, key_type, keep) -> None:
    assign(obj, action)
    bag = _channelbag(action, obj, create=True)
    fcurves = bag.fcurves
    kind = bpy.types.Keyframe.bl_rna.properties["type"].enum_items[key_type].value
    lo, hi = float(frames[0]), float(frames[-1])
    all_frames = frames
    for (path, index, group), values in channels.items():
        fc = fcurves.find(path, index=index)
        kept: list[float] = []
        if fc is None:
            fc = _new_fcurve(bag, path, index, group)
        else:  # replace only the range; the user's keys outside it, and on kept frames, stay
            own = keep.get(group, ())
            inside = [k for k in fc.keyframe_points if lo <= k.co[0] <= hi]
            kept = [k.co[0] for k in inside if k.co[0] in own]
            for k in [k for k in inside if k.co[0] not in own][::-1]:
                fc.keyframe_points.remove(k, fast=True)
        if kept:
            write = ~np.isin(all_frames, np.array(kept, dtype=float))
            _add_keys(fc, all_frames[write], np.asarray(values)[write], kind)
        else:
            _add_keys(fc, all_frames, values, kind)


def _add_keys(fc, frames: np.ndarray, values: np.ndarray, kind: int) -> None:
    """Keys of type `kind` at `frames` added to the curve in bulk, after the keys it holds
    (Blender sorts them in update())."""
    n0 = len(fc.keyframe_points)
    fc.keyframe_points.add(len(frames))
    co = np.empty(2 * (n0 + len(frames)), dtype=np.float32)
    types = np.empty(n0 + len(frames), dtype=np.int32)
    if n0:  # the keys it holds go back as they are
        fc.keyframe_points.foreach_get("co", co)
        fc.keyframe_points.foreach_get("type", types)
    co[2 * n0::2], co[2 * n0 + 1::2] = frames, values
    types[n0:] = kind
    fc.keyframe_points.foreach_set("co", co)
    fc.keyframe_points.foreach_set("type", types)
    fc.update()


def thin_keys(obj: bpy.types.Object, action: bpy.types.Action, channels: dict[tuple[str, int, str], np.ndarray],
              frames: np.ndarray, tolerance: dict[tuple[str, int], float]) -> int:
    """Editable keys: on each curve of `channels` with a tolerance, the generated keys inside
    [frames[0], frames[-1]] thinned to those Blender's curve needs (its own Bezier through them,
    evaluated by Blender) to stay within the tolerance of the written values at every frame.
    The range's ends and every key of the user's are kept; each pass adds the worst frame of
    every stretch still out of tolerance.
    Returns how many keys are left in the range."""
    bag = _channelbag(action, obj, create=False)
    kind = bpy.types.Keyframe.bl_rna.properties["type"].enum_items[GENERATED_KEY].value
    frames = np.asarray(frames, dtype=float)
    left = 0
    for (path, index, _group), values in channels.items():
        tol = tolerance.get((path, index))
        fc = bag.fcurves.find(path, index=index) if bag is not None else None
        if tol is None or fc is None:
            continue
        left += _thin_curve(fc, frames, np.asarray(values, dtype=float), tol, kind)
    return left


def _thin_curve(fc, frames: np.ndarray, values: np.ndarray, tol: float, generated: int) -> int:
    lo, hi = frames[0], frames[-1]
    n = len(fc.keyframe_points)
    co, types = np.empty(2 * n, dtype=np.float32), np.empty(n, dtype=np.int32)
    fc.keyframe_points.foreach_get("co", co)
    fc.keyframe_points.foreach_get("type", types)
    x = co[0::2]
    own = set(x[(x >= lo) & (x <= hi) & (types != generated)].tolist())  # the user's keys stay
    mine = np.isin(frames, list(own))
    keep = set(np.flatnonzero(mine).tolist()) | {0, len(frames) - 1}
    while True:
        chosen = np.array(sorted(keep))
        write = chosen[~mine[chosen]]
        for k in [k for k in fc.keyframe_points if lo <= k.co[0] <= hi and k.type == GENERATED_KEY][::-1]:
            fc.keyframe_points.remove(k, fast=True)
        _add_keys(fc, frames[write], values[write], generated)
        error = np.abs(np.array([fc.evaluate(f) for f in frames]) - values)
        error[chosen] = 0.0
        worst = [a + 1 + int(np.argmax(error[a + 1: b])) for a, b in zip(chosen[:-1], chosen[1:])
                 if b - a > 1 and error[a + 1: b].max() > tol]
        if not worst:
            return len(chosen)
        keep.update(worst)


def read_channels(obj: bpy.types.Object, names: tuple[str, ...], frames: np.ndarray,
                  action: bpy.types.Action | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The object's action (or the given one) evaluated at `frames` -> (basis (T, B, 4) wxyz,
    location (T, B, 3)) for every bone; channels without an fcurve take the pose bone's
    current value."""
    T, B = len(frames), len(names)
    basis, loc = np.zeros((T, B, 4)), np.zeros((T, B, 3))
    if action is None:
        action = obj.animation_data.action if obj.animation_data else None
    fcurves = _fcurves(action, obj, create=False) if action is not None else None

    def track(pb, prop: str, n: int) -> np.ndarray:
        current = np.array(getattr(pb, prop), dtype=float)
        out = np.tile(current, (T, 1))
        path = f'pose.bones["{pb.name}"].{prop}'
        for i in range(n):
            fc = fcurves.find(path, index=i) if fcurves is not None else None
            if fc is not None:
                out[:, i] = [fc.evaluate(float(f)) for f in frames]
        return out

    for b, name in enumerate(names):
        pb = obj.pose.bones[name]
        mode = pb.rotation_mode
        if mode == "QUATERNION":
            q = rot.normalize(track(pb, "rotation_quaternion", 4))
        elif mode == "AXIS_ANGLE":
            v = track(pb, "rotation_axis_angle", 4)
            q = rot.from_axis_angle(v[:, 1:] / np.linalg.norm(v[:, 1:], axis=-1, keepdims=True) * v[:, :1])
        else:
            q = rot.from_blender_euler(track(pb, "rotation_euler", 3), mode)
        basis[:, b] = q
        loc[:, b] = track(pb, "location", 3)
    return basis, loc


def add_cycles(obj: bpy.types.Object, action: bpy.types.Action, hips: str) -> int:
    """A Cycles modifier on every pose-bone curve of the action (once), so it repeats before
    and after its range; the hips' location repeats with offset, so a walk walks on. Returns
    how many curves cycle."""
    n = 0
    for fc in _fcurves(action, obj, create=False) or []:
        if bone_of(fc.data_path) is None:
            continue
        mod = next((m for m in fc.modifiers if m.type == "CYCLES"), None) or fc.modifiers.new("CYCLES")
        travel = fc.data_path == f'pose.bones["{hips}"].location'
        mod.mode_before = mod.mode_after = "REPEAT_OFFSET" if travel else "REPEAT"
        n += 1
    return n


def object_channels(obj: bpy.types.Object, action: bpy.types.Action) -> set[str]:
    """The data paths `action` keys on `obj` itself (its transform), not on its bones."""
    fcurves = _fcurves(action, obj, create=False)
    return {fc.data_path for fc in fcurves or [] if not fc.data_path.startswith("pose.")}


def bone_of(data_path: str) -> str | None:
    """'pose.bones["name"].rotation_quaternion' (or ...["prop"]) -> "name"; None for other paths."""
    if not data_path.startswith('pose.bones["'):
        return None
    return data_path[len('pose.bones["'):].split('"]', 1)[0]


def animates_bones(action: bpy.types.Action, obj: bpy.types.Object) -> bool:
    """Whether the action holds keys on any of the armature's pose bones."""
    fcurves = _fcurves(action, obj, create=False)
    prefixes = tuple(f'pose.bones["{b.name}"]' for b in obj.data.bones)
    return any(fc.data_path.startswith(prefixes) and len(fc.keyframe_points) for fc in fcurves or [])


def keys_by_bone(obj: bpy.types.Object) -> tuple[dict[str, set[float]], dict[str, set[float]]]:
    """Per pose bone, over the object's action: (frames holding a selected key, frames holding
    one of the user's keys: selected, or of any type but the add-on's own GENERATED)."""
    action = obj.animation_data.action if obj.animation_data else None
    fcurves = _fcurves(action, obj, create=False) if action is not None else None
    generated = bpy.types.Keyframe.bl_rna.properties["type"].enum_items[GENERATED_KEY].value
    selected: dict[str, set[float]] = {}
    own: dict[str, set[float]] = {}
    for fc in fcurves or []:
        bone = bone_of(fc.data_path)
        if bone is None:
            continue
        n = len(fc.keyframe_points)
        sel = np.zeros(n, dtype=bool)
        types = np.empty(n, dtype=np.int32)
        co = np.empty(2 * n, dtype=np.float32)
        fc.keyframe_points.foreach_get("select_control_point", sel)
        fc.keyframe_points.foreach_get("type", types)
        fc.keyframe_points.foreach_get("co", co)
        mine = sel | (types != generated)
        if sel.any():
            selected.setdefault(bone, set()).update(float(f) for f in co[0::2][sel])
        if mine.any():
            own.setdefault(bone, set()).update(float(f) for f in co[0::2][mine])
    return selected, own
