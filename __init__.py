# SPDX-License-Identifier: GPL-3.0-or-later
"""DynamicPose: a Blender extension for generating motion on your own rig.

The extension root. Blender-facing code: preferences, props, operators, panels, and rig/
(reading rigs, writing keys); motion math in motioncore/, which needs only numpy; the model
runs in the backend (its own process, or embedded), reached through client.py.
"""


def _parts():
    from . import operators, panels, preferences, props

    return ((preferences.DynamicPosePreferences, props.DynamicPoseSettings)
            + operators.CLASSES + panels.CLASSES), panels


def register() -> None:
    import bpy

    classes, panels = _parts()
    for cls in classes:
        bpy.utils.register_class(cls)
    from .props import DynamicPoseSettings

    bpy.types.Scene.dynamicpose = bpy.props.PointerProperty(type=DynamicPoseSettings)
    for menu in panels.MENUS:
        getattr(bpy.types, menu).append(panels.key_menu)


def unregister() -> None:
    import bpy

    from . import session

    session.disconnect()
    classes, panels = _parts()
    for menu in panels.MENUS:
        getattr(bpy.types, menu).remove(panels.key_menu)
    del bpy.types.Scene.dynamicpose
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
