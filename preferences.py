# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the motion backend runs: the add-on's preferences."""
from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty

MODES = [
    ("PROCESS", "Local process", "Start `python -m backend serve` with the Python below and talk to it on 127.0.0.1"),
    ("URL", "Connect to URL", "Use a backend you started yourself (`dynamicpose serve` prints its URL and token)"),
    ("EMBEDDED", "Embedded", "Run the model inside Blender (needs torch in Blender's Python)"),
]
DEVICES = [("auto", "Auto", "CUDA, then Apple MPS, then CPU"), ("cpu", "CPU", ""), ("cuda", "CUDA", ""),
           ("mps", "Apple MPS", "")]


class DynamicPosePreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    mode: EnumProperty(name="Backend", items=MODES, default="PROCESS")
    python: StringProperty(name="Python", subtype="FILE_PATH",
                           description="Python interpreter of the DynamicPose backend environment "
                                       "(for example the checkout's .venv/bin/python)")
    backend_dir: StringProperty(name="Backend folder", subtype="DIR_PATH",
                                description="Folder holding the backend package (the DynamicPose checkout)")
    url: StringProperty(name="URL", default="http://127.0.0.1:8765")
    token: StringProperty(name="Token", subtype="PASSWORD", description="The token the server printed")
    weights: StringProperty(name="Model folder", subtype="DIR_PATH",
                            description="Model weights (empty: the backend's default model)")
    device: EnumProperty(name="Device", items=DEVICES, default="auto")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "mode")
        col = layout.column()
        if self.mode == "PROCESS":
            col.prop(self, "python")
            col.prop(self, "backend_dir")
        elif self.mode == "URL":
            col.prop(self, "url")
            col.prop(self, "token")
        else:
            col.prop(self, "backend_dir")
        if self.mode != "URL":
            col.prop(self, "weights")
            col.prop(self, "device")


def get(context: bpy.types.Context) -> DynamicPosePreferences:
    return context.preferences.addons[__package__].preferences
