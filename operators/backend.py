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


class DYNAMICPOSE_OT_backend_check(BackendOperator, bpy.types.Operator):
    """Check the backend set in the preferences: start or reach it and say what it is (version, Python, device, model, adapter), or what is wrong"""

    bl_idname = "dynamicpose.backend_check"
    bl_label = "Check"
    bl_options = {"REGISTER"}

    def prepare(self, context) -> Work:
        return lambda backend, progress, cancel: (backend.info(), type(backend).__name__)

    def finish(self, context, result) -> None:
        info, kind = result
        where = {"HTTPBackend": "over HTTP", "EmbeddedBackend": "embedded in Blender"}.get(kind, kind)
        said = (f"DynamicPose {info.get('version', '?')} {where}, Python {info.get('python', '?')}: "
                f"{info.get('device', '?')} {info.get('dtype', '')}, {info.get('base', '?')}, "
                f"weights {info.get('weights', '?')}, adapter {info.get('adapter', 'default')}")
        settings_of(context).status = said
        self.report({"INFO"}, said)


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


CLASSES = (DYNAMICPOSE_OT_backend_start, DYNAMICPOSE_OT_backend_check, DYNAMICPOSE_OT_cancel, DYNAMICPOSE_OT_backend_stop)
