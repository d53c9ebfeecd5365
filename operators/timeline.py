# SPDX-License-Identifier: GPL-3.0-or-later
"""A prompt timeline: rows of (prompt, seconds) generated as one continuous take, each row the
engine's continuation of the motion so far ("walk 3 s / wave with the left hand 2 s / run 4 s"),
so every join is as smooth as continuation makes it."""
from __future__ import annotations

import bpy
from bpy.props import IntProperty

from ..motioncore.limits import MAX_SECONDS
from .base import BackendOperator, Work, armature_of, settings_of
from .motion import DYNAMICPOSE_OT_generate, Take


class DYNAMICPOSE_OT_timeline_add(bpy.types.Operator):
    """Add a row to the prompt timeline (after the selected one)"""

    bl_idname = "dynamicpose.timeline_add"
    bl_label = "Add row"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = settings_of(context)
        row = s.timeline.add()
        if len(s.timeline) > 1:
            at = min(s.timeline_index + 1, len(s.timeline) - 1)
            s.timeline.move(len(s.timeline) - 1, at)
            s.timeline_index = at
        row.prompt = "a person walks forward" if len(s.timeline) == 1 else ""
        return {"FINISHED"}


class DYNAMICPOSE_OT_timeline_remove(bpy.types.Operator):
    """Remove the selected row of the prompt timeline"""

    bl_idname = "dynamicpose.timeline_remove"
    bl_label = "Remove row"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        s = settings_of(context)
        return 0 <= s.timeline_index < len(s.timeline)

    def execute(self, context):
        s = settings_of(context)
        s.timeline.remove(s.timeline_index)
        s.timeline_index = max(0, min(s.timeline_index, len(s.timeline) - 1))
        return {"FINISHED"}


class DYNAMICPOSE_OT_timeline_move(bpy.types.Operator):
    """Move the selected row of the prompt timeline up or down"""

    bl_idname = "dynamicpose.timeline_move"
    bl_label = "Move row"
    bl_options = {"REGISTER", "UNDO"}

    step: IntProperty(name="Step", default=-1, min=-1, max=1, description="-1: up, 1: down")

    @classmethod
    def poll(cls, context):
        return len(settings_of(context).timeline) > 1

    def execute(self, context):
        s = settings_of(context)
        to = s.timeline_index + self.step
        if not 0 <= to < len(s.timeline):
            return {"CANCELLED"}
        s.timeline.move(s.timeline_index, to)
        s.timeline_index = to
        return {"FINISHED"}


def timeline_rows(settings) -> list[tuple[str, float]]:
    """(prompt, seconds) of each row, checked: a prompt each, at most MAX_SECONDS in all."""
    rows = [(r.prompt.strip(), float(r.seconds)) for r in settings.timeline]
    if len(rows) < 2:
        raise ValueError("a timeline needs two rows or more (one row is a plain Generate)")
    empty = [i + 1 for i, (text, _) in enumerate(rows) if not text]
    if empty:
        raise ValueError(f"row {empty[0]} of the timeline has no prompt")
    total = sum(sec for _, sec in rows)
    if total > MAX_SECONDS:
        raise ValueError(f"the timeline lasts {total:.1f} s; one take holds at most {MAX_SECONDS:g} s")
    return rows


class DYNAMICPOSE_OT_timeline_generate(BackendOperator, bpy.types.Operator):
    """Generate the prompt timeline as one take: each row continues the motion of the rows before it, as a new action"""

    bl_idname = "dynamicpose.timeline_generate"
    bl_label = "Generate timeline"

    def prepare(self, context) -> Work:
        s = settings_of(context)
        armature_of(context, s.target)  # no armature is said before a bad row
        rows = timeline_rows(s)
        self._take = Take.from_settings(context, " / ".join(text for text, _ in rows))
        fps, seed = self._take.fps, self._take.seed
        return lambda backend, progress, cancel: (chain(backend, rows, seed, fps, progress, cancel),
                                                  getattr(backend, "last_adapter", None))

    finish = DYNAMICPOSE_OT_generate.finish


def chain(backend, rows: list[tuple[str, float]], seed: int, fps: float, progress, cancel) -> list:
    """The rows as one motion: the first generated, each next one the backend's continuation of
    all before it (row i with seed + i). [motion], as Generate's result."""
    n = len(rows)

    def part(i):
        return lambda f: progress((i + f) / n)

    text, seconds = rows[0]
    motion = backend.generate(text, seconds, seed=seed, variations=1, fps=fps, progress=part(0), cancel=cancel)[0]
    for i, (text, seconds) in enumerate(rows[1:], start=1):
        motion = backend.continue_(motion, text, seconds, seed=seed + i, progress=part(i), cancel=cancel)
    return [motion]


CLASSES = (DYNAMICPOSE_OT_timeline_add, DYNAMICPOSE_OT_timeline_remove, DYNAMICPOSE_OT_timeline_move,
           DYNAMICPOSE_OT_timeline_generate)
