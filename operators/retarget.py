# SPDX-License-Identifier: GPL-3.0-or-later
"""The Retarget panel's operators: fill a custom mapping from auto-detection, and save or load
it as a JSON preset."""
from __future__ import annotations

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..motioncore.canonical import CANONICAL_JOINTS
from ..motioncore.rigs import load_mapping, save_mapping
from ..rig import read


def fill_mapping(obj, mapping: dict[str, str]) -> None:
    obj.dynamicpose_map.clear()
    for joint in CANONICAL_JOINTS:
        row = obj.dynamicpose_map.add()
        row.joint, row.bone = joint, mapping.get(joint, "")


class DYNAMICPOSE_OT_mapping_detect(bpy.types.Operator):
    """Fill the custom mapping from the preset that best matches the bone names"""

    bl_idname = "dynamicpose.mapping_detect"
    bl_label = "Detect"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return read.active_armature(context) is not None

    def execute(self, context):
        obj = read.active_armature(context)
        preset, confidence, mapping = read.detection(obj)
        unsure = read.doubt(obj, preset, confidence, mapping)
        if unsure:
            self.report({"ERROR"}, f"{unsure}; nothing was changed: fill the mapping by hand or import one")
            return {"CANCELLED"}
        fill_mapping(obj, mapping)
        obj.dynamicpose_use_custom = True
        self.report({"INFO"}, f"{preset} ({confidence:.0%} of its joints found)")
        return {"FINISHED"}


class DYNAMICPOSE_OT_mapping_export(bpy.types.Operator, ExportHelper):
    """Save the custom mapping as a JSON preset"""

    bl_idname = "dynamicpose.mapping_export"
    bl_label = "Export mapping"
    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        obj = read.active_armature(context)
        return obj is not None and len(obj.dynamicpose_map) > 0

    def execute(self, context):
        obj = read.active_armature(context)
        try:
            save_mapping(self.filepath, {r.joint: r.bone for r in obj.dynamicpose_map if r.bone})
        except OSError as e:
            self.report({"ERROR"}, f"could not write {self.filepath}: {e.strerror or e}")
            return {"CANCELLED"}
        return {"FINISHED"}


class DYNAMICPOSE_OT_mapping_import(bpy.types.Operator, ImportHelper):
    """Load a JSON mapping preset onto the active armature"""

    bl_idname = "dynamicpose.mapping_import"
    bl_label = "Import mapping"
    bl_options = {"REGISTER", "UNDO"}
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        return read.active_armature(context) is not None

    def execute(self, context):
        obj = read.active_armature(context)
        try:
            mapping = load_mapping(self.filepath)
        except ValueError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        missing = sorted(b for b in mapping.values() if b not in obj.data.bones)
        if missing:
            self.report({"ERROR"}, f"{obj.name} has no bones named {missing[:5]}; nothing was changed")
            return {"CANCELLED"}
        fill_mapping(obj, mapping)
        obj.dynamicpose_use_custom = True
        return {"FINISHED"}


class DYNAMICPOSE_OT_retarget_actions(bpy.types.Operator):
    """Put every action of the source armature onto the active armature, one new action each"""

    bl_idname = "dynamicpose.retarget_actions"
    bl_label = "Retarget actions"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return read.active_armature(context) is not None

    def execute(self, context):
        from ..rig import action as act
        from ..rig import motion_io

        target, settings = read.active_armature(context), context.scene.dynamicpose
        source = settings.retarget_source
        try:
            if source is None or source == target:
                raise ValueError("pick a source armature other than the active one")
            actions = [a for a in bpy.data.actions if act.animates_bones(a, source)]
            if not actions:
                raise ValueError(f"no action animates the bones of {source.name}")
            rt_source, rt_target = read.retarget_for(source), read.retarget_for(target)
        except (ValueError, KeyError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        fps = motion_io.scene_fps(context.scene)
        wm = context.window_manager
        wm.progress_begin(0, len(actions))
        anim = target.animation_data
        before = anim.action if anim else None
        made = []
        try:
            for i, a in enumerate(actions):
                made.append(motion_io.retarget_action(source, rt_source, a, target, rt_target, fps,
                                                      root=settings.root_motion))
                wm.progress_update(i + 1)
        except Exception as e:  # all or nothing: the target is left as it was
            if target.animation_data is not None:
                act.assign(target, before) if before is not None else setattr(target.animation_data, "action", None)
            for new in made:
                bpy.data.actions.remove(new)
            reason = str(e) if isinstance(e, (ValueError, KeyError)) else \
                f"DynamicPose failed while writing keys ({type(e).__name__}: {e})"
            self.report({"ERROR"}, f"{reason}; nothing was changed")
            return {"CANCELLED"}
        finally:
            wm.progress_end()
        self.report({"INFO"}, f"{len(actions)} action(s) from {source.name} onto {target.name}")
        return {"FINISHED"}


CLASSES = (DYNAMICPOSE_OT_retarget_actions, DYNAMICPOSE_OT_mapping_detect, DYNAMICPOSE_OT_mapping_export, DYNAMICPOSE_OT_mapping_import)
