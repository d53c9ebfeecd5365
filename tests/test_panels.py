"""The sidebar's panels and lists, drawn in the real Blender module: headless Blender never
draws, so each draw function runs here on a layout that checks what it is asked for against
Blender's own RNA - every property exists on its data, every operator is registered and is
given only properties it has, every icon is one this Blender knows, every list type is
registered - in the states a user meets (nothing selected, a rig with takes and adapters)."""
import pytest


class CheckedLayout:
    """Stands in for bpy.types.UILayout while a draw function runs; refuses what Blender would
    refuse (an error in draw() shows in the UI as an empty panel and a console traceback)."""

    def __init__(self, bpy, calls):
        self._bpy, self.calls = bpy, calls
        self.enabled = self.active = True
        self.use_property_split = self.use_property_decorate = False
        self.alignment = "EXPAND"

    def _icon(self, icon):
        icons = self._bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys()
        assert icon in icons, f"no icon {icon!r} in this Blender"

    def _child(self, *args, **kw):
        return CheckedLayout(self._bpy, self.calls)

    row = column = box = split = grid_flow = _child

    def separator(self, **kw):
        pass

    def label(self, text="", icon="NONE", **kw):
        self._icon(icon)
        self.calls.append(("label", text))

    def prop(self, data, name, text=None, icon="NONE", **kw):
        assert name in data.bl_rna.properties.keys(), f"{type(data).__name__} has no property {name!r}"
        self._icon(icon)
        self.calls.append(("prop", name))

    def prop_search(self, data, name, search_data, search_name, **kw):
        assert name in data.bl_rna.properties.keys() and search_name in search_data.bl_rna.properties.keys()
        self.calls.append(("prop_search", name))

    def template_list(self, list_type, list_id, data, name, active_data, active_name, **kw):
        assert hasattr(self._bpy.types, list_type), f"{list_type} is not registered"
        assert name in data.bl_rna.properties.keys() and active_name in active_data.bl_rna.properties.keys()
        self.calls.append(("list", list_type))

    def operator(self, idname, text=None, icon="NONE", **kw):
        self._icon(icon)
        module, name = idname.split(".")
        op = getattr(getattr(self._bpy.ops, module), name)
        rna = op.get_rna_type()  # raises for an operator that is not registered
        self.calls.append(("operator", idname))
        return _OperatorProperties(rna)


class _OperatorProperties:
    def __init__(self, rna):
        object.__setattr__(self, "_names", set(rna.properties.keys()))

    def __setattr__(self, name, value):
        assert name in self._names, f"the operator has no property {name!r}"


def draw_everything(bpy, context):
    from dynamic_pose import panels

    calls = []
    for cls in panels.CLASSES:
        if issubclass(cls, bpy.types.Panel):
            cls.draw(type("Drawn", (), {"layout": CheckedLayout(bpy, calls)})(), context)
    s = context.scene.dynamicpose
    for cls, items in ((bpy.types.DYNAMICPOSE_UL_adapters, s.adapters),
                       (bpy.types.DYNAMICPOSE_UL_train_clips, s.train_clips),
                       (bpy.types.DYNAMICPOSE_UL_timeline, s.timeline),
                       (bpy.types.DYNAMICPOSE_UL_takes, s.takes)):
        for i, item in enumerate(items):
            cls.draw_item(None, context, CheckedLayout(bpy, calls), s, item, 0, s, "", i)
    for menu in ("DOPESHEET_MT_key", "GRAPH_MT_key"):
        panels.key_menu(type("Menu", (), {"layout": CheckedLayout(bpy, calls)})(), context)
    return calls


def test_panels_draw_in_the_states_users_meet(dp):
    bpy = dp
    context = bpy.context
    calls = draw_everything(bpy, context)  # an empty scene: nothing selected
    assert ("label", "Select an armature") in calls
    import addon_utils

    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    s = context.scene.dynamicpose
    s.prompt, s.seconds = "a person walks", 1.0
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    assert bpy.ops.dynamicpose.train_clip_add() == {"FINISHED"}
    for name in ("default", "mine"):
        item = s.adapters.add()
        item.name, item.steps, item.clips = name, 3, 2
    s.train_report, s.train_picture = "mine: 3 steps", "/nonexistent.png"
    for _ in range(2):
        assert bpy.ops.dynamicpose.timeline_add() == {"FINISHED"}
    calls = draw_everything(bpy, context)
    drawn = {c[1] for c in calls}
    for idname in ("dynamicpose.generate", "dynamicpose.inbetween", "dynamicpose.edit", "dynamicpose.extend",
                   "dynamicpose.mirror", "dynamicpose.train_adapter", "dynamicpose.adapter_select",
                   "dynamicpose.adapter_export", "dynamicpose.adapter_import", "dynamicpose.adapters_refresh",
                   "dynamicpose.adapter_report_show", "dynamicpose.train_clip_add", "dynamicpose.loop",
                   "dynamicpose.timeline_generate", "dynamicpose.timeline_add", "dynamicpose.timeline_move",
                   "dynamicpose.take_step", "dynamicpose.take_play", "dynamicpose.take_accept",
                   "dynamicpose.take_reject", "dynamicpose.backend_check"):
        assert idname in drawn, idname
    assert ("list", "DYNAMICPOSE_UL_adapters") in calls and ("list", "DYNAMICPOSE_UL_train_clips") in calls
    assert ("list", "DYNAMICPOSE_UL_timeline") in calls and ("list", "DYNAMICPOSE_UL_takes") in calls


def test_the_checked_layout_refuses_what_blender_would(dp):
    bpy = dp
    layout = CheckedLayout(bpy, [])
    with pytest.raises(AssertionError, match="no property"):
        layout.prop(bpy.context.scene.dynamicpose, "not_a_setting")
    with pytest.raises(AssertionError, match="no icon"):
        layout.label(text="x", icon="NOT_AN_ICON")
    with pytest.raises(Exception):
        layout.operator("dynamicpose.not_an_operator")
    with pytest.raises(AssertionError, match="no property"):
        layout.operator("dynamicpose.train_clip_add").everything = True
