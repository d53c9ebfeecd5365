"""The add-on in the real Blender module: the built zip installs and unregisters cleanly, and
each operator runs headless on real rigs against the real engine (embedded, and a real server
process), leaving the user's actions intact and the scene unchanged on failure."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import BACKEND_PYTHON, DATA, ROOT, fcurves_of, needs_backend

BANDAI_WALK = DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh"


def test_zip_installs_enables_and_unregisters_cleanly_twice(tmp_path):
    from tools.build_addon import build

    zip_path = build(tmp_path / "dist")
    import zipfile

    names = zipfile.ZipFile(zip_path).namelist()
    assert "blender_manifest.toml" in names and "rig/motion_io.py" in names
    assert not [n for n in names if n.startswith(("backend/", "tests/", "weights/", "cache/", "tools/"))]
    script = textwrap.dedent("""
        import sys, bpy, addon_utils
        mod = "bl_ext.user_default.dynamic_pose"
        bpy.ops.wm.read_factory_settings(use_empty=True)
        assert bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default",
                                                        enable_on_install=True) == {"FINISHED"}
        names = ["DYNAMICPOSE_OT_generate", "DYNAMICPOSE_OT_inbetween", "DYNAMICPOSE_OT_edit",
                 "DYNAMICPOSE_OT_backend_start", "DYNAMICPOSE_OT_backend_stop", "DYNAMICPOSE_PT_generate",
                 "DYNAMICPOSE_PT_inbetween", "DYNAMICPOSE_PT_edit", "DYNAMICPOSE_PT_backend",
                 "DYNAMICPOSE_PT_retarget", "DYNAMICPOSE_OT_mapping_detect", "DYNAMICPOSE_OT_mapping_import",
                 "DYNAMICPOSE_OT_mapping_export", "DYNAMICPOSE_OT_retarget_actions"]
        def registered():
            return [hasattr(bpy.types, n) for n in names] + [hasattr(bpy.types.Scene, "dynamicpose"),
                                                             hasattr(bpy.types.Object, "dynamicpose_map")]
        assert all(registered()), registered()
        for _ in range(2):
            addon_utils.disable(mod, default_set=True)
            assert not any(registered()), registered()
            addon_utils.enable(mod, default_set=True)
            assert all(registered()), registered()
        addon_utils.disable(mod, default_set=True)
        print("OK", len(names))
    """)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender_user"))
    run = subprocess.run([sys.executable, "-c", script, str(zip_path)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0 and "OK 14" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]


def rig(bpy, kind):
    import addon_utils

    if kind == "bandai":
        bpy.ops.import_anim.bvh(filepath=str(BANDAI_WALK))
    else:
        addon_utils.enable("rigify", default_set=True)
        bpy.ops.object.armature_human_metarig_add()
    return bpy.context.object


def curves(action):
    return fcurves_of(action)


def snapshot(action):
    """Every key of every fcurve: to prove an action was not touched."""
    out = {}
    for fc in curves(action):
        co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[(fc.data_path, fc.array_index)] = co
    return out


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", ["bandai", "rigify"])
def test_generate_makes_a_new_action_on_the_rig(dp, kind):
    bpy = dp
    obj = rig(bpy, kind)
    before = obj.animation_data.action if obj.animation_data else None
    kept = snapshot(before) if before else None
    s = bpy.context.scene.dynamicpose
    s.prompt, s.seconds, s.start_frame, s.variations = "a person walks", 2.0, 5, 2
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    act = obj.animation_data.action
    assert act.name == "DP a person walks #1" and "DP a person walks #2" in bpy.data.actions
    fps = bpy.context.scene.render.fps
    first, last = act.frame_range
    assert first == 5 and abs((last - first + 1) - 2.0 * fps) <= 2
    from dynamic_pose.rig.read import retarget_for

    rt = retarget_for(obj)
    paths = {fc.data_path for fc in curves(act)}
    for b in rt.joint_bone.values():
        assert any(p.startswith(f'pose.bones["{rt.rig.names[b]}"].rotation') for p in paths)
    assert all(k.type == "GENERATED" for fc in curves(act) for k in fc.keyframe_points)
    if before is not None:
        assert before.use_fake_user and same(snapshot(before), kept)


def select_only(action, frames):
    for fc in curves(action):
        for k in fc.keyframe_points:
            k.select_control_point = k.co[0] in frames


def delete_keys_but(action, frames, also=None):
    """As a user would before In-between: the imported take's keys deleted except on `frames`
    (and, per bone in `also`, on its own frames)."""
    for fc in curves(action):
        bone = fc.data_path.split('"')[1]
        keep = set(frames) | set((also or {}).get(bone, ()))
        for k in [k for k in fc.keyframe_points if k.co[0] not in keep][::-1]:
            fc.keyframe_points.remove(k, fast=True)
        fc.update()


def test_inbetween_keeps_every_key_of_yours_selected_or_not_and_the_original(dp):
    """Keys at 1, 12, 20 and 30, only 1 and 30 selected: 12 and 20 (breakdowns) are kept as
    they were and the motion passes through them; the frames between are generated."""
    bpy = dp
    obj = rig(bpy, "bandai")
    original = obj.animation_data.action
    truth = {(fc.data_path, fc.array_index): {f: fc.evaluate(f) for f in (1.0, 12.0, 20.0, 30.0)} for fc in curves(original)}
    delete_keys_but(original, {1.0, 12.0, 20.0, 30.0})
    kept = snapshot(original)
    select_only(original, {1.0, 30.0})
    from dynamic_pose.operators.motion import inbetween_problem
    from dynamic_pose.rig import action as act

    assert inbetween_problem(*act.keys_by_bone(obj)) is None  # the panel's button is enabled
    assert bpy.ops.dynamicpose.inbetween() == {"FINISHED"}
    new = obj.animation_data.action
    assert new != original and new.name.startswith(original.name) and same(snapshot(original), kept)
    written = [fc for fc in curves(new) if ".rotation" in fc.data_path or fc.data_path.startswith('pose.bones["Hips"]')]
    assert len(written) >= 21 * 3
    for fc in written:
        keys = {k.co[0]: k for k in fc.keyframe_points}
        for f in (1.0, 12.0, 20.0, 30.0):  # the user's keys: same value, same type
            assert keys[f].co[1] == truth[(fc.data_path, fc.array_index)][f] and keys[f].type == "KEYFRAME"
        assert keys[5.0].type == "GENERATED" and keys[16.0].type == "GENERATED"
        assert set(keys) == set(np.arange(1.0, 31.0))


def test_inbetween_refuses_a_range_keyed_on_every_frame_and_changes_nothing(dp):
    """And the panel says so before the button is pressed: it is enabled exactly when the
    operator runs (operators.motion.inbetween_problem)."""
    from dynamic_pose.operators.motion import inbetween_problem
    from dynamic_pose.rig import action as act

    bpy = dp
    obj = rig(bpy, "bandai")
    original = obj.animation_data.action
    kept, n = snapshot(original), len(bpy.data.actions)
    select_only(original, {12.0})
    assert "two frames" in inbetween_problem(*act.keys_by_bone(obj))
    select_only(original, {1.0, 12.0, 30.0})
    assert "every frame 1-30 is keyed" in inbetween_problem(*act.keys_by_bone(obj))
    with pytest.raises(RuntimeError, match="nothing to fill"):
        bpy.ops.dynamicpose.inbetween()
    assert obj.animation_data.action == original and same(snapshot(original), kept) and len(bpy.data.actions) == n


def test_inbetween_with_keys_on_some_bones(dp):
    """Whole poses keyed at 1 and 30, the left arm alone at 15: the arm holds its key there,
    the rest of the body is generated at 15."""
    bpy = dp
    obj = rig(bpy, "bandai")
    original = obj.animation_data.action
    arm = ("UpperArm_L", "LowerArm_L")
    delete_keys_but(original, {1.0, 30.0}, also={b: {15.0} for b in arm})
    select_only(original, {1.0, 30.0})
    assert bpy.ops.dynamicpose.inbetween() == {"FINISHED"}
    new = obj.animation_data.action
    arm_checked = body_generated = 0
    for fc in curves(new):
        if ".rotation" not in fc.data_path:
            continue
        bone = fc.data_path.split('"')[1]
        old = curves(original).find(fc.data_path, index=fc.array_index)
        at15 = {k.co[0]: k for k in fc.keyframe_points}[15.0]
        if bone in arm:
            assert at15.type == "KEYFRAME" and at15.co[1] == old.evaluate(15.0)
            arm_checked += 1
        else:
            body_generated += at15.type == "GENERATED"
    assert arm_checked == 6 and body_generated > 40


def test_edit_changes_only_the_range(dp):
    bpy = dp
    obj = rig(bpy, "bandai")
    original = obj.animation_data.action
    kept = snapshot(original)
    s = bpy.context.scene.dynamicpose
    s.edit_start, s.edit_end, s.edit_prompt = 10, 20, "a person jumps"
    assert bpy.ops.dynamicpose.edit() == {"FINISHED"}
    new = obj.animation_data.action
    assert new != original and same(snapshot(original), kept)
    changed = 0
    for fc in curves(new):
        old = curves(original).find(fc.data_path, index=fc.array_index)
        for f in list(range(1, 10)) + list(range(21, 31)):
            assert fc.evaluate(f) == old.evaluate(f)
        changed += any(abs(fc.evaluate(f) - old.evaluate(f)) > 1e-4 for f in range(10, 21))
    assert changed > 10


@pytest.mark.parametrize("setup, message", [
    (lambda s, p: setattr(s, "prompt", "   "), "write a prompt"),
    (lambda s, p: (setattr(p, "mode", "URL"), setattr(p, "url", "http://127.0.0.1:9")), "cannot reach"),
    (lambda s, p: (setattr(p, "mode", "URL"), setattr(p, "url", "http://example.com:80")), "this computer"),
    (lambda s, p: (setattr(p, "mode", "URL"), setattr(p, "url", "http://127.0.0.1.evil.example:8765")),
     "this computer"),
    (lambda s, p: (setattr(p, "mode", "PROCESS"), setattr(p, "python", "/nonexistent/python")), "does not exist"),
    (lambda s, p: (setattr(p, "mode", "PROCESS"), setattr(p, "python", "//python")), "relative to the open .blend"),
    (lambda s, p: (setattr(p, "mode", "PROCESS"), setattr(p, "python", str(BACKEND_PYTHON)),
                   setattr(p, "backend_dir", "//")), "relative to the open .blend"),
])
def test_failures_leave_the_scene_unchanged_and_say_why(dp, setup, message):
    bpy = dp
    obj = rig(bpy, "bandai")
    original = obj.animation_data.action
    kept = snapshot(original)
    n_actions = len(bpy.data.actions)
    setup(bpy.context.scene.dynamicpose, bpy.context.preferences.addons["dynamic_pose"].preferences)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.dynamicpose.generate()
    assert obj.animation_data.action == original and len(bpy.data.actions) == n_actions
    assert same(snapshot(original), kept)


def test_the_url_token_is_kept_for_the_session_and_never_saved(dp, tmp_path, monkeypatch):
    """The preferences file is readable by every user: the token must not be in it."""
    bpy = dp
    prefs = bpy.context.preferences.addons["dynamic_pose"].preferences
    prefs.token, prefs.url = "s3cret-token-value", "http://127.0.0.1:8765"
    assert prefs.token == "s3cret-token-value"
    monkeypatch.setenv("BLENDER_USER_CONFIG", str(tmp_path))
    assert bpy.ops.wm.save_userpref() == {"FINISHED"}
    saved = (tmp_path / "userpref.blend").read_bytes()
    assert b"127.0.0.1:8765" in saved and b"s3cret-token-value" not in saved  # saved, but not the token
    prefs.token = ""


def test_in_between_needs_two_selected_keyed_frames(dp):
    bpy = dp
    obj = rig(bpy, "bandai")
    select_only(obj.animation_data.action, {4.0})
    with pytest.raises(RuntimeError, match="at least two frames"):
        bpy.ops.dynamicpose.inbetween()


def test_local_process_backend_generates_and_stops(dp, tiny_weights):
    bpy = dp
    from dynamic_pose.client import session

    prefs = bpy.context.preferences.addons["dynamic_pose"].preferences
    prefs.mode, prefs.python = "PROCESS", str(BACKEND_PYTHON)
    obj = rig(bpy, "rigify")
    assert bpy.ops.dynamicpose.backend_start() == {"FINISHED"}
    assert bpy.context.scene.dynamicpose.status.startswith("ready: cpu")
    proc = session.current().process
    assert proc.poll() is None
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    assert obj.animation_data.action.name.startswith("DP ")
    # A wrong token is refused readably and changes nothing.
    session.current().token = "wrong"
    n = len(bpy.data.actions)
    with pytest.raises(RuntimeError, match="token"):
        bpy.ops.dynamicpose.generate()
    assert len(bpy.data.actions) == n
    bpy.ops.dynamicpose.backend_stop()
    assert proc.wait(15) == 0 and session.current() is None


def test_task_reports_progress_and_cancels():
    import threading
    import time

    from tools.addon_import import import_addon

    import_addon()
    from dynamic_pose.client import Cancelled
    from dynamic_pose.client.session import Task

    ran_on = []

    def work(progress, cancel):
        ran_on.append(threading.current_thread())
        for i in range(100):
            if cancel.is_set():
                raise Cancelled()
            progress(i / 100)
            time.sleep(0.01)
        return "done"

    task = Task(work)
    time.sleep(0.1)
    assert 0 < task.progress < 1 and not task.done.is_set()
    task.cancel.set()
    assert task.done.wait(1.0) and isinstance(task.error, Cancelled) and task.result is None
    assert ran_on and ran_on[0] is not threading.main_thread()  # the work ran off Blender's thread
    ran_on[0].join(1.0)
    assert not ran_on[0].is_alive()  # and ended with the cancel: nothing left running


def test_retarget_actions_in_one_go(dp):
    """Two Bandai BVH takes (two armatures, the same bones) onto the Rigify metarig: one new
    action per take over its frames, the same canonical motion read back, the sources untouched."""
    bpy = dp
    from dynamic_pose.motioncore import rotations as rot
    from dynamic_pose.rig import motion_io, read

    bpy.ops.import_anim.bvh(filepath=str(BANDAI_WALK))
    source = bpy.context.object
    bpy.ops.import_anim.bvh(filepath=str(DATA / "bandai-2" / "dataset-2_run_normal_001.bvh"))
    other = bpy.context.object
    takes = [source.animation_data.action, other.animation_data.action]
    kept = [snapshot(a) for a in takes]
    target = rig(bpy, "rigify")
    bpy.context.scene.dynamicpose.retarget_source = source
    assert bpy.ops.dynamicpose.retarget_actions() == {"FINISHED"}
    fps = motion_io.scene_fps(bpy.context.scene)
    rt_source, rt_target = read.retarget_for(source), read.retarget_for(target)
    for take, before in zip(takes, kept):
        made = bpy.data.actions[f"{take.name} ({target.name})"]
        assert made.frame_range[:] == pytest.approx(take.frame_range[:]) and same(snapshot(take), before)
        frames = np.arange(round(take.frame_range[0]), round(take.frame_range[1]) + 1)
        want = motion_io.take_motion(source, rt_source, frames, fps, action=take)
        got = motion_io.take_motion(target, rt_target, frames, fps, action=made)
        assert np.median(rot.angle_between(got.local_rotations, want.local_rotations)) < 1e-4
    assert source.animation_data.action == takes[0]
    bpy.context.scene.dynamicpose.retarget_source = target
    with pytest.raises(RuntimeError, match="other than the active"):
        bpy.ops.dynamicpose.retarget_actions()
    # A failure part way (the metarig has no root bone to carry the travel) leaves nothing behind.
    bpy.context.scene.dynamicpose.retarget_source = source
    bpy.context.scene.dynamicpose.root_motion = "ROOT"
    names, current = set(bpy.data.actions.keys()), target.animation_data.action
    with pytest.raises(RuntimeError, match="no root bone.*nothing was changed"):
        bpy.ops.dynamicpose.retarget_actions()
    assert set(bpy.data.actions.keys()) == names and target.animation_data.action == current


@pytest.mark.parametrize("text", ['{"mapping": ["Hips", "Spine"]}', "5", "null", "[" * 100000 + "]" * 100000,
                                  '{"mapping": {"Hips": 5}}', '{"mapping": {"Tail": "tail"}}', "\ufeff{not json",
                                  '{"mapping": {"Hips": "' + "x" * 200 + '"}}', "\x00\xff"])
def test_a_bad_mapping_file_is_refused_readably_and_changes_nothing(dp, tmp_path, text):
    bpy = dp
    obj = rig(bpy, "bandai")
    assert bpy.ops.dynamicpose.mapping_detect() == {"FINISHED"}
    before = [(r.joint, r.bone) for r in obj.dynamicpose_map]
    path = tmp_path / "bad.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if "\x00" not in text else b"\x00\xff")
    with pytest.raises(RuntimeError, match="not a DynamicPose mapping"):
        bpy.ops.dynamicpose.mapping_import(filepath=str(path))
    assert [(r.joint, r.bone) for r in obj.dynamicpose_map] == before
    with pytest.raises(RuntimeError, match="could not write"):
        bpy.ops.dynamicpose.mapping_export(filepath=str(tmp_path / "no" / "such" / "folder.json"))


def test_a_fault_part_way_through_a_batch_retarget_leaves_nothing_and_says_so(dp, monkeypatch):
    bpy = dp
    from dynamic_pose.rig import motion_io

    bpy.ops.import_anim.bvh(filepath=str(BANDAI_WALK))
    source = bpy.context.object
    bpy.ops.import_anim.bvh(filepath=str(DATA / "bandai-2" / "dataset-2_run_normal_001.bvh"))
    target = rig(bpy, "rigify")
    bpy.context.scene.dynamicpose.retarget_source = source
    real, calls = motion_io.retarget_action, []

    def fails_second_time(*args, **kw):  # a write that breaks after the first action was made
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(*args, **kw)

    monkeypatch.setattr(motion_io, "retarget_action", fails_second_time)
    names = set(bpy.data.actions.keys())
    with pytest.raises(RuntimeError, match=r"failed while writing keys \(RuntimeError: disk full\); nothing was changed"):
        bpy.ops.dynamicpose.retarget_actions()
    assert set(bpy.data.actions.keys()) == names and len(calls) == 2
    assert target.animation_data is None or target.animation_data.action is None


def test_custom_mapping_detect_export_import(dp, tmp_path):
    bpy = dp
    obj = rig(bpy, "bandai")
    assert bpy.ops.dynamicpose.mapping_detect() == {"FINISHED"}
    assert obj.dynamicpose_use_custom and len(obj.dynamicpose_map) == 21
    path = tmp_path / "bandai.json"
    assert bpy.ops.dynamicpose.mapping_export(filepath=str(path)) == {"FINISHED"}
    saved = json.loads(path.read_text())["mapping"]
    assert saved["UpperArm_L"] == "UpperArm_L" and len(saved) == 21
    # A user's edit: leave the chest unmapped; the rig still takes motion, Chest held at rest.
    del saved["Chest"]
    path.write_text(json.dumps({"mapping": saved}))
    assert bpy.ops.dynamicpose.mapping_import(filepath=str(path)) == {"FINISHED"}
    from dynamic_pose.rig.read import retarget_for

    rt = retarget_for(obj)
    assert "Chest" not in rt.joint_bone and len(rt.joint_bone) == 20
    bpy.context.scene.dynamicpose.prompt = "a person waves"
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    # Bad files are refused and change nothing.
    for text, message in (("{", "not a DynamicPose mapping"), ('{"mapping": {"Hips": "NoSuchBone"}}', "no bones named"),
                          ('{"mapping": {"Tail": "Hips"}}', "unknown canonical joints")):
        path.write_text(text)
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.dynamicpose.mapping_import(filepath=str(path))
        assert len(retarget_for(obj).joint_bone) == 20


def test_generate_follows_the_scene_frame_rate(dp):
    bpy = dp
    obj = rig(bpy, "rigify")
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    s = scene.dynamicpose
    s.length_unit, s.frames, s.start_frame = "FRAMES", 60, 1
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    first, last = obj.animation_data.action.frame_range
    assert abs((last - first + 1) - 60) <= 1  # 2.5 s at 24 fps, whatever the model's own rate
    # Quaternion keys never flip sign between neighbours (no long way round in the fcurves).
    for bone in ("spine", "upper_arm.L", "thigh.R"):
        path = f'pose.bones["{bone}"].rotation_quaternion'
        q = np.array([[curves(obj.animation_data.action).find(path, index=i).evaluate(f) for i in range(4)]
                      for f in range(int(first), int(last) + 1)])
        assert (np.sum(q[1:] * q[:-1], axis=1) > 0).all()


@needs_backend
def test_generate_with_an_automatic_length(dp, tiny_weights):
    bpy = dp
    obj = rig(bpy, "bandai")
    s = bpy.context.scene.dynamicpose
    s.prompt, s.length_unit, s.start_frame = "a person raises the right hand", "AUTO", 1
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    from backend.engine import Engine

    seconds = Engine(tiny_weights, device="cpu", dtype="float32").length_for(s.prompt)
    first, last = obj.animation_data.action.frame_range
    assert abs((last - first + 1) - seconds * bpy.context.scene.render.fps) <= 2


def test_work_runs_on_a_thread_reports_progress_and_cancels(dp):
    """Background Blender runs execute, which drives the same steps the modal timer drives in the
    UI: the model works on a thread, each step reports progress, and a cancel (Esc, or the panel's
    button) changes nothing."""
    import threading
    import time

    from dynamic_pose.operators import RUNNING

    bpy = dp
    obj = rig(bpy, "rigify")
    assert bpy.ops.dynamicpose.backend_start() == {"FINISHED"}  # time the work, not a backend's start
    s = bpy.context.scene.dynamicpose
    s.prompt, s.seconds, s.variations = "a long dance", 20.0, 16
    n_actions = len(bpy.data.actions)
    seen = []

    def watch_then_cancel():
        deadline = time.monotonic() + 30
        while "dynamicpose.generate" not in RUNNING and time.monotonic() < deadline:
            time.sleep(0.01)
        op = RUNNING["dynamicpose.generate"]
        seen.append(op.progress)
        op.cancel_work()

    threading.Thread(target=watch_then_cancel, daemon=True).start()
    t0 = time.perf_counter()
    assert bpy.ops.dynamicpose.generate() == {"CANCELLED"}
    assert time.perf_counter() - t0 < 2.0 and seen and 0 <= seen[0] < 1
    assert not RUNNING and len(bpy.data.actions) == n_actions and obj.animation_data is None


def test_inbetween_and_edit_on_a_rigify_rig(dp):
    bpy = dp
    obj = rig(bpy, "rigify")
    s = bpy.context.scene.dynamicpose
    s.prompt, s.seconds, s.start_frame = "a person walks", 2.0, 1
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    take = obj.animation_data.action
    kept = snapshot(take)
    select_only(take, {1.0, 20.0, 40.0})
    assert bpy.ops.dynamicpose.inbetween() == {"FINISHED"}
    filled = obj.animation_data.action
    assert filled != take and same(snapshot(take), kept)
    s.edit_start, s.edit_end = 15, 25
    assert bpy.ops.dynamicpose.edit() == {"FINISHED"}
    edited = obj.animation_data.action
    assert edited not in (take, filled)
    for fc in curves(edited):
        if ".rotation" not in fc.data_path:
            continue
        old = curves(filled).find(fc.data_path, index=fc.array_index)
        assert all(fc.evaluate(f) == old.evaluate(f) for f in (5, 10, 14, 26, 35))


@pytest.mark.skipif(sys.version_info[:2] == (3, 11), reason="Blender's Python is the backend's here: Embedded works")
def test_embedded_mode_refuses_a_python_the_backend_does_not_run_on(dp):
    """Blender 5.1+ runs Python 3.13: Embedded refuses with what to pick instead, and nothing
    is written."""
    bpy = dp
    obj = rig(bpy, "rigify")
    prefs = bpy.context.preferences.addons["dynamic_pose"].preferences
    prefs.mode = "EMBEDDED"
    n = len(bpy.data.actions)
    with pytest.raises(RuntimeError, match="Local process"):
        bpy.ops.dynamicpose.generate()
    assert len(bpy.data.actions) == n and obj.animation_data is None


@pytest.mark.parametrize("kind", ["bandai", "rigify"])
def test_mirror_swaps_left_and_right_about_the_character_and_keeps_the_original(dp, kind):
    """Mirror is the core's mirror about the character's own start, read back through the rig:
    joint rotations within 1e-4 rad of mirrored() of what the rig played; twice is the take
    again; the action you had is untouched."""
    from dynamic_pose.motioncore import rotations as rot
    from dynamic_pose.motioncore.retarget import mirrored
    from dynamic_pose.rig import motion_io
    from dynamic_pose.rig.read import retarget_for

    bpy = dp
    obj = rig(bpy, kind)
    if kind == "rigify":  # the metarig has no action: give it a generated walk first
        s = bpy.context.scene.dynamicpose
        s.prompt, s.seconds = "a person walks", 2.0
        assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    original = obj.animation_data.action
    kept = snapshot(original)
    rt, fps = retarget_for(obj), motion_io.scene_fps(bpy.context.scene)
    a0, a1 = (int(round(f)) for f in original.frame_range)
    frames = np.arange(a0, a1 + 1)
    played = motion_io.take_motion(obj, rt, frames, fps)
    assert bpy.ops.dynamicpose.mirror() == {"FINISHED"}
    flipped = obj.animation_data.action
    assert flipped.name == f"{original.name} mirrored" and same(snapshot(original), kept)
    got, want = motion_io.take_motion(obj, rt, frames, fps), mirrored(played)
    assert np.max(rot.angle_between(got.local_rotations, want.local_rotations)) < 1e-4
    assert np.allclose(got.root_position, want.root_position, atol=1e-3)
    legs = [got.skeleton.names.index(n) for n in ("UpperLeg_L", "UpperLeg_R")]
    assert np.max(rot.angle_between(got.local_rotations[:, legs[0]], played.local_rotations[:, legs[0]])) > 0.05
    assert bpy.ops.dynamicpose.mirror() == {"FINISHED"}
    back = motion_io.take_motion(obj, rt, frames, fps)
    assert np.max(rot.angle_between(back.local_rotations, played.local_rotations)) < 1e-4
    assert np.allclose(back.root_position, played.root_position, atol=1e-3)


def test_mirror_refuses_a_rig_without_motion(dp):
    bpy = dp
    obj = rig(bpy, "rigify")
    obj.animation_data_create()
    assert not bpy.ops.dynamicpose.mirror.poll()
    n = len(bpy.data.actions)
    with pytest.raises(RuntimeError):
        bpy.ops.dynamicpose.mirror()
    assert len(bpy.data.actions) == n


def test_extend_continues_the_take_and_keeps_every_frame_it_had(dp):
    """Extend by 1 s on the Bandai walk: a new version as long again as asked, every key the
    take had still there unchanged, the new frames joined on without a jump larger than the
    take's own biggest frame-to-frame change."""
    from dynamic_pose.motioncore import rotations as rot
    from dynamic_pose.rig import motion_io
    from dynamic_pose.rig.read import retarget_for

    bpy = dp
    obj = rig(bpy, "bandai")
    original = obj.animation_data.action
    kept = snapshot(original)
    a0, a1 = (int(round(f)) for f in original.frame_range)
    s = bpy.context.scene.dynamicpose
    s.extend_prompt, s.extend_seconds = "a person walks on", 1.0
    fps = motion_io.scene_fps(bpy.context.scene)
    assert bpy.ops.dynamicpose.extend() == {"FINISHED"}
    longer = obj.animation_data.action
    assert longer.name == f"{original.name} extended" and same(snapshot(original), kept)
    b0, b1 = (int(round(f)) for f in longer.frame_range)
    assert b0 == a0 and b1 == a1 + round(fps)
    new = snapshot(longer)
    for key, co in kept.items():  # every key of the take is there, where it was, as it was
        frames, values = co[0::2], co[1::2]
        got = dict(zip(new[key][0::2], new[key][1::2]))
        assert all(got.get(f) == v for f, v in zip(frames, values)), key
    rt = retarget_for(obj)
    q = motion_io.take_motion(obj, rt, np.arange(a0, b1 + 1), fps).local_rotations
    steps = np.max(rot.angle_between(q[1:], q[:-1]), axis=1)  # each frame's largest joint turn
    join = a1 - a0
    assert steps[join] <= 1.5 * steps[: join].max(), (steps[join], steps[: join].max())


def test_extend_refuses_a_rig_without_an_action(dp):
    bpy = dp
    obj = rig(bpy, "rigify")
    n = len(bpy.data.actions)
    with pytest.raises(RuntimeError, match="no action to extend"):
        bpy.ops.dynamicpose.extend()
    assert len(bpy.data.actions) == n and obj.animation_data is None


@pytest.mark.parametrize("kind", ["bandai", "rigify"])
def test_edit_of_the_upper_body_keeps_every_leg_key_bit_identical(dp, kind):
    """Edit with Part = Upper body: the legs' and hips' channels are the action's own, every
    key; the arms change inside the range only."""
    from dynamic_pose.motioncore.canonical import BODY_PARTS
    from dynamic_pose.rig.read import retarget_for

    bpy = dp
    obj = rig(bpy, kind)
    s = bpy.context.scene.dynamicpose
    if kind == "rigify":  # a take to edit first
        s.prompt, s.seconds, s.start_frame = "a person walks", 2.0, 1
        assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    original = obj.animation_data.action
    kept = snapshot(original)
    s.edit_start, s.edit_end, s.edit_prompt, s.edit_part = 10, 25, "a person waves", "UPPER"
    assert bpy.ops.dynamicpose.edit() == {"FINISHED"}
    new = obj.animation_data.action
    assert new != original and same(snapshot(original), kept)
    rt = retarget_for(obj)
    legs = {rt.rig.names[b] for b in rt.bones_for(BODY_PARTS["legs"])}
    arms = {rt.rig.names[b] for b in rt.bones_for(BODY_PARTS["upper"])}
    assert {rt.rig.names[rt.joint_bone[j]] for j in ("Hips", "Foot_L", "UpperLeg_R")} <= legs and not legs & arms
    after = snapshot(new)
    bone = lambda path: path.split('"')[1] if path.startswith("pose.bones") else None  # noqa: E731
    assert sum(bone(p) in legs for p, _ in kept) >= 8 * 3
    for key, co in kept.items():
        if bone(key[0]) in legs or bone(key[0]) not in arms:
            assert np.array_equal(after[key], co), key  # every key, bit for bit
    moved = [key for key in after if bone(key[0]) in arms and ".rotation" in key[0]
             and any(abs(curves(new).find(key[0], index=key[1]).evaluate(f)
                         - curves(original).find(key[0], index=key[1]).evaluate(f)) > 1e-4 for f in range(10, 26))]
    assert len(moved) >= 6
    for key in moved:
        fc, old = curves(new).find(key[0], index=key[1]), curves(original).find(key[0], index=key[1])
        assert all(fc.evaluate(f) == old.evaluate(f) for f in (1, 5, 9, 26, 30))


@pytest.mark.parametrize("kind", ["bandai", "rigify"])
def test_loop_makes_the_action_a_seamless_cycle(dp, kind):
    """Loop: the action's last half second regenerated to run on into its first pose, the
    frames before kept bit for bit, every bone curve cycling (the hips' travel with offset):
    played past its end it starts again where it began, carried on by its travel, with no
    larger turn across the wrap than the take makes between its own frames."""
    from dynamic_pose.motioncore import rotations as rot
    from dynamic_pose.rig import motion_io
    from dynamic_pose.rig.read import retarget_for

    bpy = dp
    obj = rig(bpy, kind)
    s = bpy.context.scene.dynamicpose
    if kind == "rigify":
        s.prompt, s.seconds, s.start_frame = "a person walks", 2.0, 1
        assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    else:
        delete_keys_but(obj.animation_data.action, set(np.arange(1.0, 61.0)))  # two seconds of the walk
    original = obj.animation_data.action
    kept = snapshot(original)
    a0, a1 = (int(round(f)) for f in original.frame_range)
    s.loop_seconds = 0.5
    assert bpy.ops.dynamicpose.loop() == {"FINISHED"}
    new = obj.animation_data.action
    assert new != original and same(snapshot(original), kept)
    n = round(0.5 * bpy.context.scene.render.fps)
    for fc in curves(new):
        old = curves(original).find(fc.data_path, index=fc.array_index)
        if old is not None:
            assert all(fc.evaluate(f) == old.evaluate(f) for f in range(a0, a1 - n + 1))
        if fc.data_path.startswith("pose.bones"):
            assert [m.type for m in fc.modifiers] == ["CYCLES"]
    rt = retarget_for(obj)
    fps = motion_io.scene_fps(bpy.context.scene)
    period = a1 - a0
    once = motion_io.take_motion(obj, rt, np.arange(a0, a1 + 1), fps)
    again = motion_io.take_motion(obj, rt, np.arange(a0 + period, a1 + period + 1), fps)
    assert rot.angle_between(again.local_rotations[1:], once.local_rotations[1:]).max() < 1e-4
    travel = once.root_position[-1] - once.root_position[0]
    assert np.abs(again.root_position - once.root_position - travel).max() < 1e-3
    assert abs(travel[2]) < 1e-3
    q = np.concatenate([once.local_rotations, again.local_rotations[1:]])
    steps = np.degrees(rot.angle_between(q[1:], q[:-1])).max(axis=1)
    wrap = steps[period - 2: period + 2]
    own = steps[: period - n]
    assert wrap.max() <= 1.5 * own.max() + 1.0, (wrap, own.max())


@pytest.mark.parametrize("kind", ["bandai", "rigify"])
def test_a_prompt_timeline_is_one_take_of_continuations(dp, kind):
    """Three rows (walk 1 s, wave 1 s, run 1 s) make one action: the backend's generation of
    the first row continued by each next one, so each join is the engine's continuation (the
    frames before a join are the earlier rows' motion as it was); bad rows are refused."""
    from dynamic_pose.client import session
    from dynamic_pose.motioncore import rotations as rot
    from dynamic_pose.rig import motion_io
    from dynamic_pose.rig.read import retarget_for

    bpy = dp
    obj = rig(bpy, kind)
    s = bpy.context.scene.dynamicpose
    s.start_frame, s.seed, s.lock_feet = 1, 4, False
    rows = [("a person walks", 1.0), ("a person waves", 1.0), ("a person runs", 1.0)]
    for text, seconds in rows:
        assert bpy.ops.dynamicpose.timeline_add() == {"FINISHED"}
        s.timeline[s.timeline_index].prompt, s.timeline[s.timeline_index].seconds = text, seconds
    assert [r.prompt for r in s.timeline] == [t for t, _ in rows]
    n_actions = len(bpy.data.actions)
    assert bpy.ops.dynamicpose.timeline_generate() == {"FINISHED"}
    assert len(bpy.data.actions) == n_actions + 1
    made = obj.animation_data.action
    assert made.name.startswith("DP a person walks / a person waves")
    fps = motion_io.scene_fps(bpy.context.scene)
    backend = session.current()
    want = backend.generate(rows[0][0], 1.0, seed=4, fps=fps)[0]
    joins = []
    for i, (text, seconds) in enumerate(rows[1:], start=1):
        joins.append(want.num_frames)
        nxt = backend.continue_(want, text, seconds, seed=4 + i)
        assert np.allclose(nxt.local_rotations[: want.num_frames], want.local_rotations, atol=1e-6)
        want = nxt
    assert want.num_frames == round(3.0 * fps) + 1 or abs(want.num_frames - 3.0 * fps) <= 2
    rt = retarget_for(obj)
    got = motion_io.take_motion(obj, rt, 1 + np.arange(want.num_frames), fps)
    # The joints' own turns are the chain's (placing the take where the rig stands turns the root only).
    assert rot.angle_between(got.local_rotations[:, 1:], want.local_rotations[:, 1:]).max() < 1e-3
    for bad, message in (([("a person walks", 1.0)], "two rows"), ([("a", 1.0), ("  ", 1.0)], "row 2"),
                         ([("a", 15.0), ("b", 10.0)], "at most")):
        s.timeline.clear()
        for text, seconds in bad:
            row = s.timeline.add()
            row.prompt, row.seconds = text, seconds
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.dynamicpose.timeline_generate()
    assert len(bpy.data.actions) == n_actions + 1


@pytest.mark.parametrize("kind", ["bandai", "rigify"])
def test_editable_keys_replay_the_motion_within_the_bound(dp, kind):
    """A real walk written with editable keys at 5 mm: far fewer keys than one per frame, the
    rig's joints (Blender's own curves, read back) within 5 mm of the walk written densely at
    every frame, the user's keys kept as they were."""
    from dynamic_pose.rig import action as act
    from dynamic_pose.rig import motion_io
    from dynamic_pose.rig.read import retarget_for

    from tools import characters

    bpy = dp
    obj = rig(bpy, kind)
    rt = retarget_for(obj)
    walk = characters.walk()
    frames = 1 + np.arange(walk.num_frames)
    dense = motion_io.put_motion(obj, walk, "dense", rt, frame_start=1, fps=30.0)
    want = motion_io.take_motion(obj, rt, frames, 30.0).positions()
    n_dense = sum(len(fc.keyframe_points) for fc in curves(dense))
    for fc in curves(dense):  # the user keys three poses of it, the rest is deleted
        for k in fc.keyframe_points:
            k.type = "KEYFRAME" if k.co[0] in (1.0, 15.0, 31.0) else "GENERATED"
    user = {(fc.data_path, fc.array_index): {f: fc.evaluate(f) for f in (1.0, 15.0, 31.0)} for fc in curves(dense)}
    keep = {act.bone_of(fc.data_path): {1.0, 15.0, 31.0} for fc in curves(dense) if act.bone_of(fc.data_path)}
    sparse = motion_io.put_motion(obj, walk, "sparse", rt, frame_start=1, fps=30.0, base=dense, keep=keep, sparse=0.005)
    got = motion_io.take_motion(obj, rt, frames, 30.0).positions()
    error = np.linalg.norm(got - want, axis=-1).max()  # canonical metres: the bound at the character's size
    n_sparse = sum(len(fc.keyframe_points) for fc in curves(sparse))
    assert error <= 0.005 and n_sparse < 0.45 * n_dense, (error, n_sparse, n_dense)
    assert "keys, within" in sparse["dynamicpose_keys"]
    for fc in curves(sparse):
        keys = {k.co[0]: k for k in fc.keyframe_points}
        for f, v in user[(fc.data_path, fc.array_index)].items():
            assert keys[f].type == "KEYFRAME" and keys[f].co[1] == pytest.approx(v, abs=1e-6)


@pytest.mark.parametrize("kind", ["bandai", "rigify"])
def test_takes_as_nla_strips_leave_the_action_and_play_from_their_tracks(dp, kind):
    """As NLA strip: two variations each on a new track as a strip from the start frame,
    playing the take's keys; the armature's own action (or none) stays as it was."""
    bpy = dp
    obj = rig(bpy, kind)
    before = obj.animation_data.action if obj.animation_data else None
    kept = snapshot(before) if before else None
    s = bpy.context.scene.dynamicpose
    s.prompt, s.seconds, s.start_frame, s.variations, s.as_strip = "a person waves", 1.0, 12, 2, True
    n = len(bpy.data.actions)
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    anim = obj.animation_data
    assert anim.action == before and len(bpy.data.actions) == n + 2
    if before is not None:
        assert same(snapshot(before), kept)
    strips = [strip for track in anim.nla_tracks for strip in track.strips]
    assert sorted(st.action.name for st in strips) == ["DP a person waves #1", "DP a person waves #2"]
    for st in strips:
        assert st.frame_start == 12 and st.action.frame_range[0] == 12
        if hasattr(st, "action_slot"):
            assert st.action_slot is not None
    # Played from its track (the action set aside), the rig shows the take's keys.
    anim.action = None
    for track in anim.nla_tracks:
        track.mute = track.strips[0].action.name != "DP a person waves #1"
    take = bpy.data.actions["DP a person waves #1"]
    fc = next(fc for fc in curves(take) if ".rotation" in fc.data_path)
    bone, prop = fc.data_path.split('"')[1], fc.data_path.rsplit(".", 1)[1]
    bpy.context.scene.frame_set(15)
    assert getattr(obj.pose.bones[bone], prop)[fc.array_index] == pytest.approx(fc.evaluate(15), abs=1e-5)


def test_every_motion_operator_works_on_the_panels_armature_else_the_active_one(dp):
    """One rule for all: the Armature field when set (here not the active object), else the
    active armature; the other rig is left as it was."""
    bpy = dp
    first = rig(bpy, "bandai")
    second = rig(bpy, "bandai")  # now the active object
    kept = snapshot(second.animation_data.action)
    s = bpy.context.scene.dynamicpose
    s.target = first
    before = first.animation_data.action
    assert bpy.ops.dynamicpose.mirror() == {"FINISHED"}
    assert first.animation_data.action != before
    s.edit_start, s.edit_end, s.edit_prompt = 10, 20, "a person jumps"
    mirrored = first.animation_data.action
    assert bpy.ops.dynamicpose.edit() == {"FINISHED"}
    assert first.animation_data.action != mirrored
    assert same(snapshot(second.animation_data.action), kept) and bpy.context.object == second
    s.target = None
    assert bpy.ops.dynamicpose.mirror() == {"FINISHED"}
    assert not same(snapshot(second.animation_data.action), kept)


@pytest.mark.parametrize("kind", ["bandai", "rigify"])
def test_takes_are_played_accepted_and_rejected_with_nothing_left_behind(dp, kind):
    """Generate three variations: the Takes list holds them, the rig plays the first; Next
    and Previous play the others; Reject removes the one playing from the file; Accept keeps
    the one playing and removes the rest. An In-between's result is a take too: rejected, the
    rig plays the action it had, and that action is never touched."""
    bpy = dp
    obj = rig(bpy, kind)
    s = bpy.context.scene.dynamicpose
    before = obj.animation_data.action if obj.animation_data else None
    kept = snapshot(before) if before else None
    n = len(bpy.data.actions)
    s.prompt, s.seconds, s.start_frame, s.variations = "a person jumps", 1.0, 1, 3
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    names = [t.action.name for t in s.takes]
    assert names == [f"DP a person jumps #{i}" for i in (1, 2, 3)] and obj.animation_data.action.name == names[0]
    assert bpy.ops.dynamicpose.take_step(step=1) == {"FINISHED"}
    assert obj.animation_data.action.name == names[1]
    assert bpy.ops.dynamicpose.take_step(step=-1) == {"FINISHED"}
    assert bpy.ops.dynamicpose.take_step(step=-1) == {"FINISHED"}  # wraps round
    assert obj.animation_data.action.name == names[2]
    assert bpy.ops.dynamicpose.take_reject() == {"FINISHED"}
    assert names[2] not in bpy.data.actions and len(bpy.data.actions) == n + 2
    assert obj.animation_data.action.name in names[:2] and len(s.takes) == 2
    s.takes_index = 1
    assert bpy.ops.dynamicpose.take_play() == {"FINISHED"} and obj.animation_data.action.name == names[1]
    assert bpy.ops.dynamicpose.take_accept() == {"FINISHED"}
    assert obj.animation_data.action.name == names[1] and len(bpy.data.actions) == n + 1 and len(s.takes) == 0
    assert not obj.animation_data.action.use_fake_user or obj.animation_data.action.users > 1
    if before is not None:
        assert before.name in bpy.data.actions and same(snapshot(before), kept)
    # A version is a take: rejected, the rig plays its action again, nothing is left.
    take = obj.animation_data.action
    select_only(take, {1.0, 20.0})
    for fc in curves(take):  # the take's keys are generated ones: only the selected two constrain
        assert all(k.type == "GENERATED" for k in fc.keyframe_points)
    assert bpy.ops.dynamicpose.inbetween() == {"FINISHED"}
    assert obj.animation_data.action != take and len(s.takes) == 1 and s.takes_previous == take
    m = len(bpy.data.actions)
    assert bpy.ops.dynamicpose.take_reject() == {"FINISHED"}
    assert obj.animation_data.action == take and len(bpy.data.actions) == m - 1 and len(s.takes) == 0
    assert bpy.ops.dynamicpose.take_reject.poll() is False


def test_check_finds_the_installed_backend_on_path_and_says_what_it_is(dp, tmp_path, monkeypatch):
    """Local process with no Python set: the backend installed as a package is found through
    its `dynamicpose` command on PATH (the Python its first line names), started, and Check
    says what it is; with none on PATH, Check says how to get one and nothing starts."""
    from dynamic_pose.client import places, session

    bpy = dp
    prefs = bpy.context.preferences.addons["dynamic_pose"].preferences
    session.disconnect()
    prefs.mode, prefs.python = "PROCESS", ""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(RuntimeError, match="no backend found"):
        bpy.ops.dynamicpose.backend_check()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "dynamicpose"
    script.write_text(f"#!{BACKEND_PYTHON}\n# console script of the dynamicpose package\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    assert places.installed_backend_python() == str(BACKEND_PYTHON)
    try:
        assert bpy.ops.dynamicpose.backend_check() == {"FINISHED"}
        status = bpy.context.scene.dynamicpose.status
        assert "over HTTP" in status and "Python 3.11" in status and "adapter default" in status, status
    finally:
        session.disconnect()


@pytest.mark.parametrize("kind", ["bandai", "rigify"])
def test_lock_feet_holds_the_planted_feet_of_a_generated_walk(dp, kind):
    """On the shipped model (the tiny one's feet never stand still): Generate with Lock feet
    writes the engine's take with its planted feet held (motioncore.footlock), and the feet the
    rig plays slide less than the take's own, read back from the rig both ways."""
    from dynamic_pose.client import session
    from dynamic_pose.motioncore import footlock, metrics
    from dynamic_pose.rig import motion_io
    from dynamic_pose.rig.read import retarget_for

    bpy = dp
    obj = rig(bpy, kind)
    session.disconnect()
    bpy.context.preferences.addons["dynamic_pose"].preferences.weights = str(ROOT / "weights" / "default")
    s = bpy.context.scene.dynamicpose
    s.prompt, s.length_unit, s.seconds, s.seed, s.start_frame = "a person walks forward", "SECONDS", 3.0, 0, 1
    rt = retarget_for(obj)
    fps = motion_io.scene_fps(bpy.context.scene)
    played = {}
    try:
        for lock in (False, True):
            s.lock_feet = lock
            assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
            take = obj.animation_data.action
            played[lock] = motion_io.take_motion(obj, rt, np.arange(1, int(take.frame_range[1]) + 1), fps)
        engine = session.current().generate("a person walks forward", 3.0, seed=0, fps=fps)[0]
    finally:
        session.disconnect()
    assert footlock.contacts(engine).any()
    free, held = (metrics.foot_skating(played[k]) for k in (False, True))
    assert held < 0.7 * free, (free, held)
    # Only the legs differ between the two takes.
    from dynamic_pose.motioncore import rotations as rot
    from dynamic_pose.motioncore.canonical import CANONICAL_JOINTS

    upper = [CANONICAL_JOINTS.index(j) for j in ("Spine", "Chest", "Head", "Hand_L", "UpperArm_R")]
    assert rot.angle_between(played[True].local_rotations[:, upper], played[False].local_rotations[:, upper]).max() < 1e-4


def test_a_starting_backend_is_counted_and_esc_stops_the_start(dp):
    """While a local backend process starts, the operator's progress says "starting backend:
    N s" (the status bar and the panel show it), and Esc ends the start at once: nothing is
    left running and nothing is written."""
    import threading
    import time

    from dynamic_pose.client import session
    from dynamic_pose.operators import RUNNING

    bpy = dp
    session.disconnect()
    prefs = bpy.context.preferences.addons["dynamic_pose"].preferences
    prefs.mode, prefs.python = "PROCESS", str(BACKEND_PYTHON)
    seen = []

    def watch_then_escape():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            op = RUNNING.get("dynamicpose.backend_check")
            if op is not None and "starting backend" in op.detail:
                time.sleep(1.2)  # a second on the count
                seen.append(op.detail)
                op.cancel_work()
                return
            time.sleep(0.01)

    threading.Thread(target=watch_then_escape, daemon=True).start()
    t0 = time.perf_counter()
    assert bpy.ops.dynamicpose.backend_check() == {"CANCELLED"}
    assert seen and seen[0].startswith("starting backend: ") and int(seen[0].split(": ")[1].split()[0]) >= 1, seen
    assert time.perf_counter() - t0 < 20 and not RUNNING and session.current() is None
