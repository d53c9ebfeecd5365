# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on's operators. Each one prepares on the main thread (reads the rig and the keys),
runs the model on a worker thread through the backend, and writes keys back on the main
thread as one undo step. Invoked from the UI they run modal: a progress bar, Esc cancels,
Blender stays responsive. Executed from a script they block and return when done."""
from __future__ import annotations

import time

import bpy
import numpy as np
from bpy.props import IntProperty

from . import preferences, session
from .props import MAX_SECONDS
from .client import BackendError, Cancelled
from .motioncore.features import ground_offset
from .rig import action as act
from .rig import motion_io, read

REFUSALS = (ValueError, KeyError, BackendError)  # readable reasons; anything else is a bug
RUNNING: dict[str, "_BackendOperator"] = {}  # operators working in the background, for the panels


def _settings(context):
    return context.scene.dynamicpose


def _armature(context, explicit=None) -> bpy.types.Object:
    obj = explicit or context.active_object
    if obj is None or obj.type != "ARMATURE":
        raise ValueError("select an armature (or set the target armature in the panel)")
    return obj


def _action_name(text: str, suffix: str = "") -> str:
    words = " ".join(text.split())[:48] or "motion"
    return f"DP {words}{suffix}"


class _BackendOperator:
    bl_options = {"REGISTER", "UNDO"}

    def prepare(self, context):
        """Read and check everything on the main thread; return job(backend, progress, cancel)."""
        raise NotImplementedError

    def finish(self, context, result) -> None:
        """Write the result into the scene (main thread)."""

    def _work(self, context):
        config = session.BackendConfig.from_preferences(preferences.get(context))
        job = self.prepare(context)
        return lambda progress, cancel: job(session.connect(config), progress, cancel)

    def execute(self, context):
        """Scripts and background Blender: the same work and the same steps, waited for here."""
        if not self._start(context):
            return {"CANCELLED"}
        while (state := self.step(context)) == {"PASS_THROUGH"}:
            time.sleep(0.02)
        return state

    def invoke(self, context, event):
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _start(self, context) -> bool:
        try:
            work = self._work(context)
        except REFUSALS as e:
            self.report({"ERROR"}, str(e))
            return False
        self._task = session.Task(work)
        RUNNING[type(self).bl_idname] = self
        context.window_manager.progress_begin(0, 100)
        return True

    def _finish(self, context, result):
        try:
            self.finish(context, result)
        except REFUSALS as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        except Exception as e:  # a bug: say so plainly; write_action has already undone its part
            self.report({"ERROR"}, f"DynamicPose failed while writing keys ({type(e).__name__}: {e}); "
                                   "nothing was changed")
            return {"CANCELLED"}
        return {"FINISHED"}

    def _end(self, context) -> None:
        RUNNING.pop(type(self).bl_idname, None)
        wm = context.window_manager
        if getattr(self, "_timer", None) is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self.cancel_work()
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        return self.step(context)

    @property
    def progress(self) -> float:
        return self._task.progress

    def cancel_work(self) -> None:
        """What Esc does (and the panel's cancel button)."""
        self._task.cancel.set()

    def step(self, context) -> set[str]:
        """One timer tick: show progress while the work runs, then write the result."""
        task = self._task
        if not task.done.is_set():
            context.window_manager.progress_update(int(100 * task.progress))
            if context.workspace is not None:
                context.workspace.status_text_set(f"DynamicPose: {self.bl_label} {task.progress:.0%} (Esc cancels)")
            for area in context.screen.areas if context.screen is not None else ():
                if area.type == "VIEW_3D":  # the sidebar shows the progress too
                    area.tag_redraw()
            return {"PASS_THROUGH"}
        self._end(context)
        if isinstance(task.error, Cancelled):
            self.report({"WARNING"}, "cancelled; nothing was changed")
            return {"CANCELLED"}
        if task.error is not None:
            self.report({"ERROR"}, str(task.error))
            return {"CANCELLED"}
        return self._finish(context, task.result)


class DYNAMICPOSE_OT_generate(_BackendOperator, bpy.types.Operator):
    """Generate motion from the prompt onto the armature, as a new action"""

    bl_idname = "dynamicpose.generate"
    bl_label = "Generate"

    def prepare(self, context):
        s = _settings(context)
        obj = _armature(context, s.target)
        rt = read.retarget_for(obj)
        text = s.prompt.strip()
        if not text:
            raise ValueError("write a prompt first")
        if s.root_motion == "ROOT" and rt.root_bone is None:
            raise ValueError(f"{obj.name} has no root bone above its hips; pick Hips, Object or In place")
        fps = motion_io.scene_fps(context.scene)
        seconds = s.length_seconds(fps)
        seed, variations = s.seed, s.variations
        self._put = (obj.name, rt, text, s.start_frame, fps, s.root_motion, s.floor_setting(), s.start_facing)
        return lambda b, p, c: b.generate(text, seconds, seed=seed, variations=variations, fps=fps,
                                          progress=p, cancel=c)

    def finish(self, context, motions) -> None:
        name, rt, text, start, fps, root, floor, facing = self._put
        obj = bpy.data.objects.get(name)
        if obj is None:
            raise ValueError(f"the armature {name!r} is gone")
        for i, m in reversed(list(enumerate(motions))):  # the first take ends up active
            suffix = f" #{i + 1}" if len(motions) > 1 else ""
            motion_io.put_motion(obj, m, _action_name(text, suffix), rt, frame_start=start, fps=fps,
                                 root=root, floor=floor, start=facing)
        self.report({"INFO"}, f"{len(motions)} action(s) from {start} to {start + motions[0].num_frames - 1}")


class DYNAMICPOSE_OT_inbetween(_BackendOperator, bpy.types.Operator):
    """Fill the frames between the selected keys of the active armature (a new version of its action)"""

    bl_idname = "dynamicpose.inbetween"
    bl_label = "In-between"

    def prepare(self, context):
        obj = _armature(context)
        current = obj.animation_data.action if obj.animation_data else None
        if current is None:
            raise ValueError(f"{obj.name} has no action; key some poses first")
        rt = read.retarget_for(obj)
        by_bone = act.selected_keys_by_bone(obj)
        full, partial = rt.split_keys(by_bone)
        full_frames = sorted({round(k) for k in full})
        if len(full_frames) < 2:
            raise ValueError("select keys on at least two frames where every keyed bone has a key "
                             "(Dope Sheet, Graph Editor or timeline)")
        fps = motion_io.scene_fps(context.scene)
        k0, k1 = full_frames[0], full_frames[-1]  # keys on some bones only count between whole poses
        if (k1 - k0) / fps > MAX_SECONDS:
            raise ValueError(f"the selected keys span {(k1 - k0) / fps:.1f} s; at most {MAX_SECONDS:g} s")
        motion = motion_io.take_motion(obj, rt, np.arange(k0, k1 + 1), fps)
        lift = ground_offset(motion)  # the model sees the feet on its floor; the keys come back as they were
        motion = motion.raised(lift)
        idx = [k - k0 for k in full_frames]
        some = {round(f) - k0: joints for f, joints in partial.items() if k0 < round(f) < k1 and round(f) not in full_frames}
        text = _settings(context).inbetween_prompt.strip()
        seed = _settings(context).seed
        self._put = (obj.name, current.name, rt, k0, fps, by_bone, lift)
        return lambda b, p, c: b.inbetween(motion, idx, text, seed=seed, partial_keys=some, progress=p, cancel=c)

    def finish(self, context, motion) -> None:
        name, action_name, rt, k0, fps, keep, lift = self._put
        obj, base = bpy.data.objects.get(name), bpy.data.actions.get(action_name)
        if obj is None or base is None:
            raise ValueError("the armature or its action is gone")
        motion_io.put_motion(obj, motion.raised(-lift), f"{base.name} in-between", rt, frame_start=k0, fps=fps, base=base,
                             keep=keep)
        self.report({"INFO"}, f"filled frames {k0}..{k0 + motion.num_frames - 1}; '{base.name}' is kept")


class DYNAMICPOSE_OT_edit(_BackendOperator, bpy.types.Operator):
    """Regenerate a frame range of the active armature's action from the prompt (a new version of the action)"""

    bl_idname = "dynamicpose.edit"
    bl_label = "Regenerate range"

    context_seconds: IntProperty(name="Context", default=2, min=0, max=8,
                                 description="Seconds on each side the model sees (and keeps)")

    def prepare(self, context):
        s = _settings(context)
        obj = _armature(context)
        current = obj.animation_data.action if obj.animation_data else None
        if current is None:
            raise ValueError(f"{obj.name} has no action to edit")
        scene = context.scene
        start, end = ((scene.frame_preview_start, scene.frame_preview_end) if s.edit_use_preview
                      else (s.edit_start, s.edit_end))
        a0, a1 = (int(round(f)) for f in current.frame_range)
        if not (a0 <= start <= end <= a1):
            raise ValueError(f"the range {start}..{end} must lie inside the action's frames {a0}..{a1}")
        fps = motion_io.scene_fps(scene)
        pad = int(round(self.context_seconds * fps))
        c0, c1 = max(a0, start - pad), min(a1, end + pad)
        if (c1 - c0) / fps > MAX_SECONDS:
            raise ValueError(f"edit at most {MAX_SECONDS - 2 * self.context_seconds:g} s at a time")
        rt = read.retarget_for(obj)
        motion = motion_io.take_motion(obj, rt, np.arange(c0, c1 + 1), fps)
        lift = ground_offset(motion)
        motion = motion.raised(lift)
        text = s.edit_prompt.strip()
        seed = s.seed
        self._put = (obj.name, current.name, rt, start, fps, start - c0, end - c0 + 1, lift)
        return lambda b, p, c: b.edit(motion, start - c0, end - c0 + 1, text, seed=seed, progress=p, cancel=c)

    def finish(self, context, motion) -> None:
        name, action_name, rt, start, fps, i0, i1, lift = self._put
        obj, base = bpy.data.objects.get(name), bpy.data.actions.get(action_name)
        if obj is None or base is None:
            raise ValueError("the armature or its action is gone")
        motion_io.put_motion(obj, motion.trim(i0, i1).raised(-lift), f"{base.name} edit", rt, frame_start=start, fps=fps,
                             base=base)
        self.report({"INFO"}, f"regenerated frames {start}..{start + i1 - i0 - 1}; '{base.name}' is kept")


class DYNAMICPOSE_OT_backend_start(_BackendOperator, bpy.types.Operator):
    """Start (or connect to) the motion backend set in the preferences"""

    bl_idname = "dynamicpose.backend_start"
    bl_label = "Start backend"
    bl_options = {"REGISTER"}

    def prepare(self, context):
        return lambda b, p, c: b.info()

    def finish(self, context, info) -> None:
        _settings(context).status = (f"ready: {info.get('device', '?')}, {info.get('base', '?')}, "
                                     f"{info.get('dtype', '')}")
        self.report({"INFO"}, "backend ready")


class DYNAMICPOSE_OT_cancel(bpy.types.Operator):
    """Cancel the DynamicPose work running in the background (as Esc does); nothing is changed"""

    bl_idname = "dynamicpose.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return bool(RUNNING)

    def execute(self, context):
        for op in list(RUNNING.values()):
            op.cancel_work()
        return {"FINISHED"}


class DYNAMICPOSE_OT_backend_stop(bpy.types.Operator):
    """Stop the motion backend (a local process ends; a connection is dropped)"""

    bl_idname = "dynamicpose.backend_stop"
    bl_label = "Stop backend"

    def execute(self, context):
        session.disconnect()
        _settings(context).status = "stopped"
        return {"FINISHED"}


CLASSES = (DYNAMICPOSE_OT_generate, DYNAMICPOSE_OT_inbetween, DYNAMICPOSE_OT_edit, DYNAMICPOSE_OT_backend_start,
           DYNAMICPOSE_OT_cancel, DYNAMICPOSE_OT_backend_stop)
