# SPDX-License-Identifier: GPL-3.0-or-later
"""DynamicPose: a Blender extension for generating motion on your own rig.

The extension root. Blender-facing code lives in rig/ (and operators/ and panels/ as they
arrive); motion math in motioncore/, which needs only numpy. Heavy imports wait for use, so
enabling the add-on stays instant.
"""

_classes: list = []


def register() -> None:
    import bpy

    for cls in _classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    import bpy

    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
