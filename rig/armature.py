"""Build an armature for a motioncore Skeleton."""
from __future__ import annotations

import bpy
import numpy as np

from ..motioncore.skeleton import Skeleton

LEAF_LENGTH = 0.08  # metres; BVH leaves (Head, Hand, Toes) have no child to point at


def create_armature(skeleton: Skeleton, name: str = "DynamicPose",
                    collection: bpy.types.Collection | None = None) -> bpy.types.Object:
    """A new armature object whose bones sit on the skeleton's rest pose (metres, Z up),
    standing on z = 0 like the motion data.

    Each bone runs from its joint to its first child; leaves continue their parent's direction.
    """
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    (collection or bpy.context.scene.collection).objects.link(obj)
    rest = skeleton.rest_positions()
    rest = rest - [0.0, 0.0, rest[:, 2].min()]
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = []
        for j, joint in enumerate(skeleton.names):
            bone = data.edit_bones.new(joint)
            children = skeleton.children(j)
            head = rest[j]
            if children and np.linalg.norm(rest[children[0]] - head) > 1e-4:
                tail = rest[children[0]]
            else:
                p = skeleton.parents[j]
                direction = head - rest[p] if p >= 0 else np.array([0.0, 0.0, 1.0])
                norm = np.linalg.norm(direction)
                direction = direction / norm if norm > 1e-6 else np.array([0.0, 0.0, 1.0])
                tail = head + LEAF_LENGTH * direction
            bone.head, bone.tail = head.tolist(), tail.tolist()
            bones.append(bone)
            p = skeleton.parents[j]
            if p >= 0:
                bone.parent = bones[p]
                bone.use_connect = False
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous or obj
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj

