"""Keys written per second: a 10 s clip at 30 fps (300 frames) onto a 60-bone rig, in the real
Blender module. Target: that clip in 50 ms or less.

    python benchmarks/keys_write.py

Prints the bulk writer alone (60 bones x quaternion + root location, one key per frame) and the
whole path an operator takes onto the Rigify metarig (retargeting, rotation modes, the write)."""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAMES, BONES, REPEATS = 300, 60, 7


def sixty_bone_rig(bpy):
    data = bpy.data.armatures.new("bench")
    obj = bpy.data.objects.new("bench", data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    prev = None
    for i in range(BONES):
        b = data.edit_bones.new(f"bone{i:02d}")
        b.head, b.tail = (0.0, 0.0, 0.1 * i), (0.0, 0.0, 0.1 * i + 0.1)
        b.parent = prev if i % 10 else None
        prev = b
    bpy.ops.object.mode_set(mode="OBJECT")
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


def timed(fn) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])  # the first run warms caches


def main() -> None:
    import bpy  # first: it puts Blender's script modules (addon_utils) on the path

    import addon_utils  # noqa: I001  (after bpy, whatever an import sorter says)

    from motioncore import canonical, read_bvh
    from tools.addon_import import import_addon

    import_addon()
    from dynamic_pose.rig import action as act
    from dynamic_pose.rig import motion_io, read

    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = sixty_bone_rig(bpy)
    rng = np.random.default_rng(0)
    q = rng.normal(size=(FRAMES, 4))
    channels = {}
    for b in obj.pose.bones:
        for i in range(4):
            channels[(f'pose.bones["{b.name}"].rotation_quaternion', i, b.name)] = q[:, i]
    for i in range(3):
        channels[('pose.bones["bone00"].location', i, "bone00")] = q[:, i]
    frames = 1.0 + np.arange(FRAMES)
    writer = timed(lambda: act.write_action(obj, "bench", channels, frames))
    keys = FRAMES * len(channels)

    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.object
    walk = canonical.to_canonical(read_bvh(Path(__file__).resolve().parents[1] / "tests" / "data" / "bandai-2"
                                           / "dataset-2_walk-turn-left_elderly_004.bvh"))
    clip = walk.resample(30.0)
    reps = int(np.ceil(FRAMES / clip.num_frames))
    from motioncore.clip import concatenate

    clip = concatenate([clip] * reps).trim(0, FRAMES)
    rt = read.retarget_for(meta)
    whole = timed(lambda: motion_io.put_motion(meta, clip, "bench", rt, frame_start=1, fps=30.0))

    bpy.ops.pose.rigify_generate()
    generated = bpy.context.object
    t = time.perf_counter()
    rt_gen = read.retarget_for(generated)  # measures the control rig's drivers in Blender
    measure = time.perf_counter() - t
    onto_gen = timed(lambda: motion_io.put_motion(generated, clip, "bench",
                                                  read.retarget_for(generated), frame_start=1, fps=30.0))

    print(f"bpy {bpy.app.version_string}, {FRAMES} frames (10 s at 30 fps)")
    print(f"bulk writer, {BONES} bones: {keys} keys in {writer * 1e3:.1f} ms "
          f"({keys / writer / 1e6:.2f} M keys/s; target 50 ms)")
    print(f"operator path onto the Rigify metarig ({len(rt.written)} bones written, retargeting included): "
          f"{whole * 1e3:.1f} ms")
    print(f"onto a generated Rigify rig ({len(generated.data.bones)} bones; FK controls): "
          f"{onto_gen * 1e3:.1f} ms, {FRAMES / 30.0 / onto_gen:.0f}x real time (target 20x); the first time "
          f"also measures the rig: +{measure * 1e3:.0f} ms, {FRAMES / 30.0 / (measure + onto_gen):.0f}x")


if __name__ == "__main__":
    main()
