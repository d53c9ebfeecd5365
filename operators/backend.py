# SPDX-License-Identifier: GPL-3.0-or-later
"""Starting, stopping and cancelling the backend's work."""
from __future__ import annotations

import bpy

from ..client import session
from .base import RUNNING, BackendOperator, Work, settings_of


class DYNAMICPOSE_OT_backend_start(BackendOperator, bpy.types.Operator):
    """Start (or connect to) the motion backend set in the preferences"""

    bl_idname = "dynamicpose.backend_start"
    bl_label = "Start backend"
    bl_options = {"REGISTER"}

    def prepare(self, context) -> Work:
        return lambda backend, progress, cancel: backend.info()

    def finish(self, context, info) -> None:
        settings_of(context).status = (f"ready: {info.get('device', '?')}, {info.get('base', '?')}, "
                                     f"{info.get('dtype', '')}")
        self.report({"INFO"}, "backend ready")


class DYNAMICPOSE_OT_cancel(bpy.types.Operator):
    """Cancel the DynamicPose work running in the background (as Esc does); nothing is changed"""

    bl_idname = "dynamicpose.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return bool(RUNNING)

    def execute(self, context):
        for op in list(RUNNING.values()):
            op.cancel_work()
        return {"FINISHED"}


class DYNAMICPOSE_OT_backend_stop(bpy.types.Operator):
    """Stop the motion backend (a local process ends; a connection is dropped)"""

    bl_idname = "dynamicpose.backend_stop"
    bl_label = "Stop backend"

    def execute(self, context):
        session.disconnect()
        settings_of(context).status = "stopped"
        return {"FINISHED"}


CLASSES = (DYNAMICPOSE_OT_backend_start, DYNAMICPOSE_OT_cancel, DYNAMICPOSE_OT_backend_stop)
