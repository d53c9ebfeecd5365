"""A Blender armature as a motioncore Rig, and the retargeting set up for it."""
from __future__ import annotations

import bpy
import numpy as np

from ..motioncore.retarget import Retarget, Rig, detect

MIN_CONFIDENCE = 0.75  # below this share of a preset's bones, ask the user for a mapping


def rig_from_armature(obj: bpy.types.Object) -> Rig:
    """Bones in parents-first order with their armature-space rest matrices."""
    if obj is None or obj.type != "ARMATURE":
        raise ValueError("select an armature object")
    order: list[bpy.types.Bone] = []
    stack = [b for b in obj.data.bones if b.parent is None][::-1]
    while stack:
        bone = stack.pop()
        order.append(bone)
        stack.extend(list(bone.children)[::-1])
    index = {b.name: i for i, b in enumerate(order)}
    return Rig([b.name for b in order], [index[b.parent.name] if b.parent else -1 for b in order],
               np.array([np.array(b.matrix_local) for b in order]))


def custom_mapping(obj: bpy.types.Object) -> dict[str, str] | None:
    """The mapping the user set in the Retarget panel, when it is switched on."""
    if not getattr(obj, "dynamicpose_use_custom", False):
        return None
    return {row.joint: row.bone for row in obj.dynamicpose_map if row.bone}


def retarget_for(obj: bpy.types.Object, mapping: dict[str, str] | None = None) -> Retarget:
    """The retargeting for this armature: the given mapping, the user's custom one, or the
    best preset found."""
    rig = rig_from_armature(obj)
    mapping = mapping if mapping is not None else custom_mapping(obj)
    if mapping is None:
        preset, confidence, mapping = detect(rig)
        if preset is None or confidence < MIN_CONFIDENCE:
            raise ValueError(f"{obj.name}: no known rig layout found (best match {preset or 'none'}, "
                             f"{confidence:.0%} of its bones); set a mapping in the Retarget panel")
    return Retarget(rig, mapping)
