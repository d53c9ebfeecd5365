# SPDX-License-Identifier: GPL-3.0-or-later
"""Sidebar panels (3D Viewport, tab "DynamicPose") and Dope Sheet / Graph Editor menu entries."""
from __future__ import annotations

import bpy

from ..client import session
from ..motioncore.limits import MAX_SECONDS
from ..operators.base import working_armature
from ..rig import action as act
from ..rig.read import active_armature, has_action
from ..settings import preferences


class _Panel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "DynamicPose"


def _busy() -> bool:
    from ..operators import RUNNING

    return bool(RUNNING)


def _running(layout) -> bool:
    """A progress line and a cancel button while work runs in the background."""
    from ..operators import RUNNING

    for op in list(RUNNING.values()):
        row = layout.row(align=True)
        row.label(text=f"{op.bl_label}: {op.progress:.0%}" + (f", {op.detail}" if op.detail else ""), icon="TIME")
        row.operator("dynamicpose.cancel", text="", icon="CANCEL")
    return bool(RUNNING)




class DYNAMICPOSE_PT_generate(_Panel, bpy.types.Panel):
    bl_label = "Generate"

    def draw(self, context):
        s = context.scene.dynamicpose
        layout = self.layout
        layout.use_property_split = True
        layout.prop(s, "prompt", text="")
        row = layout.row(align=True)
        row.prop(s, "length_unit", expand=True)
        if s.length_unit != "AUTO":
            layout.prop(s, "seconds" if s.length_unit == "SECONDS" else "frames")
        layout.prop(s, "seed")
        layout.prop(s, "variations")
        layout.prop(s, "lock_feet")
        layout.prop(s, "as_strip")
        row = layout.row(align=True)
        row.prop(s, "sparse_keys")
        sub = row.row()
        sub.enabled = s.sparse_keys
        sub.prop(s, "key_error_mm", text="mm")
        layout.prop(s, "target")
        layout.prop(s, "start_frame")
        layout.prop(s, "root_motion")
        layout.prop(s, "start_facing")
        row = layout.row(align=True)
        row.prop(s, "floor")
        if s.floor == "HEIGHT":
            row.prop(s, "floor_height", text="")
        busy = _running(layout)
        row = layout.row()
        row.enabled = working_armature(context) is not None and not busy
        row.operator("dynamicpose.generate", icon="ARMATURE_DATA")
        if not row.enabled:
            layout.label(text="Select an armature or set one above", icon="INFO")


class DYNAMICPOSE_PT_takes(_Panel, bpy.types.Panel):
    """The last results, played on the rig one at a time: keep one, or reject them."""

    bl_label = "Takes"

    @classmethod
    def poll(cls, context):
        return len(context.scene.dynamicpose.takes) > 0

    def draw(self, context):
        s = context.scene.dynamicpose
        layout = self.layout
        layout.template_list("DYNAMICPOSE_UL_takes", "", s, "takes", s, "takes_index", rows=3)
        row = layout.row(align=True)
        row.operator("dynamicpose.take_step", text="Previous", icon="TRIA_LEFT").step = -1
        row.operator("dynamicpose.take_play", text="Play", icon="PLAY")
        row.operator("dynamicpose.take_step", text="Next", icon="TRIA_RIGHT").step = 1
        row = layout.row(align=True)
        row.operator("dynamicpose.take_accept", icon="CHECKMARK")
        row.operator("dynamicpose.take_reject", icon="X")
        if s.takes_previous is not None:
            layout.label(text=f"Before: {s.takes_previous.name} (kept)", icon="INFO")


class DYNAMICPOSE_PT_timeline(_Panel, bpy.types.Panel):
    """Rows of prompts made into one take, each continuing the last (Generate's other settings apply)."""

    bl_label = "Prompt timeline"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.dynamicpose
        layout = self.layout
        row = layout.row()
        row.template_list("DYNAMICPOSE_UL_timeline", "", s, "timeline", s, "timeline_index", rows=3)
        col = row.column(align=True)
        col.operator("dynamicpose.timeline_add", icon="ADD", text="")
        col.operator("dynamicpose.timeline_remove", icon="REMOVE", text="")
        col.separator()
        col.operator("dynamicpose.timeline_move", icon="TRIA_UP", text="").step = -1
        col.operator("dynamicpose.timeline_move", icon="TRIA_DOWN", text="").step = 1
        total = sum(r.seconds for r in s.timeline)
        layout.label(text=f"{len(s.timeline)} rows, {total:.1f} s (at most {MAX_SECONDS:g})", icon="TIME")
        row = layout.row()
        row.enabled = len(s.timeline) >= 2 and total <= MAX_SECONDS and not _busy() and \
            working_armature(context) is not None
        row.operator("dynamicpose.timeline_generate", icon="SEQ_SEQUENCER")


class DYNAMICPOSE_PT_inbetween(_Panel, bpy.types.Panel):
    bl_label = "In-between"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.dynamicpose
        layout = self.layout
        from ..operators.motion import inbetween_problem

        obj = working_armature(context)
        selected, own = act.keys_by_bone(obj) if obj is not None else ({}, {})
        frames = {round(f) for fs in selected.values() for f in fs}
        layout.label(text=f"{len(frames)} keyed frames selected", icon="KEYFRAME")
        layout.prop(s, "inbetween_prompt")
        problem = inbetween_problem(selected, own) if obj is not None else "select an armature"
        row = layout.row()
        row.enabled = problem is None
        row.operator("dynamicpose.inbetween", icon="IPO_BEZIER")
        if problem:
            layout.label(text=problem, icon="INFO")


class DYNAMICPOSE_PT_edit(_Panel, bpy.types.Panel):
    bl_label = "Edit"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.dynamicpose
        layout = self.layout
        layout.prop(s, "edit_use_preview")
        col = layout.column(align=True)
        col.enabled = not s.edit_use_preview
        col.prop(s, "edit_start")
        col.prop(s, "edit_end")
        layout.prop(s, "edit_prompt")
        layout.prop(s, "edit_part")
        layout.prop(s, "edit_context_seconds")
        animated = has_action(working_armature(context))
        row = layout.row()
        row.enabled = animated
        row.operator("dynamicpose.edit", icon="MOD_TIME")
        row.operator("dynamicpose.mirror", icon="MOD_MIRROR")
        layout.separator()
        layout.prop(s, "extend_prompt")
        row = layout.row(align=True)
        row.prop(s, "extend_seconds")
        sub = row.row()
        sub.enabled = animated
        sub.operator("dynamicpose.extend", icon="NEXT_KEYFRAME")
        row = layout.row(align=True)
        row.prop(s, "loop_seconds")
        sub = row.row()
        sub.enabled = animated
        sub.operator("dynamicpose.loop", icon="FILE_REFRESH")


class DYNAMICPOSE_UL_adapters(bpy.types.UIList):
    """The backend's adapters: name, takes, steps, when; the one in use marked."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        in_use = item.name == data.adapter_in_use
        row = layout.row(align=True)
        row.label(text=item.name, icon="CHECKMARK" if in_use else "BLANK1")
        if item.name != "default":
            row.label(text=f"{item.clips} takes, {item.steps} steps{', ' + item.note if item.note else ''}")
            row.label(text=item.created[:16])
        else:
            row.label(text="the shipped model")


class DYNAMICPOSE_UL_takes(bpy.types.UIList):
    """The last takes: which is playing on the rig."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        obj = data.takes_armature
        playing = item.action is not None and obj is not None and obj.animation_data is not None \
            and obj.animation_data.action == item.action
        layout.label(text=item.label if item.action is not None else "(removed)",
                     icon="PLAY" if playing else "ACTION")


class DYNAMICPOSE_UL_timeline(bpy.types.UIList):
    """A prompt timeline's rows: prompt and seconds."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        row.label(text=f"{index + 1}.")
        row.prop(item, "prompt", text="", emboss=True)
        row.prop(item, "seconds", text="")


class DYNAMICPOSE_UL_train_clips(bpy.types.UIList):
    """Takes to train an adapter on: action, rig and caption."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        col = layout.column(align=True)
        row = col.row(align=True)
        row.label(text=item.action.name if item.action else "(no action)", icon="ACTION")
        row.label(text=item.armature.name if item.armature else "(no rig)", icon="ARMATURE_DATA")
        col.prop(item, "caption", text="")


class DYNAMICPOSE_PT_backend(_Panel, bpy.types.Panel):
    bl_label = "Backend"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        prefs = preferences(context)
        s = context.scene.dynamicpose
        layout = self.layout
        layout.prop(prefs, "mode")
        if prefs.mode == "PROCESS" and not prefs.python.strip():
            from ..client.places import installed_backend_python

            found = installed_backend_python()
            layout.label(text=f"Python: {found}" if found else "No backend found: install it or set its Python",
                         icon="CHECKMARK" if found else "ERROR")
        layout.label(text=s.status)
        row = layout.row(align=True)
        row.operator("dynamicpose.backend_start", icon="PLAY")
        row.operator("dynamicpose.backend_check", icon="VIEWZOOM")
        sub = row.row(align=True)
        sub.enabled = session.current() is not None
        sub.operator("dynamicpose.backend_stop", icon="CANCEL")
        layout.label(text=f"Adapter in use: {s.adapter_in_use}", icon="MODIFIER")
        row = layout.row()
        row.template_list("DYNAMICPOSE_UL_adapters", "", s, "adapters", s, "adapters_index", rows=3)
        col = row.column(align=True)
        col.operator("dynamicpose.adapters_refresh", text="", icon="FILE_REFRESH")
        col.operator("dynamicpose.adapter_import", text="", icon="IMPORT")
        col.operator("dynamicpose.adapter_export", text="", icon="EXPORT")
        col.operator("dynamicpose.adapter_remove", text="", icon="TRASH")
        picked = s.picked_adapter()
        row = layout.row()
        row.enabled = bool(picked) and picked != s.adapter_in_use and not _busy()
        row.operator("dynamicpose.adapter_select", text=f"Use {picked or 'adapter'}", icon="CHECKMARK")


class DYNAMICPOSE_PT_train(_Panel, bpy.types.Panel):
    bl_label = "Your motion"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.dynamicpose
        layout = self.layout
        layout.label(text="Teach the generator your takes", icon="OUTLINER_OB_ARMATURE")
        row = layout.row()
        row.template_list("DYNAMICPOSE_UL_train_clips", "", s, "train_clips", s, "train_index", rows=3)
        col = row.column(align=True)
        col.operator("dynamicpose.train_clip_add", text="", icon="ADD")
        col.operator("dynamicpose.train_clip_add", text="", icon="ACTION").all_actions = True
        col.operator("dynamicpose.train_clip_remove", text="", icon="REMOVE")
        col.operator("dynamicpose.train_captions", text="", icon="SYNTAX_ON")
        layout.prop(s, "adapter_name")
        layout.prop(s, "train_steps")
        busy = _running(layout)
        row = layout.row()
        row.enabled = bool(s.train_clips) and not busy
        row.operator("dynamicpose.train_adapter", icon="PLAY")
        if s.train_report:
            row = layout.row(align=True)
            row.label(text=s.train_report, icon="INFO")
            row.operator("dynamicpose.adapter_report_show", text="", icon="IMAGE_DATA")


class DYNAMICPOSE_PT_retarget(_Panel, bpy.types.Panel):
    bl_label = "Retarget"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        from ..rig.read import detection

        layout = self.layout
        obj = active_armature(context)
        if obj is None:
            layout.label(text="Select an armature", icon="INFO")
            return
        preset, confidence, _ = detection(obj, update=False)
        layout.label(text=f"Detected: {preset or 'none'} ({confidence:.0%})", icon="ARMATURE_DATA")
        layout.prop(obj, "dynamicpose_use_custom")
        row = layout.row(align=True)
        row.operator("dynamicpose.mapping_detect", icon="VIEWZOOM")
        row.operator("dynamicpose.mapping_import", text="", icon="IMPORT")
        row.operator("dynamicpose.mapping_export", text="", icon="EXPORT")
        row = layout.row(align=True)
        row.prop(context.scene.dynamicpose, "retarget_source", text="From")
        row.operator("dynamicpose.retarget_actions", text="", icon="ACTION")
        col = layout.column(align=True)
        col.enabled = obj.dynamicpose_use_custom
        for item in obj.dynamicpose_map:
            col.prop_search(item, "bone", obj.data, "bones", text=item.joint)


def key_menu(self, context):
    self.layout.separator()
    self.layout.operator("dynamicpose.inbetween", text="DynamicPose In-between")


MENUS = ("DOPESHEET_MT_key", "GRAPH_MT_key")
CLASSES = (DYNAMICPOSE_UL_adapters, DYNAMICPOSE_UL_train_clips, DYNAMICPOSE_UL_timeline, DYNAMICPOSE_UL_takes,
           DYNAMICPOSE_PT_generate, DYNAMICPOSE_PT_takes, DYNAMICPOSE_PT_timeline, DYNAMICPOSE_PT_inbetween,
           DYNAMICPOSE_PT_edit, DYNAMICPOSE_PT_retarget, DYNAMICPOSE_PT_train, DYNAMICPOSE_PT_backend)
