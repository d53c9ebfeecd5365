"""The DynamicPose motion core: pure numpy, shared by the Blender add-on and the backend.

Skeletons, rotations, forward kinematics, BVH, the Motion container, the canonical skeleton
and the model's feature representation. Imports nothing but the standard library and numpy.
"""
from . import rotations
from .bvh import BVHError, read_bvh, write_bvh
from .clip import Motion, concatenate
from .skeleton import Skeleton, forward_kinematics

__all__ = ["BVHError", "Motion", "Skeleton", "concatenate", "forward_kinematics",
           "read_bvh", "rotations", "write_bvh"]
