# SPDX-License-Identifier: GPL-3.0-or-later
"""Takes: what the last Generate, In-between, Edit, Extend, Loop or Mirror made, to look at
before keeping. The rig plays one take at a time (Previous / Next); Accept keeps the one
playing and removes the others; Reject removes the one playing (the rig plays the next, or
the action it had before when none is left). Nothing rejected stays in the file; the action
the rig had before is never removed. One undo step each."""
from __future__ import annotations

import time

import bpy

from ..rig import action as act
from .base import settings_of


def record(scene, obj: bpy.types.Object, actions: list, previous: bpy.types.Action | None, what: str,
           tags: list[str] | None = None) -> None:
    """`actions` (just made on obj, the first playing) become the takes to choose from, each
    listed with what made it, its seed, length and time; takes left from before are kept as
    they are (still actions in the file, as before takes)."""
    s = scene.dynamicpose
    s.takes.clear()
    s.takes_armature, s.takes_previous = obj, previous
    when = time.strftime("%H:%M")
    fps = scene.render.fps / scene.render.fps_base
    for i, a in enumerate(actions):
        item = s.takes.add()
        first, last = a.frame_range
        tag = f"{tags[i]}, " if tags else ""
        item.action, item.label = a, f"{a.name} ({what}, {tag}{(last - first) / fps:.1f} s, {when})"
    s.takes_index = 0


def _playing(s) -> int:
    obj = s.takes_armature
    current = obj.animation_data.action if obj is not None and obj.animation_data else None
    return next((i for i, t in enumerate(s.takes) if t.action is not None and t.action == current), -1)


def _play(s, index: int) -> None:
    obj, take = s.takes_armature, s.takes[index].action
    act.assign(obj, take)
    take.use_fake_user = False  # a take is kept by its list entry and the rig, not a fake user
    s.takes_index = index


def _live(s) -> bool:
    return s.takes_armature is not None and any(t.action is not None for t in s.takes)


class _TakeOperator:
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _live(settings_of(context))

    def playing(self, s) -> int | None:
        """The list index of the take the rig plays, or None (said) when it plays none."""
        now = _playing(s)
        if now < 0:
            self.report({"ERROR"}, "the rig plays none of the takes; play one first")
            return None
        return now


class DYNAMICPOSE_OT_take_step(_TakeOperator, bpy.types.Operator):
    """Play the previous or the next take on the rig"""

    bl_idname = "dynamicpose.take_step"
    bl_label = "Next take"

    step: bpy.props.IntProperty(name="Step", default=1, min=-1, max=1, description="-1: previous, 1: next")

    def execute(self, context):
        s = settings_of(context)
        live = [i for i, t in enumerate(s.takes) if t.action is not None]
        now = _playing(s)
        at = live.index(now) if now in live else (-1 if self.step > 0 else 0)
        _play(s, live[(at + self.step) % len(live)])
        return {"FINISHED"}


class DYNAMICPOSE_OT_take_play(_TakeOperator, bpy.types.Operator):
    """Play the take selected in the list on the rig"""

    bl_idname = "dynamicpose.take_play"
    bl_label = "Play take"

    def execute(self, context):
        s = settings_of(context)
        if not 0 <= s.takes_index < len(s.takes) or s.takes[s.takes_index].action is None:
            self.report({"ERROR"}, "pick a take in the list")
            return {"CANCELLED"}
        _play(s, s.takes_index)
        return {"FINISHED"}


class DYNAMICPOSE_OT_take_accept(_TakeOperator, bpy.types.Operator):
    """Keep the take playing as the rig's action and remove the other takes from the file"""

    bl_idname = "dynamicpose.take_accept"
    bl_label = "Accept"

    def execute(self, context):
        s = settings_of(context)
        now = self.playing(s)
        if now is None:
            return {"CANCELLED"}
        kept = s.takes[now].action
        others = [t.action for t in s.takes if t.action is not None and t.action != kept]
        s.takes.clear()
        for a in others:
            bpy.data.actions.remove(a)
        self.report({"INFO"}, f"kept '{kept.name}'" + (f"; {len(others)} other take(s) removed" if others else ""))
        return {"FINISHED"}


class DYNAMICPOSE_OT_take_reject(_TakeOperator, bpy.types.Operator):
    """Remove the take playing from the file; the rig plays the next take, or the action it had before"""

    bl_idname = "dynamicpose.take_reject"
    bl_label = "Reject"

    def execute(self, context):
        s = settings_of(context)
        now = self.playing(s)
        if now is None:
            return {"CANCELLED"}
        gone = s.takes[now].action
        s.takes.remove(now)
        left = [i for i, t in enumerate(s.takes) if t.action is not None]
        obj = s.takes_armature
        if left:
            _play(s, left[min(now, len(left) - 1)])
        else:
            previous = s.takes_previous
            if previous is not None:
                act.assign(obj, previous)
            else:
                obj.animation_data.action = None
            s.takes.clear()
        bpy.data.actions.remove(gone)
        playing = obj.animation_data.action.name if obj.animation_data.action else "no action"
        self.report({"INFO"}, f"removed the take; the rig plays {playing}")
        return {"FINISHED"}


CLASSES = (DYNAMICPOSE_OT_take_step, DYNAMICPOSE_OT_take_play, DYNAMICPOSE_OT_take_accept,
           DYNAMICPOSE_OT_take_reject)
