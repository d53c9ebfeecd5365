"""Your own motion from inside Blender, on every Blender the add-on supports: two giant walks
retargeted onto the Rigify metarig, trained into an adapter through the add-on's operator against
a real backend process (tiny weights, a few steps), listed, used by Generate, exported, imported
again, the default restored; and a training stopped part way keeps the steps done."""
import os
import threading
import time

import numpy as np
import pytest
from conftest import BACKEND_PYTHON, DATA, ROOT, enable_addon
from test_addon import snapshot as keys_of  # every key of every fcurve

GIANT = sorted((DATA / "styles").glob("*walk_giant_*.bvh"))


@pytest.fixture
def studio(blender, tiny_weights, tmp_path, monkeypatch):
    """The add-on on a local backend process (as Blender 5.1+ users run it, on every Blender
    here), its adapters in a fresh folder; the metarig with the two walks retargeted onto it."""
    import addon_utils

    from tools.addon_import import import_addon

    bpy = blender
    monkeypatch.setenv("DYNAMICPOSE_ADAPTERS", str(tmp_path / "adapters"))  # the server inherits it
    import_addon()
    enable_addon(bpy, tiny_weights)
    prefs = bpy.context.preferences.addons["dynamic_pose"].preferences
    prefs.mode, prefs.python, prefs.backend_dir = "PROCESS", str(BACKEND_PYTHON), str(ROOT)
    from dynamic_pose.client import session

    session.disconnect()  # a backend another test started has another adapters folder
    for path in GIANT:
        bpy.ops.import_anim.bvh(filepath=str(path))
    source = bpy.context.object
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    metarig = bpy.context.object
    s = bpy.context.scene.dynamicpose
    s.retarget_source = source
    assert bpy.ops.dynamicpose.retarget_actions() == {"FINISHED"}
    yield bpy, metarig
    session.disconnect()
    addon_utils.disable("dynamic_pose", default_set=True)




def generate(bpy, metarig, seed=7):
    """A take from the same prompt and seed, from the same start (the rig at rest)."""
    if metarig.animation_data is not None:
        metarig.animation_data.action = None
    for bone in metarig.pose.bones:  # an unanimated rig keeps the last pose it was shown in
        bone.matrix_basis.identity()
    bpy.context.view_layer.update()
    s = bpy.context.scene.dynamicpose
    s.prompt, s.seconds, s.seed, s.target = "a giant walks forward", 1.5, seed, metarig
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    return metarig.animation_data.action


def test_train_list_use_export_import_and_restore_the_default(studio, tmp_path):
    bpy, metarig = studio
    s = bpy.context.scene.dynamicpose
    default_take = keys_of(generate(bpy, metarig))
    assert bpy.ops.dynamicpose.adapters_refresh() == {"FINISHED"}
    assert [a.name for a in s.adapters] == ["default"] and s.adapter_in_use == "default"

    bpy.context.view_layer.objects.active = metarig
    assert bpy.ops.dynamicpose.train_clip_add(all_actions=True) == {"FINISHED"}
    takes = [c for c in s.train_clips if c.action.name.startswith("dataset-1_walk_giant")]
    assert len(takes) == 2 and all(c.armature == metarig for c in takes)
    assert takes[0].caption.startswith("dataset-1 walk giant")  # prefilled from the action's name
    for c in list(s.train_clips):  # keep only the two walks (Generate made an action on the rig too)
        if c not in takes:
            s.train_clips.remove(list(s.train_clips).index(c))
    takes[0].caption, takes[1].caption = "a giant walks forward heavily", "a huge person strides slowly"
    actions_before = {a.name: keys_of(a) for a in bpy.data.actions}
    s.adapter_name, s.train_steps = "giant", 3
    assert bpy.ops.dynamicpose.train_adapter() == {"FINISHED"}
    assert {a.name: keys_of(a) for a in bpy.data.actions}.keys() == actions_before.keys()  # nothing in the file moved
    listed = {a.name: a for a in s.adapters}
    assert set(listed) == {"default", "giant"} and listed["giant"].steps == 3 and listed["giant"].clips == 2
    assert s.train_report.startswith("giant: 3 steps") and "nearest-take distance" in s.train_report
    assert bpy.ops.dynamicpose.adapter_report_show() == {"FINISHED"}  # headless: loaded, no window
    assert bpy.data.images["report.png"].size[0] > 500
    with pytest.raises(RuntimeError, match="exists"):  # a second one of that name is refused before any work
        bpy.ops.dynamicpose.train_adapter()

    s.adapters_index = [a.name for a in s.adapters].index("giant")
    assert bpy.ops.dynamicpose.adapter_select() == {"FINISHED"} and s.adapter_in_use == "giant"
    made = generate(bpy, metarig)
    assert made["dynamicpose_adapter"] == "giant"
    giant_take = keys_of(made)
    assert giant_take.keys() == default_take.keys()
    assert any(not np.array_equal(giant_take[k], default_take[k]) for k in giant_take)

    out = tmp_path / "giant.safetensors"
    assert bpy.ops.dynamicpose.adapter_export(filepath=str(out)) == {"FINISHED"} and out.stat().st_size > 0
    with pytest.raises(RuntimeError, match="exists"):
        bpy.ops.dynamicpose.adapter_import(filepath=str(out))
    with pytest.raises(RuntimeError, match="in use"):
        bpy.ops.dynamicpose.adapter_remove()
    assert bpy.ops.dynamicpose.adapter_select(name="default") == {"FINISHED"}
    s.adapters_index = [a.name for a in s.adapters].index("giant")
    assert bpy.ops.dynamicpose.adapter_remove() == {"FINISHED"} and [a.name for a in s.adapters] == ["default"]
    assert bpy.ops.dynamicpose.adapter_import(filepath=str(out)) == {"FINISHED"}
    assert bpy.ops.dynamicpose.adapter_select(name="giant") == {"FINISHED"}
    again = keys_of(generate(bpy, metarig))
    assert all(np.array_equal(again[k], giant_take[k]) for k in giant_take)  # the shared file is the same adapter

    assert bpy.ops.dynamicpose.adapter_select(name="default") == {"FINISHED"}
    back = generate(bpy, metarig)
    assert back["dynamicpose_adapter"] == "default"
    assert all(np.array_equal(keys_of(back)[k], default_take[k]) for k in default_take)


def test_a_stopped_training_keeps_the_steps_done(studio):
    from dynamic_pose.operators import RUNNING

    bpy, metarig = studio
    s = bpy.context.scene.dynamicpose
    bpy.context.view_layer.objects.active = metarig
    assert bpy.ops.dynamicpose.train_clip_add(all_actions=True) == {"FINISHED"}
    for c in s.train_clips:
        c.caption = "a giant walks"
    s.adapter_name, s.train_steps = "halfway", 2000
    seen = []

    def stop_after_two_steps():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            op = RUNNING.get("dynamicpose.train_adapter")
            detail = op.detail if op is not None else ""
            if detail.startswith("step ") and int(detail.split()[1].split("/")[0]) >= 2:
                seen.append(detail)
                op.cancel_work()
                return
            time.sleep(0.02)

    threading.Thread(target=stop_after_two_steps, daemon=True).start()
    assert bpy.ops.dynamicpose.train_adapter() == {"FINISHED"}
    assert seen and "loss" in seen[0] and "s left" in seen[0]
    kept = {a.name: a for a in s.adapters}["halfway"]
    assert 2 <= kept.steps < 2000 and kept.note == "stopped early"
    assert "stopped at step" in s.train_report
    s.adapters_index = [a.name for a in s.adapters].index("halfway")
    assert bpy.ops.dynamicpose.adapter_select() == {"FINISHED"}
    assert generate(bpy, metarig)["dynamicpose_adapter"] == "halfway"
    info = (ROOT / os.environ["DYNAMICPOSE_ADAPTERS"] / "halfway" / "adapter_info.json").read_text()
    assert '"stopped": "cancelled"' in info


def test_captions_from_action_names():
    from tools.addon_import import import_addon

    pytest.importorskip("bpy")
    import_addon()
    from dynamic_pose.operators.adapters import caption_from_name

    assert caption_from_name("DP a person walks #2") == "a person walks"
    assert caption_from_name("Giant_Walk.001") == "giant walk"
    assert caption_from_name("DP a person waves in-between") == "a person waves"
    assert caption_from_name("DP a jump #3 edit.001") == "a jump"
    assert caption_from_name("HeavyStomp") == "heavy stomp"
