# SPDX-License-Identifier: GPL-3.0-or-later
"""DynamicPose: a Blender extension for generating motion on your own rig.

The extension root: register and unregister only. settings.py holds what the add-on remembers,
operators/ and panels/ what users press and see, rig/ reads rigs and writes keys, client/ reaches
the backend (its own process, or embedded); motion math is in motioncore/ (numpy only).
"""


def _parts():
    from . import operators, panels, settings

    return ((settings.DynamicPosePreferences, settings.DynamicPoseBoneMap, settings.DynamicPoseTrainClip,
             settings.DynamicPoseTimelineRow, settings.DynamicPoseTake, settings.DynamicPoseAdapterItem, settings.DynamicPoseSettings)
            + operators.CLASSES + panels.CLASSES), panels


def register() -> None:
    import bpy

    classes, panels = _parts()
    for cls in classes:
        bpy.utils.register_class(cls)
    from .settings import DynamicPoseBoneMap, DynamicPoseSettings

    bpy.types.Scene.dynamicpose = bpy.props.PointerProperty(type=DynamicPoseSettings)
    bpy.types.Object.dynamicpose_map = bpy.props.CollectionProperty(type=DynamicPoseBoneMap)
    bpy.types.Object.dynamicpose_use_custom = bpy.props.BoolProperty(
        name="Use custom mapping", description="Use the mapping below instead of the detected preset")
    for menu in panels.MENUS:
        getattr(bpy.types, menu).append(panels.key_menu)


def unregister() -> None:
    import bpy

    from .client import session

    session.disconnect()
    classes, panels = _parts()
    for menu in panels.MENUS:
        getattr(bpy.types, menu).remove(panels.key_menu)
    del bpy.types.Scene.dynamicpose
    del bpy.types.Object.dynamicpose_map
    del bpy.types.Object.dynamicpose_use_custom
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
