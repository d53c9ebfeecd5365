"""The canonical rig and the bulk action writer, in the real Blender module."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import DATA, ROOT
from motioncore import canonical, read_bvh
from motioncore import rotations as rot
from motioncore.bonespace import from_pose_channels, to_pose_channels


@pytest.fixture
def walk():
    return canonical.to_canonical(read_bvh(DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh"))


def test_pose_channels_round_trip(walk):
    rest = rot.to_matrix(rot.normalize(np.random.default_rng(3).normal(size=(21, 4))))
    head = np.array([0.1, -0.2, 0.9])
    q, loc = to_pose_channels(walk.local_rotations, walk.root_position, rest, head)
    local, root = from_pose_channels(q, loc, rest, head)
    assert rot.angle_between(local, walk.local_rotations).max() < 1e-6
    assert np.abs(root - walk.root_position).max() < 1e-9


def test_action_on_canonical_rig_reproduces_joint_positions(blender, walk):
    bpy = blender
    from tools.addon_import import import_addon

    import_addon()
    from dynamic_pose.rig import action, armature

    obj = armature.create_armature(walk.skeleton, "Rig")
    old = bpy.data.actions.new("users_own")
    obj.animation_data_create().action = old
    names = list(walk.skeleton.names)
    rest_rot, rest_head = armature.rest_orientations(obj, names)
    q, loc = to_pose_channels(walk.local_rotations, walk.root_position, rest_rot, rest_head[0])
    act = action.write_action(obj, "walk", names, q, loc, frame_start=1)

    assert obj.animation_data.action == act and old.use_fake_user and old.name in bpy.data.actions
    slot = obj.animation_data.action_slot
    from bpy_extras import anim_utils
    curves = anim_utils.action_get_channelbag_for_slot(act, slot).fcurves
    assert len(curves) == 21 * 4 + 3
    assert tuple(act.frame_range) == (1.0, float(walk.num_frames))
    expected = walk.positions()
    for t in (0, walk.num_frames // 3, walk.num_frames - 1):
        bpy.context.scene.frame_set(1 + t)
        heads = np.array([np.array(obj.matrix_world @ obj.pose.bones[n].head) for n in names])
        assert np.abs(heads - expected[t]).max() < 1e-3


def test_demo_writes_blend_png_and_bvh(tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    build = subprocess.run([sys.executable, "-m", "backend", "data", "build", "--source", str(DATA / "bandai-2"),
                            "--cache", str(cache), "--workers", "1"], capture_output=True, text=True, env=env, timeout=300)
    assert build.returncode == 0, build.stderr
    out = tmp_path / "out"
    clip = "dataset-2_run_normal_001"
    run = subprocess.run([sys.executable, "-m", "tools.demo", "--out", str(out), "--cache", str(cache), "--clip", clip],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (out / "demo.png").stat().st_size > 10_000
    check = ("import bpy, sys; bpy.ops.wm.open_mainfile(filepath=sys.argv[1]);"
             "arm=[o for o in bpy.data.objects if o.type=='ARMATURE'][0];"
             "print(len(arm.pose.bones), arm.animation_data.action.name, int(arm.animation_data.action.frame_range[1]))")
    opened = subprocess.run([sys.executable, "-c", check, str(out / "demo.blend")],
                            capture_output=True, text=True, timeout=120)
    assert opened.returncode == 0, opened.stderr
    bones, name, last = opened.stdout.strip().splitlines()[-1].split()
    assert bones == "21" and name == clip and int(last) > 30
    assert read_bvh(out / "demo.bvh").num_frames == int(last)
