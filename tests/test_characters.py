"""Characters as users import them (tools/characters.py: Blender's own FBX, glTF and BVH
exporters and importers, and the real files in ../shared/rigs, untouched after import): a real
walk put on each stands upright, travels along the character's facing, plants its feet on the
character's floor and reads back exactly; the operators start where the character stands; an
unsure or wrong mapping is refused, never used."""
import numpy as np
import pytest
from conftest import ROOT, enable_addon

from tools.characters import CHARACTERS, NEEDS_SHARED, RIGS


def build(name, tmp_path):
    from tools import characters

    if name in NEEDS_SHARED and not (RIGS / "cmu_131_01.bvh").exists():
        pytest.skip(f"{RIGS} is missing (the real characters come from ../shared/rigs)")
    obj = characters.build(name, tmp_path)
    import bpy

    bpy.context.scene.render.fps = 30
    return obj


@pytest.mark.parametrize("name", CHARACTERS)
def test_a_walk_stands_on_the_character(addon, tmp_path, name):
    """What Generate does with the engine's clip (the start frame's place and facing, the
    rig's floor), with a real walk: upright on every frame, along the facing the character had
    within 20 degrees, planted feet within 2% of body height of the floor, and the keys read
    back to the same joint rotations within 1e-4 rad."""
    from dynamic_pose.motioncore import rotations as rot
    from dynamic_pose.motioncore.retarget import place
    from dynamic_pose.rig import motion_io, read

    from tools import characters

    obj = build(name, tmp_path)
    preset, confidence, _ = read.detection(obj)
    assert confidence >= 0.75, (preset, confidence)
    rt = read.retarget_for(obj)
    forward = characters.facing(obj, rt, 1)
    walk = characters.walk()
    where = motion_io.standing(obj, rt, 1, 30.0)
    motion_io.put_motion(obj, walk, "walk", rt, frame_start=1, fps=30.0, floor="AUTO", start="CHARACTER")
    frames = 1 + np.arange(walk.num_frames)
    placed = place(walk, *where)
    st = characters.stance(obj, rt, placed, frames, forward)
    assert st["upright"] == 1.0, st
    assert st["heading_error_deg"] < 20.0, st
    assert st["contact_frames"] > 10 and st["foot_error"] < 0.02, st
    back = motion_io.take_motion(obj, rt, frames, 30.0)
    mapped = [rt.skeleton.index(j) for j in rt.joint_bone]
    err = rot.angle_between(back.local_rotations[:, mapped], placed.local_rotations[:, mapped])
    assert err.max() < 1e-4
    # And it starts where the character stood: its hips over the spot they were over.
    assert np.abs(back.root_position[0, :2] - where[0]).max() * rt.scale < 0.02 * st["height"]


def test_grounding_is_what_puts_the_feet_down(addon, tmp_path):
    """Without the floor step the canonical heights float the metarig's feet well off its
    floor; with it they meet it: the test above could fail."""
    from dynamic_pose.rig import motion_io, read

    from tools import characters

    obj = build("metarig_facing_y", tmp_path)
    rt = read.retarget_for(obj)
    forward = characters.facing(obj, rt, 1)
    walk = characters.walk()
    frames = 1 + np.arange(walk.num_frames)
    motion_io.put_motion(obj, walk, "as is", rt, frame_start=1, fps=30.0, floor=None)
    floating = characters.stance(obj, rt, walk, frames, forward)
    motion_io.put_motion(obj, walk, "grounded", rt, frame_start=1, fps=30.0, floor="AUTO")
    grounded = characters.stance(obj, rt, walk, frames, forward)
    assert floating["foot_error"] > 0.03 and grounded["foot_error"] < 0.02, (floating, grounded)
    # A floor height the user sets moves the planted feet onto it.
    motion_io.put_motion(obj, walk, "raised", rt, frame_start=1, fps=30.0, floor=0.5)
    names = [rt.rig.names[rt.joint_bone[j]] for j in ("Toes_L", "Toes_R")]
    low = characters.world_heads(obj, names, frames)[..., 2].min()
    assert 0.5 < low < 0.5 + 0.05 * grounded["height"]


def test_root_motion_on_the_root_bone(addon, tmp_path):
    """ROOT: the rig's root bone carries the ground track, the hips only their sway about it;
    every joint still lands where the hips-carried walk puts it."""
    from dynamic_pose.rig import motion_io, read

    from tools import characters

    obj = build("robot_gltf", tmp_path)
    rt = read.retarget_for(obj)
    assert rt.rig.names[rt.root_bone] == "Bone"
    walk = characters.walk()
    frames = 1 + np.arange(walk.num_frames)
    names = [rt.rig.names[b] for b in rt.joint_bone.values()]
    motion_io.put_motion(obj, walk, "hips", rt, frame_start=1, fps=30.0, root="BONE")
    by_hips = characters.world_heads(obj, names, frames)
    motion_io.put_motion(obj, walk, "root", rt, frame_start=1, fps=30.0, root="ROOT")
    by_root = characters.world_heads(obj, names, frames)
    assert np.abs(by_hips - by_root).max() < 1e-3 * rt.height
    root = characters.world_heads(obj, ["Bone"], frames)[:, 0]
    assert np.linalg.norm(root[-1, :2] - root[0, :2]) > 0.3 * rt.height  # the root travels
    hips = by_root[:, names.index(rt.rig.names[rt.hips_bone])]
    assert np.abs(hips[:, :2] - root[:, :2]).max() < 0.1 * rt.height  # the hips stay over it


def test_shifted_legs_and_partial_matches_are_never_confident(addon, tmp_path):
    """A leg mapping one joint off (the thigh's parent as the thigh, the knee as the foot) and
    name matches of a quarter or a half of a preset report less than the threshold, with what
    is wrong."""
    from dynamic_pose.motioncore.rigs import MIN_CONFIDENCE, confidence, detect, problems
    from dynamic_pose.rig import read

    obj = build("cmu_bvh", tmp_path)
    world = read.rig_from_armature(obj).in_world(read.world_matrix(obj))
    preset, share, mapping = detect(world)
    assert preset == "cmu_cgspeed" and share == 1.0
    shifted = dict(mapping)
    for side, word in (("L", "Left"), ("R", "Right")):
        shifted.update({f"UpperLeg_{side}": f"{side}HipJoint", f"LowerLeg_{side}": f"{word}Hip",
                        f"Foot_{side}": f"{word}Knee", f"Toes_{side}": f"{word}Ankle"})
    assert confidence(world, shifted, 1.0) < MIN_CONFIDENCE
    assert any("above the floor" in p for p in problems(world, shifted))
    partial = {j: b for j, b in mapping.items() if j.endswith("_L") or j in ("Hips", "Spine")}  # no right side
    assert 0.4 < len(partial) / 21 < 0.6 and confidence(world, partial, len(partial) / 21, shape=False) < MIN_CONFIDENCE


def _legless(bpy, keep_names: int):
    """The canonical armature without legs, the first `keep_names` bones named as Mixamo names
    them and the rest renamed: neither names nor shape can make a body of it."""
    from dynamic_pose.motioncore.canonical import canonical_skeleton
    from dynamic_pose.motioncore.rigs import PRESETS
    from dynamic_pose.rig.armature import create_armature

    obj = create_armature(canonical_skeleton(), "Legless")
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for joint in [j for j in PRESETS["bandai"] if "Leg" in j or "Foot" in j or "Toes" in j]:
        obj.data.edit_bones.remove(obj.data.edit_bones[joint])
    bpy.ops.object.mode_set(mode="OBJECT")
    for i, bone in enumerate(list(obj.data.bones)):
        bone.name = PRESETS["mixamo"][bone.name] if i < keep_names else f"part{i}"
    return obj


@pytest.mark.parametrize("keep", [5, 7, 13])
def test_detect_refuses_an_unsure_mapping_and_leaves_the_panel_alone(addon, keep):
    """24%, 33% and 62% of Mixamo's names: Detect says what is missing, changes nothing and
    does not switch the custom mapping on; Generate refuses the rig instead of leaving its legs
    at rest."""
    import addon_utils
    import bpy

    addon_utils.enable("dynamic_pose", default_set=True)
    try:
        obj = _legless(bpy, keep)
        bpy.context.view_layer.objects.active = obj
        with pytest.raises(RuntimeError, match="no reliable mapping found .*no bone for .*UpperLeg_L"):
            bpy.ops.dynamicpose.mapping_detect()  # the bpy module raises what the operator reports
        assert not obj.dynamicpose_use_custom and len(obj.dynamicpose_map) == 0
        from dynamic_pose.rig import read

        with pytest.raises(ValueError, match="no reliable mapping"):
            read.retarget_for(obj)
    finally:
        addon_utils.disable("dynamic_pose", default_set=True)


def test_detection_is_remembered_per_armature(addon, tmp_path):
    """The Retarget panel asks on every redraw: the second ask is a lookup, and a changed
    transform or renamed bone asks again."""
    import time

    from dynamic_pose.rig import read

    obj = build("metarig_gltf", tmp_path)
    t0 = time.perf_counter()
    first = read.detection(obj, update=False)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert read.detection(obj, update=False) == first
    warm = time.perf_counter() - t0
    assert warm < cold
    obj.data.bones["spine"].name = "renamed"
    assert read.detection(obj)[2].get("Hips") != first[2]["Hips"]


def test_non_uniform_scale_is_refused_with_a_reason(addon):
    import bpy
    from dynamic_pose.motioncore.canonical import canonical_skeleton
    from dynamic_pose.rig import read
    from dynamic_pose.rig.armature import create_armature

    obj = create_armature(canonical_skeleton(), "Stretched")
    obj.scale = (1.0, 2.0, 1.0)
    bpy.context.view_layer.update()
    with pytest.raises(ValueError, match="scaled unevenly"):
        read.retarget_for(obj)


@pytest.fixture(scope="module")
def shipped_inbetweener(tiny_weights, tmp_path_factory):
    """The tiny test model with the shipped in-betweener: the engine fills gaps without text
    with the in-betweener alone, so In-between runs on real weights at test speed."""
    import shutil

    folder = tmp_path_factory.mktemp("shipped_inbetweener") / "weights"
    shutil.copytree(tiny_weights, folder)
    for name in ("inbetweener.json", "inbetweener.safetensors"):
        shutil.copy(ROOT / "weights" / "default" / name, folder / name)
    return folder


@pytest.mark.parametrize("name", CHARACTERS)
def test_operators_start_where_the_character_stands(dp, shipped_inbetweener, tmp_path, name):
    """Generate (the real operator, the embedded engine) starts the take over the spot the
    character's hips were over and facing its way; In-between (the shipped in-betweener) on a
    real walk keyed every 5 frames fills the gaps upright, along the character's facing, with
    the planted feet on its floor and the user's keys kept."""
    import bpy
    from dynamic_pose.rig import action as act
    from dynamic_pose.rig import motion_io, read

    from tools import characters

    obj = build(name, tmp_path)
    enable_addon(bpy, shipped_inbetweener)
    bpy.context.view_layer.objects.active = obj
    rt = read.retarget_for(obj)
    forward = characters.facing(obj, rt, 1)
    hips = rt.rig.names[rt.hips_bone]
    before = characters.world_heads(obj, [hips], [1])[0, 0]
    s = bpy.context.scene.dynamicpose
    s.prompt, s.length_unit, s.seconds, s.start_frame = "a person walks", "SECONDS", 1.0, 1
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    after = characters.world_heads(obj, [hips], [1])[0, 0]
    assert np.linalg.norm((after - before)[:2]) < 0.02 * rt.height
    assert np.degrees(np.arccos(np.clip(characters.facing(obj, rt, 1) @ forward, -1, 1))) < 20.0

    walk = characters.walk()
    obj.animation_data.action = None
    motion_io.put_motion(obj, walk, "keys", rt, frame_start=1, fps=30.0, floor="AUTO", start="CHARACTER")
    keyed = obj.animation_data.action
    frames = 1 + np.arange(walk.num_frames)
    truth = motion_io.take_motion(obj, rt, frames, 30.0)
    keys = {1.0, 6.0, 11.0, 16.0, 21.0, 26.0, 31.0}
    for fc in act._fcurves(keyed, obj, create=False):
        for k in fc.keyframe_points:
            k.select_control_point = k.co[0] in keys
    assert bpy.ops.dynamicpose.inbetween() == {"FINISHED"}
    filled = obj.animation_data.action
    assert filled != keyed and filled.name.startswith(keyed.name)
    st = characters.stance(obj, rt, truth, frames, forward)
    assert st["upright"] == 1.0 and st["heading_error_deg"] < 20.0, st
    assert st["foot_error"] < 0.02, st
    back = motion_io.take_motion(obj, rt, frames, 30.0)
    on_keys = [int(f) - 1 for f in sorted(keys)]
    assert np.abs(back.root_position[on_keys] - truth.root_position[on_keys]).max() < 1e-4 * rt.height


def test_an_animated_object_carries_the_motion_both_ways(dp, shipped_inbetweener, tmp_path):
    """The armature object itself keyed to travel and turn under its bones' walk (as imported
    takes often are): the motion read from it is the world motion Blender shows, and In-between
    keeps the object's keys and puts the body back where it was at every key."""
    import bpy
    from dynamic_pose.motioncore import rotations as rot
    from dynamic_pose.rig import action as act
    from dynamic_pose.rig import motion_io, read

    from tools import characters

    obj = build("metarig_gltf", tmp_path)
    enable_addon(bpy, shipped_inbetweener)
    bpy.context.view_layer.objects.active = obj
    rt = read.retarget_for(obj)
    motion_io.put_motion(obj, characters.walk(), "walk", rt, frame_start=1, fps=30.0)
    obj.rotation_mode = "XYZ"
    for frame, x, turn in ((1, 0.0, 0.0), (31, 1.0, 0.5)):
        obj.location[0] = x
        obj.rotation_euler[2] = turn
        obj.keyframe_insert("location", frame=frame)
        obj.keyframe_insert("rotation_euler", frame=frame)
    assert act.object_channels(obj, obj.animation_data.action)
    frames = 1 + np.arange(31)
    hips = rt.rig.names[rt.hips_bone]
    shown = characters.world_heads(obj, [hips], frames)[:, 0]
    bpy.context.scene.frame_set(1)
    rt = read.retarget_for(obj)  # made at frame 1: the object's travel is in the motion read
    read_back = motion_io.take_motion(obj, rt, frames, 30.0)
    up = rt.joint_pos["Hips"] + rt.scale * (read_back.root_position - rt.canon_rest[0]) + [0.0, 0.0, rt.base_lift]
    world = rot.rotate(rot.yaw_rotation(np.asarray(rt.facing)), up)
    assert np.abs(world - shown).max() < 1e-3 * rt.height
    assert np.linalg.norm(shown[-1] - shown[0]) > 0.5  # the object's travel is in what Blender shows
    keyed = obj.animation_data.action
    for fc in act._fcurves(keyed, obj, create=False):
        for k in fc.keyframe_points:
            k.select_control_point = k.co[0] in (1.0, 11.0, 21.0, 31.0)
    assert bpy.ops.dynamicpose.inbetween() == {"FINISHED"}
    assert obj.animation_data.action != keyed and act.object_channels(obj, obj.animation_data.action)
    after = characters.world_heads(obj, [hips], frames)[:, 0]
    assert np.abs(after[[0, 10, 20, 30]] - shown[[0, 10, 20, 30]]).max() < 1e-4 * rt.height
    assert np.abs(after - shown).max() < 0.05 * rt.height  # and between the keys, near the walk


def test_inbetween_uses_every_bones_own_keys_from_a_gltf_file(dp, shipped_inbetweener, tmp_path):
    """Animation as glTF files bring it: each bone keyed on frames of its own (a round trip
    through Blender's exporter, keys as they are, and its importer). Every key is selected;
    In-between fills each bone's other frames and keeps every key exactly, with no jump
    beside a key larger than the walk's own."""
    import bpy
    from dynamic_pose.motioncore import rotations as rot
    from dynamic_pose.rig import action as act
    from dynamic_pose.rig import motion_io, read

    from tools import characters

    obj, own = characters.per_bone_keys_gltf(tmp_path)
    enable_addon(bpy, shipped_inbetweener)
    bpy.context.view_layer.objects.active = obj
    keyed = obj.animation_data.action
    rt = read.retarget_for(obj)
    mapped = {rt.rig.names[b] for b in rt.joint_bone.values()}
    before = {}
    for fc in act._fcurves(keyed, obj, create=False):
        frames = {k.co[0] for k in fc.keyframe_points}
        assert frames == own[act.bone_of(fc.data_path)]  # the importer kept each bone's own frames
        before[(fc.data_path, fc.array_index)] = {k.co[0]: k.co[1] for k in fc.keyframe_points}
        for k in fc.keyframe_points:
            k.select_control_point = True
    assert bpy.ops.dynamicpose.inbetween() == {"FINISHED"}
    filled = obj.animation_data.action
    assert filled != keyed
    generated = 0
    for fc in act._fcurves(filled, obj, create=False):
        keys = {k.co[0]: k for k in fc.keyframe_points}
        theirs = before[(fc.data_path, fc.array_index)]
        for f, v in theirs.items():  # every key of the file, exactly, still a key
            assert keys[f].co[1] == v and keys[f].type == "KEYFRAME"
        if act.bone_of(fc.data_path) in mapped:
            assert set(keys) == set(np.arange(1.0, 32.0)), fc.data_path
            generated += sum(k.type == "GENERATED" for k in keys.values())
    assert generated > 1000
    motion = motion_io.take_motion(obj, rt, np.arange(1, 32), 30.0)
    steps = np.degrees(rot.angle_between(motion.local_rotations[1:], motion.local_rotations[:-1]))
    truth = characters.walk()
    walk_steps = np.degrees(rot.angle_between(truth.local_rotations[1:], truth.local_rotations[:-1]))
    assert np.isfinite(steps).all() and steps.max() < 2.0 * walk_steps.max() + 2.0, (steps.max(), walk_steps.max())


@pytest.mark.parametrize("kind", ["bandai", "rigify"])
def test_inbetween_through_the_addon_is_the_engines_within_ten_percent(dp, shipped_inbetweener, kind):
    """The path from the rig's keys to the engine and back (read the rig, in-between, write
    keys) loses nothing the engine gains: a held-out walk keyed every 10 frames on the Bandai
    BVH import and the Rigify metarig, In-between (the shipped in-betweener): its joint error
    against the walk on the frames between keys within 10% of the engine's own on the same keys."""
    import addon_utils
    import bpy
    from dynamic_pose.client import session
    from dynamic_pose.motioncore.features import ground_offset
    from dynamic_pose.rig import action as act
    from dynamic_pose.rig import motion_io, read

    from tools import characters

    walk_bvh = ROOT / "tests" / "data" / "bandai-1" / "dataset-1_walk_normal_002.bvh"
    if kind == "bandai":
        bpy.ops.import_anim.bvh(filepath=str(walk_bvh))
        obj = bpy.context.object
    else:
        addon_utils.enable("rigify", default_set=True)
        bpy.ops.object.armature_human_metarig_add()
        obj = bpy.context.object
        motion_io.put_motion(obj, characters.walk(), "walk", read.retarget_for(obj), frame_start=1, fps=30.0)
    enable_addon(bpy, shipped_inbetweener)
    bpy.context.view_layer.objects.active = obj
    bpy.context.scene.render.fps = 30
    rt = read.retarget_for(obj)
    a0, a1 = (int(round(f)) for f in obj.animation_data.action.frame_range)
    a1 = min(a1, a0 + 60)
    frames = np.arange(a0, a1 + 1)
    truth = motion_io.take_motion(obj, rt, frames, 30.0)
    keys = [f for f in range(a0, a1 + 1, 10)]
    for fc in act._fcurves(obj.animation_data.action, obj, create=False):
        for k in [k for k in fc.keyframe_points if k.co[0] not in keys][::-1]:
            fc.keyframe_points.remove(k, fast=True)
        fc.update()
        for k in fc.keyframe_points:
            k.select_control_point = True
    s = bpy.context.scene.dynamicpose
    s.lock_feet, s.seed, s.inbetween_prompt = False, 0, ""
    assert bpy.ops.dynamicpose.inbetween() == {"FINISHED"}
    through = motion_io.take_motion(obj, rt, frames, 30.0)
    idx = [k - a0 for k in keys]
    lift = ground_offset(truth)
    engine = session.current().inbetween(truth.raised(lift), idx, "", seed=0).raised(-lift)
    free = np.setdiff1d(np.arange(len(frames)), idx)

    def error(m):
        return float(np.linalg.norm(m.positions()[free] - truth.positions()[free], axis=-1).mean())

    mine, theirs = error(through), error(engine)
    assert theirs > 0 and abs(mine - theirs) <= 0.1 * theirs, (mine, theirs)
