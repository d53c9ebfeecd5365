# SPDX-License-Identifier: GPL-3.0-or-later
"""Generate, In-between, Regenerate range, Extend and Mirror: motion from the backend (or, for Mirror,
the core alone) onto the user's rig, each as a new action (the one they had is kept)."""
from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np
from bpy.props import IntProperty

from ..motioncore import blend, footlock
from ..motioncore.canonical import BODY_PARTS
from ..motioncore.features import ground_offset
from ..motioncore.limits import MAX_SECONDS
from ..motioncore.retarget import Retarget
from ..rig import action as act
from ..rig import motion_io, read
from . import takes
from .base import BackendOperator, Work, action_name, armature_of, current_action, settings_of, working_armature


@dataclass(frozen=True)
class Take:
    """Where Generate's takes go, read on the main thread before the work starts."""

    armature: str
    rt: Retarget
    text: str
    start: int
    fps: float
    root: str
    floor: str | float
    facing: str
    lock_feet: bool = True
    sparse: float | None = None  # editable keys within this bound (m at the character's size), else one per frame
    as_strip: bool = False       # each take on a new NLA track; the armature's action stays
    seed: int = 0

    @classmethod
    def from_settings(cls, context, text: str) -> Take:
        """Where a take of `text` goes, as the Generate panel says (checked, read on the main thread)."""
        s = settings_of(context)
        obj = armature_of(context, s.target)
        rt = read.retarget_for(obj)
        if s.root_motion == "ROOT" and rt.root_bone is None:
            raise ValueError(f"{obj.name} has no root bone above its hips; pick Hips, Object or In place")
        return cls(obj.name, rt, text, s.start_frame, motion_io.scene_fps(context.scene), s.root_motion,
                   s.floor_setting(), s.start_facing, s.lock_feet, s.key_error_mm / 1000.0 if s.sparse_keys else None,
                   s.as_strip, s.seed)


@dataclass(frozen=True)
class Version:
    """Where In-between's and Edit's result goes: a new version of `action` on `armature`, the
    frames [first, first + length) from the result's [cut, cut + length), lowered by `lift`
    (the result was computed on the motion raised onto the model's floor), the user's keys in
    `keep` left as they are, the keys of bones outside `part` too."""

    armature: str
    action: str
    rt: Retarget
    first: int
    fps: float
    lift: float
    suffix: str
    cut: int = 0
    length: int | None = None
    keep: dict[str, set[float]] = field(default_factory=dict)
    part: str = "body"  # canonical.BODY_PARTS: only that part's bones get keys
    fixed: tuple[int, ...] | None = None  # Lock feet on, these frames of the result are the user's: held exactly


def write_version(plan: Version, motion) -> str:
    """The result of In-between or Edit as a new version of the action; returns what was done."""
    obj, base = bpy.data.objects.get(plan.armature), bpy.data.actions.get(plan.action)
    if obj is None or base is None:
        raise ValueError("the armature or its action is gone")
    stop = motion.num_frames if plan.length is None else plan.cut + plan.length
    if plan.fixed is not None:  # the generated frames' planted feet held, fading out toward the user's frames
        motion = footlock.lock_feet(motion, fixed=plan.fixed)
    part = motion.trim(plan.cut, stop).raised(-plan.lift)
    only = None if plan.part == "body" else plan.rt.bones_for(BODY_PARTS[plan.part])
    made = motion_io.put_motion(obj, part, f"{base.name} {plan.suffix}", plan.rt, frame_start=plan.first,
                                fps=plan.fps, base=base, keep=plan.keep, only=only)
    takes.record(bpy.context.scene, obj, [made], base, plan.suffix)
    return f"frames {plan.first}..{plan.first + part.num_frames - 1}; '{base.name}' is kept"


def _selected_range(selected: dict[str, set[float]]) -> tuple[int, int]:
    """(first, last) frame of the selected keys: what In-between fills between."""
    frames = sorted({round(f) for fs in selected.values() for f in fs})
    if len(frames) < 2:
        raise ValueError("select keys on at least two frames (Dope Sheet, Graph Editor or timeline): "
                         "the frames between the first and the last are filled")
    return frames[0], frames[-1]


def _keys_inside(own: dict[str, set[float]], k0: int, k1: int) -> dict[str, set[float]]:
    return {b: kept for b, fs in own.items() if (kept := {f for f in fs if k0 <= round(f) <= k1})}


def inbetween_problem(selected: dict[str, set[float]], own: dict[str, set[float]]) -> str | None:
    """Why In-between would refuse these keys, judged without the rig's mapping (for the
    panel, which must not enable a button that then refuses); None when it would run."""
    try:
        k0, k1 = _selected_range(selected)
    except ValueError:
        return "select keys on two frames or more"
    keyed = [{round(f) for f in fs} for fs in _keys_inside(own, k0, k1).values()]
    if keyed and all(len(fs) == k1 - k0 + 1 for fs in keyed):
        return f"every frame {k0}-{k1} is keyed: delete the keys to fill"
    return None


def inbetween_keys(selected: dict[str, set[float]], own: dict[str, set[float]], rt: Retarget):
    """What In-between works from: the range is the selected keys' (first to last frame), and
    every key of the user's inside it is kept and used, selected or not (a breakdown is a key).
    Returns (k0, k1, whole-pose frames, {frame - k0: joints keyed there alone}, {bone: frames
    kept}). The range's ends are whole poses as the rig shows them; a frame where every keyed
    joint has a key is one too; any other key pins its own joints."""
    k0, k1 = _selected_range(selected)
    inside = _keys_inside(own, k0, k1)
    full, partial = rt.split_keys(inside)
    whole = sorted({k0, k1} | {round(f) for f in full})
    if len(whole) == k1 - k0 + 1:
        raise ValueError(f"every frame from {k0} to {k1} holds a key of every bone, so there is nothing to fill: "
                         "delete the keys you want in-betweened (or use Regenerate range)")
    some: dict[int, set[str]] = {}
    for f, joints in partial.items():
        if round(f) not in whole:
            some.setdefault(round(f) - k0, set()).update(joints)
    return k0, k1, whole, {f: sorted(j) for f, j in some.items()}, inside


def on_model_floor(obj, rt: Retarget, first: int, last: int, fps: float):
    """(motion, lift): frames first..last of the armature's action as canonical motion raised
    so its feet stand on the model's floor (the model sees them there), and by how much (the
    result is lowered back by it, so the keys come back as they were)."""
    motion = motion_io.take_motion(obj, rt, np.arange(first, last + 1), fps)
    lift = ground_offset(motion)
    return motion.raised(lift), lift


class DYNAMICPOSE_OT_generate(BackendOperator, bpy.types.Operator):
    """Generate motion from the prompt onto the armature, as a new action"""

    bl_idname = "dynamicpose.generate"
    bl_label = "Generate"

    def prepare(self, context) -> Work:
        s = settings_of(context)
        text = s.prompt.strip()
        if not text:
            armature_of(context, s.target)  # no armature is said first
            raise ValueError("write a prompt first")
        self._take = Take.from_settings(context, text)
        fps = self._take.fps
        seconds = s.length_seconds(fps)
        seed, variations = s.seed, s.variations
        return lambda backend, progress, cancel: (backend.generate(
            text, seconds, seed=seed, variations=variations, fps=fps, progress=progress, cancel=cancel),
            getattr(backend, "last_adapter", None))

    def finish(self, context, result) -> None:
        motions, adapter = result
        t = self._take
        obj = bpy.data.objects.get(t.armature)
        if obj is None:
            raise ValueError(f"the armature {t.armature!r} is gone")
        previous = obj.animation_data.action if obj.animation_data else None
        made_all = []
        for i, m in reversed(list(enumerate(motions))):  # the first take ends up active
            suffix = f" #{i + 1}" if len(motions) > 1 else ""
            if t.lock_feet:
                m = footlock.lock_feet(m)
            made = motion_io.put_motion(obj, m, action_name(t.text, suffix), t.rt, frame_start=t.start, fps=t.fps,
                                        root=t.root, floor=t.floor, start=t.facing, sparse=t.sparse)
            if adapter:  # which model made it, for the record (Object > Custom Properties of the action)
                made["dynamicpose_adapter"] = adapter
            if t.as_strip:
                act.to_strip(obj, made, previous, t.start)
            made_all.insert(0, made)
        if not t.as_strip:  # strips are sequenced in the NLA editor; takes are chosen in the Takes panel
            takes.record(context.scene, obj, made_all, previous, "generated",
                         tags=[f"seed {t.seed}" + (f" #{i + 1}" if len(made_all) > 1 else "") for i in range(len(made_all))])
        by = f" by '{adapter}'" if adapter and adapter != "default" else ""
        keys = f"; {made['dynamicpose_keys']}" if t.sparse is not None else ""
        keys += "; on new NLA tracks" if t.as_strip else ""
        self.report({"INFO"}, f"{len(motions)} action(s){by} from {t.start} to {t.start + motions[0].num_frames - 1}"
                              f"{keys}")


class DYNAMICPOSE_OT_inbetween(BackendOperator, bpy.types.Operator):
    """Fill the frames between the first and last selected keys of the active armature, every key of yours in between kept (a new version of its action)"""

    bl_idname = "dynamicpose.inbetween"
    bl_label = "In-between"

    def prepare(self, context) -> Work:
        obj = armature_of(context)
        current = obj.animation_data.action if obj.animation_data else None
        if current is None:
            raise ValueError(f"{obj.name} has no action; key some poses first")
        rt = read.retarget_for(obj)
        fps = motion_io.scene_fps(context.scene)
        k0, k1, whole, some, keep = inbetween_keys(*act.keys_by_bone(obj), rt)
        if (k1 - k0) / fps > MAX_SECONDS:
            raise ValueError(f"the selected keys span {(k1 - k0) / fps:.1f} s; at most {MAX_SECONDS:g} s")
        motion, lift = on_model_floor(obj, rt, k0, k1, fps)
        text = settings_of(context).inbetween_prompt.strip()
        seed = settings_of(context).seed
        idx = [k - k0 for k in whole]
        fixed = tuple(sorted(set(idx) | set(some))) if settings_of(context).lock_feet else None
        self._version = Version(obj.name, current.name, rt, k0, fps, lift, "in-between", keep=keep, fixed=fixed)
        return lambda backend, progress, cancel: backend.inbetween(
            motion, idx, text, seed=seed, partial_keys=some, progress=progress, cancel=cancel)

    def finish(self, context, motion) -> None:
        self.report({"INFO"}, f"filled {write_version(self._version, motion)}")


class DYNAMICPOSE_OT_edit(BackendOperator, bpy.types.Operator):
    """Regenerate a frame range of the active armature's action from the prompt (a new version of the action)"""

    bl_idname = "dynamicpose.edit"
    bl_label = "Regenerate range"

    context_seconds: IntProperty(name="Context", default=2, min=0, max=8,
                                 description="Seconds on each side the model sees (and keeps); "
                                             "unset: the Edit panel's Context")

    def prepare(self, context) -> Work:
        s = settings_of(context)
        obj = armature_of(context)
        current = current_action(obj, "edit")
        scene = context.scene
        start, end = ((scene.frame_preview_start, scene.frame_preview_end) if s.edit_use_preview
                      else (s.edit_start, s.edit_end))
        a0, a1 = (int(round(f)) for f in current.frame_range)
        if not (a0 <= start <= end <= a1):
            raise ValueError(f"the range {start}..{end} must lie inside the action's frames {a0}..{a1}")
        fps = motion_io.scene_fps(scene)
        around = self.context_seconds if self.properties.is_property_set("context_seconds") else s.edit_context_seconds
        pad = int(round(around * fps))
        c0, c1 = max(a0, start - pad), min(a1, end + pad)
        if (c1 - c0) / fps > MAX_SECONDS:
            raise ValueError(f"edit at most {MAX_SECONDS - 2 * around:g} s at a time")
        rt = read.retarget_for(obj)
        motion, lift = on_model_floor(obj, rt, c0, c1, fps)
        text = s.edit_prompt.strip()
        seed, part = s.seed, s.edit_part.lower()
        if part != "body" and not rt.bones_for(BODY_PARTS[part]):
            raise ValueError(f"{obj.name} has no bones mapped to the {s.edit_part.lower()} part")
        outside = (*range(start - c0), *range(end - c0 + 1, c1 - c0 + 1))
        self._version = Version(obj.name, current.name, rt, start, fps, lift, "edit", cut=start - c0,
                                length=end - start + 1, part=part,
                                fixed=outside if s.lock_feet and part != "upper" else None)  # upper: legs as they were
        return lambda backend, progress, cancel: backend.edit(
            motion, start - c0, end - c0 + 1, text, seed=seed, progress=progress, cancel=cancel, part=part)

    def finish(self, context, motion) -> None:
        self.report({"INFO"}, f"regenerated {write_version(self._version, motion)}")


class DYNAMICPOSE_OT_extend(BackendOperator, bpy.types.Operator):
    """Continue the active armature's action by some seconds from the prompt (a new version of it; the frames you had are kept as they are)"""

    bl_idname = "dynamicpose.extend"
    bl_label = "Extend"

    def prepare(self, context) -> Work:
        s = settings_of(context)
        obj = armature_of(context)
        current = current_action(obj, "extend")
        a0, a1 = (int(round(f)) for f in current.frame_range)
        fps = motion_io.scene_fps(context.scene)
        extra = float(s.extend_seconds)
        # The model sees as much of the end of the action as a request holds with the new part.
        seen = min(a1 - a0, int(np.floor((MAX_SECONDS - extra) * fps)) - 1)
        if seen < 1:
            raise ValueError(f"extend by at most {MAX_SECONDS - 2 / fps:.1f} s at a time")
        c0 = a1 - seen
        rt = read.retarget_for(obj)
        motion, lift = on_model_floor(obj, rt, c0, a1, fps)
        text, seed = s.extend_prompt.strip(), s.seed
        self._version = Version(obj.name, current.name, rt, a1 + 1, fps, lift, "extended", cut=seen + 1,
                                fixed=tuple(range(seen + 1)) if s.lock_feet else None)
        return lambda backend, progress, cancel: backend.continue_(
            motion, text, extra, seed=seed, progress=progress, cancel=cancel)

    def finish(self, context, motion) -> None:
        self.report({"INFO"}, f"extended: {write_version(self._version, motion)}")


class DYNAMICPOSE_OT_loop(BackendOperator, bpy.types.Operator):
    """Make the active armature's action a seamless cycle: its last frames regenerated to run on into its first pose, and Cycles modifiers so it repeats (the hips walking on); a new version of it"""

    bl_idname = "dynamicpose.loop"
    bl_label = "Loop"

    def prepare(self, context) -> Work:
        s = settings_of(context)
        obj = armature_of(context)
        current = current_action(obj, "loop")
        a0, a1 = (int(round(f)) for f in current.frame_range)
        fps = motion_io.scene_fps(context.scene)
        if (a1 - a0) / fps > MAX_SECONDS:
            raise ValueError(f"the action spans {(a1 - a0) / fps:.1f} s; loop at most {MAX_SECONDS:g} s")
        frames = max(2, int(round(s.loop_seconds * fps)))
        rt = read.retarget_for(obj)
        motion, lift = on_model_floor(obj, rt, a0, a1, fps)
        target, keys = blend.cycle_keys(motion, frames)
        seed = s.seed
        T = motion.num_frames
        self._version = Version(obj.name, current.name, rt, a1 - frames + 1, fps, lift, "loop", cut=T - frames,
                                length=frames)
        return lambda backend, progress, cancel: backend.inbetween(
            target, keys, "", seed=seed, loop=True, progress=progress, cancel=cancel)

    def finish(self, context, motion) -> None:
        done = write_version(self._version, motion)
        obj = bpy.data.objects[self._version.armature]
        cycled = act.add_cycles(obj, obj.animation_data.action, self._version.rt.rig.names[self._version.rt.hips_bone])
        self.report({"INFO"}, f"looped: {done}; {cycled} curves cycle")


class DYNAMICPOSE_OT_mirror(bpy.types.Operator):
    """Swap left and right in the active armature's action (a new version of it; the one you had is kept)"""

    bl_idname = "dynamicpose.mirror"
    bl_label = "Mirror"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return read.has_action(working_armature(context))

    def execute(self, context):
        from ..motioncore.retarget import mirrored

        try:
            obj = armature_of(context)
            current = current_action(obj, "mirror")
            a0, a1 = (int(round(f)) for f in current.frame_range)
            if a1 <= a0:
                raise ValueError(f"'{current.name}' holds a single frame; mirror a take with motion")
            rt = read.retarget_for(obj)
            fps = motion_io.scene_fps(context.scene)
            motion = motion_io.take_motion(obj, rt, np.arange(a0, a1 + 1), fps)
            plan = Version(obj.name, current.name, rt, a0, fps, 0.0, "mirrored")
            done = write_version(plan, mirrored(motion))
        except (ValueError, KeyError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"mirrored {done}")
        return {"FINISHED"}


CLASSES = (DYNAMICPOSE_OT_generate, DYNAMICPOSE_OT_inbetween, DYNAMICPOSE_OT_edit, DYNAMICPOSE_OT_extend,
           DYNAMICPOSE_OT_loop, DYNAMICPOSE_OT_mirror)
