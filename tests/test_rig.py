"""Motion onto real rigs and back, in the real Blender module: the canonical rig, a Bandai BVH
imported with Blender's own importer (Euler bones, centimetres) and the Rigify metarig."""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA, ROOT, fcurves_of, needs_backend

from motioncore import canonical, read_bvh
from motioncore import rotations as rot
from motioncore.canonical import CANONICAL_JOINTS


@pytest.fixture
def walk():
    return canonical.to_canonical(read_bvh(DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh"))


def make_rig(bpy, kind: str):
    import addon_utils

    if kind == "canonical":
        from dynamic_pose.rig import armature

        return armature.create_armature(canonical.canonical_skeleton(), "Rig")
    if kind == "bandai":
        bpy.ops.import_anim.bvh(filepath=str(DATA / "bandai-2" / "dataset-2_run_normal_001.bvh"))
        return bpy.context.object
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    return bpy.context.object


def curves(action):
    return fcurves_of(action)


def evaluated_heads(bpy, obj, names, frame):
    bpy.context.scene.frame_set(frame)
    return np.array([np.array(obj.matrix_world @ obj.pose.bones[n].head) for n in names])


@pytest.mark.parametrize("kind,preset", [("canonical", "bandai"), ("bandai", "bandai"), ("rigify", "rigify_metarig")])
def test_motion_onto_rig_and_back(addon, walk, kind, preset):
    import bpy
    from dynamic_pose.motioncore.rigs import detect_preset
    from dynamic_pose.rig import motion_io, read

    obj = make_rig(bpy, kind)
    assert detect_preset([b.name for b in obj.data.bones])[0] == preset
    before = obj.animation_data.action if obj.animation_data else None
    before_keys = None if before is None else sorted((fc.data_path, fc.array_index, len(fc.keyframe_points))
                                                     for fc in curves(before))
    rt = read.retarget_for(obj)
    act = motion_io.put_motion(obj, walk, "walk", rt, frame_start=10, fps=30.0)

    assert obj.animation_data.action == act and act.frame_range[:] == pytest.approx((10, 9 + walk.num_frames))
    if before is not None:  # the user's action is intact and kept
        assert before.use_fake_user and before.name in bpy.data.actions
        after = sorted((fc.data_path, fc.array_index, len(fc.keyframe_points))
                       for fc in curves(before))
        assert after == before_keys
    # Every mapped bone is keyed, in its own rotation mode, with generated keys.
    for j, b in rt.joint_bone.items():
        name = rt.rig.names[b]
        prop = {"QUATERNION": "rotation_quaternion"}.get(obj.pose.bones[name].rotation_mode, "rotation_euler")
        fc = curves(act).find(f'pose.bones["{name}"].{prop}', index=0)
        assert fc is not None and len(fc.keyframe_points) == walk.num_frames
        assert fc.keyframe_points[0].type == "GENERATED"

    # Blender's own evaluation agrees with the retargeting's rig kinematics...
    names = [rt.rig.names[rt.joint_bone[j]] for j in CANONICAL_JOINTS]
    idx = [rt.joint_bone[j] for j in CANONICAL_JOINTS]
    basis, loc = rt.to_rig(walk)
    _, heads = rt.pose(basis, loc)
    height = rt.scale * np.ptp(rt.canon_rest[:, 2])
    for t in (0, walk.num_frames // 2, walk.num_frames - 1):
        world = np.array(obj.matrix_world)
        expected = heads[t, idx] @ world[:3, :3].T + world[:3, 3]
        assert np.abs(evaluated_heads(bpy, obj, names, 10 + t) - expected).max() < 1e-4 * height
    # ...and the joints follow the source, scaled, where the rig has the same proportions.
    if kind != "rigify":
        src = rt.heads[rt.hips_bone] + rt.scale * (walk.positions() - rt.canon_rest[0]) + [0.0, 0.0, rt.base_lift]
    else:  # other proportions: the source's joint rotations on this rig's bones, bent at the joints only
        kinked = read.retarget_for(obj)
        kinked.between = {}
        src = kinked.pose(*kinked.to_rig(walk))[1][:, idx]
    assert np.linalg.norm(heads[:, idx] - src, axis=-1).max() < 0.02 * height  # the spine's bend moves the chest

    # Reading the keys back gives the canonical motion again.
    back = motion_io.take_motion(obj, rt, 10 + np.arange(walk.num_frames), 30.0)
    err = rot.angle_between(back.local_rotations, walk.local_rotations)
    assert err.max() < 1e-4
    assert np.abs(back.root_position - walk.root_position).max() < 1e-3


def test_in_range_rewrite_keeps_the_users_other_keys(addon, walk):
    import bpy
    from dynamic_pose.rig import motion_io, read

    obj = make_rig(bpy, "canonical")
    rt = read.retarget_for(obj)
    first = motion_io.put_motion(obj, walk, "take 1", rt, frame_start=1, fps=30.0)
    still = walk.trim(0, 1)
    still = type(walk)(walk.skeleton, walk.fps, np.repeat(still.root_position, 10, 0),
                       np.repeat(still.local_rotations, 10, 0))
    second = motion_io.put_motion(obj, still, "take 2", rt, frame_start=11, fps=30.0, base=first)
    assert second != first and first.name in bpy.data.actions and obj.animation_data.action == second
    path = 'pose.bones["LowerLeg_L"].rotation_quaternion'
    f1 = curves(first).find(path, index=1)
    f2 = curves(second).find(path, index=1)
    for frame in (3.0, 25.0):  # outside the rewritten range: identical
        assert f2.evaluate(frame) == f1.evaluate(frame)
    inside = [f2.evaluate(float(f)) for f in range(11, 21)]
    assert np.ptp(inside) < 1e-6 and len(f2.keyframe_points) == len(f1.keyframe_points)


@needs_backend
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


@pytest.mark.parametrize("mode", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_blender_euler_modes_match_mathutils(blender, mode):
    from mathutils import Euler

    rng = np.random.default_rng(7)
    for xyz in rng.uniform(-3, 3, size=(20, 3)):
        q = np.array(Euler(xyz.tolist(), mode).to_quaternion())
        mat = np.array(Euler(xyz.tolist(), mode).to_matrix())
        assert np.abs(rot.to_matrix(rot.from_blender_euler(xyz, mode)) - mat).max() < 1e-5  # mathutils is float32
        back = rot.to_blender_euler(q, mode)
        assert np.abs(np.array(Euler(back.tolist(), mode).to_matrix()) - mat).max() < 1e-5  # mathutils is float32


def scripted_rig(bpy, preset: str, a_pose: bool, scale: float):
    """An armature named like a Mixamo or UE5 skeleton on the canonical proportions (scaled),
    bones with assorted rolls, arms lowered 45 degrees for the A-pose."""
    from dynamic_pose.motioncore.rigs import PRESETS

    sk = canonical.canonical_skeleton()
    rest = sk.rest_positions() * scale
    rest = rest - [0, 0, rest[:, 2].min()]
    if a_pose:
        for side, sign in (("L", 1), ("R", -1)):
            pivot = rest[sk.index(f"UpperArm_{side}")]
            q = rot.axis_rotation("Y", np.radians(45) * sign)
            for name in (f"UpperArm_{side}", f"LowerArm_{side}", f"Hand_{side}"):
                j = sk.index(name)
                rest[j] = pivot + rot.rotate(q, rest[j] - pivot)
    names = PRESETS[preset] if preset in PRESETS else {j: f"Bone.{i:03d}" for i, j in enumerate(sk.names)}
    data = bpy.data.armatures.new(preset)
    obj = bpy.data.objects.new(preset, data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    bones = []
    for j, joint in enumerate(sk.names):
        b = data.edit_bones.new(names[joint])
        kids = sk.children(j)
        tail = rest[kids[0]] if kids else rest[j] + (rest[j] - rest[sk.parents[j]]) * 0.3
        b.head, b.tail, b.roll = rest[j].tolist(), tail.tolist(), 0.7 * j
        if sk.parents[j] >= 0:
            b.parent = bones[sk.parents[j]]
        bones.append(b)
    if preset == "ue5_mannequin":  # game rigs carry twist bones halfway down the limbs
        for joint, twist in (("LowerArm_L", "lowerarm_twist_01_l"), ("LowerArm_R", "lowerarm_twist_01_r"),
                             ("LowerLeg_L", "calf_twist_01_l"), ("UpperArm_L", "upperarm_twist_01_l")):
            limb = bones[sk.index(joint)]
            t = data.edit_bones.new(twist)
            t.head = ((limb.head + limb.tail) / 2).to_tuple()
            t.tail, t.roll, t.parent = limb.tail.to_tuple(), limb.roll, limb
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


@pytest.mark.parametrize("preset", ["mixamo", "ue5_mannequin", "auto_rig_pro", "smpl", "cmu_cgspeed", "vrm", "vroid",
                                    "quaternius", "character_creator", "daz_genesis", "hierarchy"])
@pytest.mark.parametrize("a_pose", [False, True])
def test_scripted_rigs_detected_round_trip_and_follow_the_source(addon, walk, preset, a_pose):
    """"hierarchy": bones named Bone.000.. so that only the skeleton's shape can tell them."""
    import bpy
    from dynamic_pose.motioncore.rigs import detect
    from dynamic_pose.rig import motion_io, read

    obj = scripted_rig(bpy, preset, a_pose, scale=1.3)
    found, confidence, _ = detect(read.rig_from_armature(obj))
    assert found == preset and confidence == 1.0
    if preset == "ue5_mannequin":
        assert len(read.retarget_for(obj).twist) == 4
    rt = read.retarget_for(obj)
    assert rt.scale == pytest.approx(1.3, rel=1e-6)
    motion_io.put_motion(obj, walk, "walk", rt, frame_start=1, fps=30.0)
    back = motion_io.take_motion(obj, rt, 1 + np.arange(walk.num_frames), 30.0)
    assert rot.angle_between(back.local_rotations, walk.local_rotations).max() < 1e-4
    idx = [rt.joint_bone[j] for j in CANONICAL_JOINTS]
    names = [rt.rig.names[b] for b in idx]
    height = 1.3 * np.ptp(rt.canon_rest[:, 2])
    src = rt.heads[rt.hips_bone] + 1.3 * (walk.positions() - rt.canon_rest[0])
    for t in (0, walk.num_frames // 2, walk.num_frames - 1):
        assert np.abs(evaluated_heads(bpy, obj, names, 1 + t) - src[t]).max() < 0.02 * height


def test_root_motion_on_the_object_lands_where_the_bone_would(addon, walk):
    """OBJECT: the armature object carries the travel (through its own rotation and scale),
    the hips only their height; every joint ends where BONE mode puts it."""
    import bpy
    from dynamic_pose.rig import motion_io, read

    obj = make_rig(bpy, "canonical")
    obj.rotation_euler = (0.0, 0.0, 0.9)
    obj.scale = (1.5, 1.5, 1.5)
    obj.location = (2.0, -1.0, 0.0)
    rt = read.retarget_for(obj)
    names = [rt.rig.names[rt.joint_bone[j]] for j in CANONICAL_JOINTS]
    frames = (1, walk.num_frames // 2, walk.num_frames)
    motion_io.put_motion(obj, walk, "bone", rt, frame_start=1, fps=30.0, root="BONE")
    by_bone = [evaluated_heads(bpy, obj, names, f) for f in frames]
    act = motion_io.put_motion(obj, walk, "object", rt, frame_start=1, fps=30.0, root="OBJECT")
    by_object = [evaluated_heads(bpy, obj, names, f) for f in frames]
    assert np.abs(np.array(by_bone) - np.array(by_object)).max() < 1e-4
    xs = curves(act).find("location", index=0)
    assert xs is not None and len(xs.keyframe_points) == walk.num_frames
    in_armature = []
    for f in frames:
        bpy.context.scene.frame_set(f)
        in_armature.append(np.array(obj.pose.bones[names[0]].head))
    assert np.ptp(np.array(in_armature)[:, :2], axis=0).max() < 1e-5  # the hips stay over the object
    assert np.ptp(np.array(by_object)[:, 0, :2], axis=0).max() > 0.1   # while the character travels
    with pytest.raises(ValueError, match="root motion"):
        motion_io.put_motion(obj, walk, "x", rt, frame_start=1, fps=30.0, root="SIDEWAYS")


@pytest.fixture
def generated_rigify(addon, tmp_path):
    """A Rigify rig generated from the human metarig (controls, MCH and DEF bones, constraints)."""
    from tools.characters import generated_rigify

    return generated_rigify(tmp_path)


def test_generated_rigify_rig_keyed_on_its_fk_controls(addon, walk, generated_rigify):
    """Keys go on the FK controls (with FK switched on in the action); the DEF bones, moved by
    the rig's own constraints, land where the canonical joint rotations put the metarig's
    joints (extra spine bones held, as the canonical skeleton has none) on every frame."""
    import bpy
    from dynamic_pose.motioncore.rigs import PRESETS, detect
    from dynamic_pose.rig import motion_io, read

    meta, obj = generated_rigify
    assert detect(read.rig_from_armature(obj))[:2] == ("rigify", 1.0)
    rt = read.retarget_for(obj)
    assert rt.drivers["LowerArm_L"] == "UpperArm_L" and rt.drivers["UpperLeg_R"] == "Hips"
    act = motion_io.put_motion(obj, walk, "walk", rt, frame_start=1, fps=30.0)
    written = {fc.data_path.split('"')[1] for fc in curves(act)}
    assert written <= set(PRESETS["rigify"].values()) | {"upper_arm_parent.L", "upper_arm_parent.R",
                                                         "thigh_parent.L", "thigh_parent.R", "torso"}
    frames = 1 + np.arange(walk.num_frames)
    back = motion_io.take_motion(obj, rt, frames, 30.0)
    assert rot.angle_between(back.local_rotations, walk.local_rotations).max() < 1e-4
    assert np.abs(back.root_position - walk.root_position).max() < 1e-4

    reference = read.retarget_for(meta)
    reference.between = {}  # the canonical skeleton bends at its joints only
    basis, loc = reference.to_rig(walk)
    _, heads = reference.pose(basis, loc)
    want = heads[:, [reference.joint_bone[j] for j in CANONICAL_JOINTS]]
    deform = [PRESETS["rigify_def"][j] for j in CANONICAL_JOINTS]
    height = np.ptp([p[2] for p in reference.joint_pos.values()])  # toes to head
    got = np.array([evaluated_heads(bpy, obj, deform, int(f)) for f in frames])
    worst = (np.linalg.norm(got - want, axis=-1) / height).max()
    print(f"generated Rigify: worst joint error {worst:.2%} of body height over {walk.num_frames} frames")
    assert worst < 0.02

    def slide(p):  # horizontal speed of the lower foot, per frame: what skating shows as
        feet = p[:, [CANONICAL_JOINTS.index("Foot_L"), CANONICAL_JOINTS.index("Foot_R")]]
        low = np.argmin(feet[:-1, :, 2], axis=1)
        step = np.linalg.norm(feet[1:, :, :2] - feet[:-1, :, :2], axis=-1)
        return step[np.arange(len(low)), low].mean()

    assert slide(got) <= slide(want) + 1e-3 * height  # feet slide no more than the source's
