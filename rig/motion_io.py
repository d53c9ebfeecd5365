"""Canonical motion onto an armature's action, and back: the one path every operator uses."""
from __future__ import annotations

import bpy
import numpy as np

from ..motioncore.canonical import heading_yaw
from ..motioncore.clip import Motion
from ..motioncore.retarget import ROOT_MODES, Retarget, place
from . import action as act


def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / scene.render.fps_base


def put_motion(obj: bpy.types.Object, motion: Motion, name: str, rt: Retarget, frame_start: float,
               fps: float, root: str = "BONE", base: bpy.types.Action | None = None,
               keep: dict[str, set[float]] | None = None, floor: str | float | None = None,
               start: str | None = None, only: list[int] | None = None,
               sparse: float | None = None) -> bpy.types.Action:
    """Write `motion` (canonical) as a new action on `obj`, one key per frame at `fps` from
    frame_start. root: where the travel goes (Retarget.to_rig; OBJECT: on the object's location
    from where it stands, through its parents, the hips keeping their height). floor: see
    Retarget.to_rig (None for motion read from this rig). start: "CHARACTER" starts the motion
    where the character stands and faces at frame_start, "REST" where it stands facing its rest
    pose's way, None as the motion lies. With `base`, the new action is a copy of it with only
    that range replaced, the base's keys on each bone's frames in `keep` ({bone: frames}) left
    as they are; `only` (rig bone indices) limits the keys written to those bones. sparse: a
    bound (metres, at the character's own size: canonical metres) for editable keys instead of
    one per frame: the generated keys thinned until the rig's joints, played from the curves,
    leave the written motion by more than it nowhere (read back and checked;
    action["dynamicpose_keys"] says how it went)."""
    if root not in ROOT_MODES:
        raise ValueError(f"root motion must be one of {ROOT_MODES}, got {root!r}")
    m = motion.resample(fps) if abs(motion.fps - fps) > 1e-6 else motion
    frames = frame_start + np.arange(m.num_frames, dtype=np.float64)
    worlds = world_track(obj, frames) if base is not None else None  # the copy keeps the object's keys
    if worlds is not None:  # the object moves under the keys: take its motion back out
        m = rt.moved(m, worlds, undo=True)
    if start is not None:
        m = place(m, *standing(obj, rt, frame_start, fps, facing=start == "CHARACTER"))
    basis, loc = rt.to_rig(m, root=root, floor=floor)
    located = set()
    b = rt.hips_bone
    while b >= 0:  # the hips carry the root; their ancestors are held at rest, location included
        located.add(b)
        b = rt.rig.parents[b]
    bones = set(rt.written) | ({rt.root_bone} if root == "ROOT" else set())
    if only is not None:
        bones &= set(only)
    located |= {b for b in bones if np.any(loc[:, b])}  # controls shifted onto their joints
    channels = act.pose_channels(obj, sorted(bones), rt.rig.names, basis, loc, located)
    for path, value in rt.switches.items():  # a control rig's switches (FK on) go with the keys
        channels[(path, 0, act.bone_of(path))] = np.full(m.num_frames, value)
    if root == "OBJECT":  # world travel, through the object's parents, onto its location
        parent = np.array(obj.parent.matrix_world) @ np.array(obj.matrix_parent_inverse) if obj.parent \
            else np.eye(4)
        moved = np.array(obj.location) + rt.travel(m) @ np.linalg.inv(parent[:3, :3]).T
        for axis in range(3):
            channels[("location", axis, "Object Transforms")] = moved[:, axis]
    thin = None if sparse is None else (lambda action: _thin_to_bound(obj, action, rt, channels, frames, m.fps, sparse))
    return act.write_action(obj, name, channels, frames, base=base, keep=keep, then=thin)


# How much of the bound each rotation curve may use at first, over its bone's reach. Errors along
# a chain seldom line up: on a real walk at 5 mm, 2 kept 33% of the keys at 4.8 mm, 1 kept 41%
# at 3.0 mm. The read-back check halves every tolerance while the bound is not met.
FIRST_SHARE = 2.0


def key_tolerances(obj: bpy.types.Object, channels, bound: float, units: float) -> dict[tuple[str, int], float]:
    """A value tolerance per curve for a joint position bound (canonical metres: the
    character's own size, `units` rig units each): locations by the object's scale, rotations
    by how far the bone reaches (its farthest descendant)."""
    scale = float(np.mean(np.array(obj.matrix_world.to_scale()))) or 1.0
    reach = {}
    for bone in obj.data.bones:
        tips = [np.array(c.tail_local) for c in bone.children_recursive] + [np.array(bone.tail_local)]
        reach[bone.name] = max(float(np.linalg.norm(t - np.array(bone.head_local))) for t in tips) * scale / units
    out = {}
    for path, index, _group in channels:
        bone = act.bone_of(path)
        if path.endswith("location"):
            out[(path, index)] = bound * units / (scale if bone is not None else 1.0)
        elif bone is not None and "rotation" in path:
            far = max(reach.get(bone, 0.0), 1e-3)
            # |dq| per component near theta / 4 for a turn theta; an Euler angle error near theta / 2
            per_turn = 4.0 if path.endswith("rotation_quaternion") else 2.0
            out[(path, index)] = FIRST_SHARE * bound / (far * per_turn)
    return out


def _thin_to_bound(obj, action, rt: Retarget, channels, frames, fps: float, bound: float) -> None:
    dense = take_motion(obj, rt, frames, fps).positions()
    tolerance = key_tolerances(obj, channels, bound, rt.scale)
    total = len(frames) * len(tolerance)
    for _ in range(5):
        left = act.thin_keys(obj, action, channels, frames, tolerance)
        error = float(np.linalg.norm(take_motion(obj, rt, frames, fps).positions() - dense, axis=-1).max())
        if error <= bound:
            break
        tolerance = {k: v / 2 for k, v in tolerance.items()}
    else:  # still over: every frame keyed again, as written
        left = act.thin_keys(obj, action, channels, frames, {k: 0.0 for k in tolerance})
        error = 0.0
    action["dynamicpose_keys"] = f"{left} of {total} keys, within {1000 * error:.1f} mm"


def standing(obj: bpy.types.Object, rt: Retarget, frame: float, fps: float, facing: bool = True
             ) -> tuple[np.ndarray, float]:
    """(root XY, facing yaw) of the character at `frame`, in the retargeting's canonical terms:
    its current action there (or its pose, unanimated). facing=False: its rest pose's facing."""
    now = take_motion(obj, rt, np.array([float(frame)]), fps)
    yaw = float(heading_yaw(now.positions())[0]) if facing else 0.0
    return now.root_position[0, :2], yaw


def take_motion(obj: bpy.types.Object, rt: Retarget, frames: np.ndarray, fps: float,
                action: bpy.types.Action | None = None) -> Motion:
    """The armature's current action (or the given one) at `frames` as a canonical motion, in
    the world: where the object (or a parent) is animated, its motion is in it."""
    basis, loc = act.read_channels(obj, rt.rig.names, np.asarray(frames, dtype=float), action=action)
    motion = rt.from_rig(basis, loc, fps)
    current = obj.animation_data.action if obj.animation_data else None
    worlds = world_track(obj, frames) if action is None or action == current else None
    return motion if worlds is None else rt.moved(motion, worlds)


def world_track(obj: bpy.types.Object, frames) -> np.ndarray | None:
    """(T, 4, 4) the object's world matrix at each frame, or None where neither it nor a parent
    is animated (the usual case: then it stands as it stands now). The scene is put back on its
    frame afterwards."""
    if not any(_moves(o) for o in _lineage(obj)):
        return None
    scene = bpy.context.scene
    was = scene.frame_current, scene.frame_subframe
    out = []
    try:
        for f in np.asarray(frames, dtype=float):
            scene.frame_set(int(np.floor(f)), subframe=float(f - np.floor(f)))
            out.append(np.array(obj.matrix_world))
    finally:
        scene.frame_set(was[0], subframe=was[1])
    return np.array(out)


def _lineage(obj):
    while obj is not None:
        yield obj
        obj = obj.parent


def _moves(obj) -> bool:
    """Whether the object's transform is driven or keyed in its action (not only its bones)."""
    anim = obj.animation_data
    if anim is None:
        return False
    if anim.drivers:
        return True
    channels = act.object_channels(obj, anim.action) if anim.action is not None else ()
    return any(path in ("location", "rotation_euler", "rotation_quaternion", "rotation_axis_angle", "scale",
                        "delta_location", "delta_rotation_euler", "delta_rotation_quaternion", "delta_scale")
               for path in channels)


def retarget_action(source: bpy.types.Object, rt_source: Retarget, action: bpy.types.Action,
                    target: bpy.types.Object, rt_target: Retarget, fps: float, root: str = "BONE"
                    ) -> bpy.types.Action:
    """`action` (animating `source`) as a new action on `target`, over the same frames."""
    lo, hi = (round(f) for f in action.frame_range)
    motion = take_motion(source, rt_source, np.arange(lo, hi + 1), fps, action=action)
    return put_motion(target, motion, f"{action.name} ({target.name})", rt_target, frame_start=lo, fps=fps,
                      root=root, floor="AUTO")
