"""Each motion operator writes the engine's own numbers onto the rig: the keys, read back
through the retargeting, are the motion the same backend returns for the same request (placed
where the character stood, and raised onto its floor), in both backend modes, on a character
imported through Blender's FBX exporter and importer (Y-up, centimetres)."""
import sys

import numpy as np
import pytest

from conftest import BACKEND_PYTHON, HAS_BACKEND, ROOT, enable_addon

MODES = [pytest.param("EMBEDDED", marks=pytest.mark.skipif(not HAS_BACKEND or sys.version_info[:2] != (3, 11),
                                                            reason="Embedded needs the backend in Blender's Python")),
         "PROCESS"]


@pytest.fixture
def character(dp, tiny_weights, tmp_path, request):
    """The Mixamo-style FBX character, the add-on on the tiny model in the asked mode."""
    from tools import characters

    bpy = dp
    obj = characters.build("mixamo_fbx", tmp_path)
    enable_addon(bpy, tiny_weights)
    prefs = bpy.context.preferences.addons["dynamic_pose"].preferences
    if request.param == "PROCESS":
        prefs.mode, prefs.python = "PROCESS", str(BACKEND_PYTHON)
    bpy.context.scene.render.fps = 30
    bpy.context.view_layer.objects.active = obj
    yield bpy, obj
    from dynamic_pose.client import session

    session.disconnect()


def _same(got, want, scale):
    """Joint rotations within 1e-4 rad; the root's path the same up to one height offset."""
    from dynamic_pose.motioncore import rotations as rot

    assert got.num_frames == want.num_frames
    assert rot.angle_between(got.local_rotations, want.local_rotations).max() < 1e-4
    gap = got.root_position - want.root_position
    assert np.abs(gap[:, :2]).max() * scale < 1e-4 * scale + 1e-6
    assert np.ptp(gap[:, 2]) < 1e-5


@pytest.mark.parametrize("character", MODES, indirect=True)
def test_generate_writes_the_engines_motion(character):
    from dynamic_pose.client import session
    from dynamic_pose.motioncore.retarget import place
    from dynamic_pose.rig import motion_io, read

    bpy, obj = character
    rt = read.retarget_for(obj)
    where = motion_io.standing(obj, rt, 1, 30.0)
    s = bpy.context.scene.dynamicpose
    s.prompt, s.length_unit, s.seconds, s.seed, s.variations, s.start_frame = "a person walks", "SECONDS", 1.0, 3, 1, 1
    s.lock_feet = False
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    take = session.current().generate("a person walks", 1.0, seed=3, variations=1, fps=30.0)[0]
    want = place(take, *where)
    got = motion_io.take_motion(obj, rt, 1 + np.arange(want.num_frames), 30.0)
    _same(got, want, rt.scale)


@pytest.mark.parametrize("character", MODES[:1], indirect=True)
def test_generate_with_lock_feet_writes_the_cores_locked_take(character):
    """Lock feet (on by default), on the shipped model (the tiny one's feet never stand
    still): the keys are the engine's take with its planted feet held (motioncore.footlock),
    placed as ever."""
    from dynamic_pose.client import session
    from dynamic_pose.motioncore import footlock
    from dynamic_pose.motioncore.retarget import place
    from dynamic_pose.rig import motion_io, read

    bpy, obj = character
    session.disconnect()
    bpy.context.preferences.addons["dynamic_pose"].preferences.weights = str(ROOT / "weights" / "default")
    rt = read.retarget_for(obj)
    where = motion_io.standing(obj, rt, 1, 30.0)
    s = bpy.context.scene.dynamicpose
    assert s.lock_feet  # the default
    s.prompt, s.length_unit, s.seconds, s.seed, s.start_frame = "a person walks", "SECONDS", 2.0, 0, 1
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    take = session.current().generate("a person walks", 2.0, seed=0, variations=1, fps=30.0)[0]
    locked = footlock.lock_feet(take)
    assert footlock.contacts(take).any() and not np.array_equal(locked.local_rotations, take.local_rotations)
    got = motion_io.take_motion(obj, rt, 1 + np.arange(take.num_frames), 30.0)
    _same(got, place(locked, *where), rt.scale)


@pytest.mark.parametrize("character", MODES, indirect=True)
def test_inbetween_and_edit_write_the_engines_motion(character):
    from dynamic_pose.client import session
    from dynamic_pose.motioncore import footlock
    from dynamic_pose.motioncore.features import ground_offset
    from dynamic_pose.rig import action as act
    from dynamic_pose.rig import motion_io, read
    from tools import characters

    bpy, obj = character
    rt = read.retarget_for(obj)
    motion_io.put_motion(obj, characters.walk(), "walk", rt, frame_start=1, fps=30.0, floor="AUTO", start="CHARACTER")
    frames = 1 + np.arange(31)
    keys = (1.0, 11.0, 21.0, 31.0)
    for fc in act._fcurves(obj.animation_data.action, obj, create=False):
        for k in fc.keyframe_points:
            k.select_control_point = k.co[0] in keys
    keyed = motion_io.take_motion(obj, rt, frames, 30.0)
    s = bpy.context.scene.dynamicpose
    s.seed, s.inbetween_prompt = 5, ""
    assert bpy.ops.dynamicpose.inbetween() == {"FINISHED"}
    lift = ground_offset(keyed)
    idx = [int(k) - 1 for k in keys]
    out = session.current().inbetween(keyed.raised(lift), idx, "", seed=5)
    want = footlock.lock_feet(out, fixed=idx).raised(-lift)  # Lock feet (the default) on the frames between
    _same(motion_io.take_motion(obj, rt, frames, 30.0), want, rt.scale)

    before = motion_io.take_motion(obj, rt, frames, 30.0)
    s.edit_prompt, s.edit_start, s.edit_end, s.edit_use_preview = "a person jumps", 10, 20, False
    assert bpy.ops.dynamicpose.edit(context_seconds=1) == {"FINISHED"}  # the context: the whole 1 s clip
    lift = ground_offset(before)
    out = session.current().edit(before.raised(lift), 9, 20, "a person jumps", seed=5)
    want = footlock.lock_feet(out, fixed=[*range(9), *range(20, 31)]).raised(-lift).trim(9, 20)
    _same(motion_io.take_motion(obj, rt, np.arange(10, 21), 30.0), want, rt.scale)


@pytest.mark.parametrize("character", MODES, indirect=True)
def test_mirror_and_extend_write_the_cores_and_the_engines_motion(character):
    """On the FBX round-tripped character: Mirror's keys read back as the core's mirror of what
    the rig played; Extend's new frames are the engine's continuation of the take."""
    from dynamic_pose.client import session
    from dynamic_pose.motioncore import footlock
    from dynamic_pose.motioncore.features import ground_offset
    from dynamic_pose.motioncore.retarget import mirrored
    from dynamic_pose.rig import motion_io, read
    from tools import characters

    bpy, obj = character
    rt = read.retarget_for(obj)
    motion_io.put_motion(obj, characters.walk(), "walk", rt, frame_start=1, fps=30.0, floor="AUTO", start="CHARACTER")
    frames = 1 + np.arange(31)
    played = motion_io.take_motion(obj, rt, frames, 30.0)
    assert bpy.ops.dynamicpose.mirror() == {"FINISHED"}
    _same(motion_io.take_motion(obj, rt, frames, 30.0), mirrored(played), rt.scale)

    before = motion_io.take_motion(obj, rt, frames, 30.0)
    s = bpy.context.scene.dynamicpose
    s.extend_prompt, s.extend_seconds, s.seed = "a person walks on", 0.5, 2
    assert bpy.ops.dynamicpose.extend() == {"FINISHED"}
    lift = ground_offset(before)
    out = session.current().continue_(before.raised(lift), "a person walks on", 0.5, seed=2)
    want = footlock.lock_feet(out, fixed=range(31)).raised(-lift)
    _same(motion_io.take_motion(obj, rt, 32 + np.arange(15), 30.0), want.trim(31, 46), rt.scale)
