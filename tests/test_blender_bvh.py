"""Our BVH reader and FK against Blender's own importer (io_anim_bvh), on real clips."""
import numpy as np
import pytest

from conftest import CLIPS
from motioncore import read_bvh


@pytest.mark.parametrize("path", CLIPS[:4], ids=[p.stem for p in CLIPS[:4]])
def test_fk_matches_blender_importer_every_frame(blender, path):
    bpy = blender
    bpy.ops.import_anim.bvh(filepath=str(path), global_scale=0.01, rotate_mode="NATIVE",
                            axis_forward="-Z", axis_up="Y", use_fps_scale=False)
    arm = bpy.context.active_object
    assert arm.type == "ARMATURE"
    motion = read_bvh(path)
    ours = motion.positions()  # (T, J, 3) metres, Z up
    scene = bpy.context.scene
    start = int(arm.animation_data.action.frame_range[0])
    world = np.array(arm.matrix_world)
    theirs = np.empty_like(ours)
    for t in range(motion.num_frames):
        scene.frame_set(start + t)
        for j, name in enumerate(motion.skeleton.names):
            head = world @ np.append(np.array(arm.pose.bones[name].head), 1.0)
            theirs[t, j] = head[:3]
    assert np.abs(theirs - ours).max() < 1e-3  # 1 mm, every joint, every frame
