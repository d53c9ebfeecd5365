# SPDX-License-Identifier: GPL-3.0-or-later
"""What every backend operator shares. Each one prepares on the main thread (reads the rig and
the keys), runs the model on a worker thread through the backend, and writes keys back on the
main thread as one undo step. Invoked from the UI they run modal: a progress bar, Esc cancels,
Blender stays responsive. Executed from a script they block and return when done."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import bpy

from ..client import session
from ..client.protocol import Backend, BackendError, Cancelled
from ..rig.read import active_armature
from ..settings import preferences

# What an operator hands its worker thread: run this on the backend, reporting progress, stopping
# when the event is set (the thread never touches bpy).
Work = Callable[[Backend, Callable[[float], None], threading.Event], Any]
REFUSALS = (ValueError, KeyError, BackendError)  # readable reasons; anything else is a bug
RUNNING: dict[str, "BackendOperator"] = {}  # operators working in the background, for the panels


def settings_of(context):
    return context.scene.dynamicpose


def working_armature(context) -> bpy.types.Object | None:
    """The armature every operator works on, one rule for all: the panel's Armature field
    when set, else the active armature (None if neither)."""
    return settings_of(context).target or active_armature(context)


def armature_of(context, explicit=None) -> bpy.types.Object:
    """`explicit`, else working_armature(); refuses when there is none."""
    obj = explicit or working_armature(context)
    if obj is None or obj.type != "ARMATURE":
        raise ValueError("select an armature (or set the target armature in the panel)")
    return obj


def current_action(obj: bpy.types.Object, what: str) -> bpy.types.Action:
    """The armature's action, or a refusal saying it has none to `what` ("edit", "extend", ...)."""
    action = obj.animation_data.action if obj.animation_data else None
    if action is None:
        raise ValueError(f"{obj.name} has no action to {what}")
    return action


def action_name(text: str, suffix: str = "") -> str:
    words = " ".join(text.split())[:48] or "motion"
    return f"DP {words}{suffix}"


class BackendOperator:
    bl_options = {"REGISTER", "UNDO"}

    def prepare(self, context) -> Work:
        """Read and check everything on the main thread; return the work for the backend."""
        raise NotImplementedError

    def finish(self, context, result) -> None:
        """Write the result into the scene (main thread)."""

    def _work(self, context):
        config = session.BackendConfig.from_preferences(preferences(context))
        job = self.prepare(context)
        def work(progress, cancel):
            # A backend not yet running starts here (seconds): the panel and status bar count them.
            self._starting = None if session.is_connected(config) else time.monotonic()
            try:
                backend = session.connect(config, cancel)
            finally:
                self._starting = None
            return job(backend, progress, cancel)

        return work

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

    @property
    def detail(self) -> str:
        """More than a percentage, where the work says it (a training's step, loss, time left),
        and how long the backend has been starting, while it starts."""
        since = getattr(self, "_starting", None)
        if since is not None:
            return f"starting backend: {time.monotonic() - since:.0f} s"
        return getattr(self, "_detail", "")

    def cancel_work(self) -> None:
        """What Esc does (and the panel's cancel button)."""
        self._task.cancel.set()

    def step(self, context) -> set[str]:
        """One timer tick: show progress while the work runs, then write the result."""
        task = self._task
        if not task.done.is_set():
            context.window_manager.progress_update(int(100 * task.progress))
            if context.workspace is not None:
                more = f" ({self.detail})" if self.detail else ""
                context.workspace.status_text_set(f"DynamicPose: {self.bl_label} {task.progress:.0%}{more} (Esc cancels)")
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


