# SPDX-License-Identifier: GPL-3.0-or-later
"""Your own motion: takes from the file taught to the generator as an adapter (trained by the
backend, into its adapters folder), and the adapters listed, switched, shared and removed."""
from __future__ import annotations

import re

import bpy
import numpy as np
from bpy.props import BoolProperty, StringProperty

from ..client.protocol import Cancelled
from ..motioncore.features import ground_offset
from ..motioncore.limits import DEFAULT_ADAPTER, adapter_name_problem, training_problem
from ..rig import action as act
from ..rig import motion_io, read
from .base import BackendOperator, Work, settings_of


def caption_from_name(name: str) -> str:
    """An action's name as a first caption: 'DP a person walks #2' -> 'a person walks',
    'Giant_Walk.001' -> 'giant walk', 'DP a jump edit.001' -> 'a jump'."""
    text = re.sub(r"^DP\s+", "", name)
    text = re.sub(r"(\s#\d+|\.\d{3}|\s(in-between|edit|mirrored))+$", "", text)  # takes, copies, versions
    text = re.sub(r"[_|]+", " ", text)
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)  # CamelCase -> Camel Case
    return " ".join(text.split()).lower()


def show_adapters(settings, listing: dict) -> None:
    """The backend's list of adapters into the panel's list."""
    settings.adapters.clear()
    for a in listing.get("adapters", []):
        item = settings.adapters.add()
        item.name = str(a.get("name", "?"))
        item.clips, item.steps = int(a.get("clips") or 0), int(a.get("steps") or 0)
        item.created = str(a.get("created") or "")
        item.note = "stopped early" if a.get("stopped") else ("imported" if a.get("imported") else "")
    settings.adapter_in_use = str(listing.get("in_use", DEFAULT_ADAPTER))
    names = [a.name for a in settings.adapters]
    if settings.adapter_in_use in names:
        settings.adapters_index = names.index(settings.adapter_in_use)


def your_picked_adapter(settings, why: str) -> str:
    """The selected adapter, refused when it is none or the default (`why` says why not that)."""
    name = settings.picked_adapter()
    if not name or name == DEFAULT_ADAPTER:
        raise ValueError(f"pick one of your adapters in the list ({why})")
    return name


def then_listed(do) -> Work:
    """Work that does `do(backend)`, then lists the adapters: (its result, the listing)."""
    return lambda backend, progress, cancel: (do(backend), backend.adapters())


class DYNAMICPOSE_OT_train_clip_add(bpy.types.Operator):
    """Add the active armature's action (or every action animating it) to the takes to train on"""

    bl_idname = "dynamicpose.train_clip_add"
    bl_label = "Add take"
    bl_options = {"REGISTER", "UNDO"}

    all_actions: BoolProperty(name="All its actions", default=False,
                              description="Every action that animates the armature's bones, not only its current one")

    @classmethod
    def poll(cls, context):
        return read.active_armature(context) is not None

    def execute(self, context):
        obj, s = read.active_armature(context), settings_of(context)
        current = obj.animation_data.action if obj.animation_data else None
        actions = [a for a in bpy.data.actions if act.animates_bones(a, obj)] if self.all_actions else \
            [current] if current is not None else []
        if not actions:
            self.report({"ERROR"}, f"{obj.name} has no action; key or import a take first")
            return {"CANCELLED"}
        have = {(c.armature, c.action) for c in s.train_clips}
        added = 0
        for a in actions:
            if (obj, a) in have:
                continue
            clip = s.train_clips.add()
            clip.armature, clip.action, clip.caption = obj, a, caption_from_name(a.name)
            added += 1
        s.train_index = len(s.train_clips) - 1
        self.report({"INFO"}, f"{added} take(s) added" if added else "those takes are in the list already")
        return {"FINISHED"}


class DYNAMICPOSE_OT_train_clip_remove(bpy.types.Operator):
    """Take the selected take out of the list (the action itself is left as it is)"""

    bl_idname = "dynamicpose.train_clip_remove"
    bl_label = "Remove take"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        s = settings_of(context)
        return 0 <= s.train_index < len(s.train_clips)

    def execute(self, context):
        s = settings_of(context)
        s.train_clips.remove(s.train_index)
        s.train_index = min(s.train_index, len(s.train_clips) - 1)
        return {"FINISHED"}


def _takes(context, only_uncaptioned: bool = False):
    """(row index, motion on the model's floor, caption, source) of every usable take, read on
    the main thread; a take whose rig or action is gone is refused by name."""
    s = settings_of(context)
    fps = motion_io.scene_fps(context.scene)
    out = []
    for i, clip in enumerate(s.train_clips):
        if only_uncaptioned and clip.caption.strip():
            continue
        if clip.armature is None or clip.action is None:
            raise ValueError(f"take {i + 1} has lost its armature or action; remove it or set them")
        lo, hi = (int(round(f)) for f in clip.action.frame_range)
        if hi - lo < 1:
            raise ValueError(f"take {i + 1} ({clip.action.name}) is a single frame; a take needs motion")
        rt = read.retarget_for(clip.armature)
        motion = motion_io.take_motion(clip.armature, rt, np.arange(lo, hi + 1), fps, action=clip.action)
        out.append((i, motion.raised(ground_offset(motion)), clip.caption.strip(), clip.action.name))  # feet on the model's floor
    return out


class DYNAMICPOSE_OT_train_captions(BackendOperator, bpy.types.Operator):
    """Caption the takes that have none with the model's own reading of them"""

    bl_idname = "dynamicpose.train_captions"
    bl_label = "Caption takes"
    bl_options = {"REGISTER", "UNDO"}

    def prepare(self, context) -> Work:
        takes = _takes(context, only_uncaptioned=True)
        if not takes:
            raise ValueError("every take has a caption already (clear one to have it read)")

        def work(backend, progress, cancel):
            found = []
            for n, (i, motion, _, _) in enumerate(takes):
                if cancel.is_set():
                    raise Cancelled()
                found.append((i, backend.caption(motion)))
                progress((n + 1) / len(takes))
            return found

        return work

    def finish(self, context, found) -> None:
        clips = settings_of(context).train_clips
        for i, text in found:
            if i < len(clips) and not clips[i].caption.strip():
                clips[i].caption = text
        self.report({"INFO"}, f"{len(found)} take(s) captioned")


class DYNAMICPOSE_OT_train_adapter(BackendOperator, bpy.types.Operator):
    """Train an adapter on the takes in the list: the generator learns your motion and words (minutes; Esc stops and keeps the steps done)"""

    bl_idname = "dynamicpose.train_adapter"
    bl_label = "Train adapter"
    bl_options = {"REGISTER"}  # nothing in the file changes: the adapter lives in the backend's folder

    def prepare(self, context) -> Work:
        s = settings_of(context)
        name = s.adapter_name.strip()
        if problem := adapter_name_problem(name):
            raise ValueError(problem)
        if name in {a.name for a in s.adapters}:
            raise ValueError(f"an adapter named {name!r} exists; pick another name")
        if not s.train_clips:
            raise ValueError("add takes to train on first (Add take, with the armature selected)")
        takes = _takes(context)
        if problem := training_problem([(m.num_frames, m.fps) for _, m, _, _ in takes]):
            raise ValueError(problem)
        if not any(text for _, _, text, _ in takes):
            raise ValueError("caption the takes first: the adapter learns what your words mean from them")
        clips = [(m, text, source) for _, m, text, source in takes]
        steps = s.train_steps
        self._detail = "starting"

        def show(p: dict) -> None:
            left = p.get("seconds_left")
            self._detail = (f"step {p.get('step')}/{p.get('steps')}, loss {p.get('loss')}"
                            + (f", about {left:.0f} s left" if left is not None else ""))

        def work(backend, progress, cancel):
            try:
                info = backend.train_adapter(name, clips, steps=steps, progress=progress, cancel=cancel, report=show)
            except Cancelled:
                info = None
            return info, backend.adapters()

        self._name = name
        return work

    def finish(self, context, result) -> None:
        info, listing = result
        s = settings_of(context)
        show_adapters(s, listing)
        kept = next((a for a in listing.get("adapters", []) if a.get("name") == self._name), None)
        if info is None:
            if kept is None:
                self.report({"WARNING"}, "cancelled before the first step; no adapter was made")
            else:
                s.train_report = f"{self._name}: stopped at step {kept.get('steps')} (kept)"
                self.report({"WARNING"}, f"stopped; '{self._name}' keeps the {kept.get('steps')} steps done")
            return
        report = info.get("report") or {}
        near = report.get("nearest_distance")
        figures = (f"; nearest-take distance {near[self._name]:.3g} against the default's {near[DEFAULT_ADAPTER]:.3g}"
                   if near else "")
        s.train_report = f"{self._name}: {info.get('steps')} steps, loss {info.get('loss', {}).get('motion')}{figures}"
        s.train_picture = str(report.get("picture") or "")
        self.report({"INFO"}, f"trained '{self._name}' ({info.get('steps')} steps){figures}; select it to use it")


class DYNAMICPOSE_OT_adapter_report_show(bpy.types.Operator):
    """Show the last training's picture: your takes, the default model's and the adapter's, side by side"""

    bl_idname = "dynamicpose.adapter_report_show"
    bl_label = "Show report"

    @classmethod
    def poll(cls, context):
        return bool(settings_of(context).train_picture)

    def execute(self, context):
        import os

        path = settings_of(context).train_picture
        if not os.path.isfile(path):
            self.report({"ERROR"}, f"the report picture {path} is gone (it lives in the adapter's folder)")
            return {"CANCELLED"}
        image = bpy.data.images.load(path, check_existing=True)
        if context.window is not None and bpy.ops.wm.window_new.poll():  # a window of its own, as renders get
            bpy.ops.wm.window_new()
            area = context.window_manager.windows[-1].screen.areas[0]
            area.type = "IMAGE_EDITOR"
            area.spaces.active.image = image
        self.report({"INFO"}, f"loaded {image.name}")
        return {"FINISHED"}


class DYNAMICPOSE_OT_adapters_refresh(BackendOperator, bpy.types.Operator):
    """List the backend's adapters"""

    bl_idname = "dynamicpose.adapters_refresh"
    bl_label = "Refresh adapters"
    bl_options = {"REGISTER"}

    def prepare(self, context) -> Work:
        return lambda backend, progress, cancel: backend.adapters()

    def finish(self, context, listing) -> None:
        show_adapters(settings_of(context), listing)


class DYNAMICPOSE_OT_adapter_select(BackendOperator, bpy.types.Operator):
    """Use this adapter for Generate, In-between and Edit (Default: the shipped model)"""

    bl_idname = "dynamicpose.adapter_select"
    bl_label = "Use adapter"
    bl_options = {"REGISTER"}

    name: StringProperty(name="Adapter", description="Empty: the one selected in the list")

    def prepare(self, context) -> Work:
        s = settings_of(context)
        name = self.name or s.picked_adapter()
        if not name:
            raise ValueError("pick an adapter in the list (Refresh lists them)")
        return then_listed(lambda backend: backend.use_adapter(name))

    def finish(self, context, result) -> None:
        _, listing = result
        s = settings_of(context)
        show_adapters(s, listing)
        self.report({"INFO"}, f"using '{s.adapter_in_use}'")


class _FileOperator(BackendOperator):
    """A backend operator that first asks for a file (from the UI); scripts pass filepath."""

    filepath: StringProperty(subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.safetensors", options={"HIDDEN"})

    def invoke(self, context, event):
        if not self.filepath:
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self.execute(context)

    def path(self) -> str:
        path = bpy.path.abspath(self.filepath)
        if not path or path.startswith("//"):
            raise ValueError("choose a file (save the .blend first for a path relative to it)")
        return path


class DYNAMICPOSE_OT_adapter_export(_FileOperator, bpy.types.Operator):
    """Write the selected adapter as one file to share (.safetensors, with the model it needs and a hash)"""

    bl_idname = "dynamicpose.adapter_export"
    bl_label = "Export adapter"
    bl_options = {"REGISTER"}

    def prepare(self, context) -> Work:
        name, path = your_picked_adapter(settings_of(context), "the default ships with the backend"), self.path()
        if not path.endswith(".safetensors"):
            path += ".safetensors"
        return lambda backend, progress, cancel: backend.export_adapter(name, path)

    def finish(self, context, out) -> None:
        self.report({"INFO"}, f"wrote {out['path']} ({out['bytes'] / 1e6:.1f} MB)")


class DYNAMICPOSE_OT_adapter_import(_FileOperator, bpy.types.Operator):
    """Add an adapter file someone shared to the backend's adapters (checked whole and for the model first)"""

    bl_idname = "dynamicpose.adapter_import"
    bl_label = "Import adapter"
    bl_options = {"REGISTER"}

    def prepare(self, context) -> Work:
        path = self.path()
        return then_listed(lambda backend: backend.import_adapter(path))

    def finish(self, context, result) -> None:
        info, listing = result
        show_adapters(settings_of(context), listing)
        self.report({"INFO"}, f"imported '{info['name']}'; select it to use it")


class DYNAMICPOSE_OT_adapter_remove(BackendOperator, bpy.types.Operator):
    """Delete the selected adapter from the backend's folder"""

    bl_idname = "dynamicpose.adapter_remove"
    bl_label = "Remove adapter"
    bl_options = {"REGISTER"}

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def prepare(self, context) -> Work:
        name = your_picked_adapter(settings_of(context), "the default cannot be removed")
        return then_listed(lambda backend: backend.remove_adapter(name))

    def finish(self, context, result) -> None:
        show_adapters(settings_of(context), result[1])


CLASSES = (DYNAMICPOSE_OT_train_clip_add, DYNAMICPOSE_OT_train_clip_remove, DYNAMICPOSE_OT_train_captions,
           DYNAMICPOSE_OT_train_adapter, DYNAMICPOSE_OT_adapter_report_show, DYNAMICPOSE_OT_adapters_refresh, DYNAMICPOSE_OT_adapter_select,
           DYNAMICPOSE_OT_adapter_export, DYNAMICPOSE_OT_adapter_import, DYNAMICPOSE_OT_adapter_remove)
