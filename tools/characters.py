"""Characters as users get them, and how a clip stands on them: shared by the tests
(tests/test_characters.py) and the benchmark (benchmarks/rigs.py).

Each character is built in Blender and round-tripped through Blender's own exporters and
importers, untouched after import, or read from the real files in ../shared/rigs:

- mixamo_fbx: Mixamo names, armature data Y-up in centimetres, the object turned 90 degrees about X
  with scale 0.01 (as Blender's FBX importer gives Mixamo and Maya files); FBX out and in.
- metarig_gltf: the Rigify metarig under a rotated, moved parent empty; glTF out and in
  (quaternion rotations, the importer's own bone orientations).
- metarig_facing_y: the Rigify metarig whose rest pose faces +Y in armature space.
- cmu_bvh: ../shared/rigs/cmu_131_01.bvh (cgspeed names, root at the origin, arms down).
- robot_gltf: ../shared/rigs/RobotExpressive.glb (Y-up, scale 100, feet parented to the root).
- anonymous_cmu / anonymous_robot: the same with every bone renamed Bone.NNN, so that only
  the hierarchy fallback can map them (arms-down rest; feet parented to the root).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RIGS = ROOT.parent / "shared" / "rigs"
WALK = ROOT / "tests" / "data" / "bandai-1" / "dataset-1_walk_normal_002.bvh"

CHARACTERS = ("mixamo_fbx", "metarig_gltf", "metarig_facing_y", "cmu_bvh", "robot_gltf", "anonymous_cmu",
              "anonymous_robot")
NEEDS_SHARED = {"cmu_bvh", "robot_gltf", "anonymous_cmu", "anonymous_robot"}


def _fresh():
    """An empty scene, by removing what is in it rather than reading factory settings again
    (bpy 4.2's glTF importer once crashed in create_bones, setting context.window.scene, after a
    second factory reset in one test)."""
    import addon_utils
    import bpy

    for module in ("io_anim_bvh", "io_scene_fbx", "io_scene_gltf2", "rigify"):
        addon_utils.enable(module, default_set=True)
    if bpy.context.object is not None and bpy.context.object.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    data = bpy.data
    bpy.data.batch_remove([*data.objects, *data.armatures, *data.meshes, *data.actions, *data.materials,
                           *data.images, *data.textures, *data.cameras, *data.lights, *data.collections])
    return bpy


def _import_gltf(path: Path) -> None:
    """Blender's glTF importer, with the window manager's own window in the context (the
    importer sets context.window.scene; headless, the context's window can be stale)."""
    import bpy

    windows = bpy.context.window_manager.windows
    if len(windows):
        with bpy.context.temp_override(window=windows[0]):
            bpy.ops.import_scene.gltf(filepath=str(path))
    else:
        bpy.ops.import_scene.gltf(filepath=str(path))


def _armature():
    import bpy

    return next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")


def _bake(obj, rotation, scale) -> None:
    """Turn and scale the armature's bones themselves (object transform applied), as if the
    rig had been built that way."""
    import bpy

    bpy.context.view_layer.objects.active = obj
    for o in bpy.context.scene.objects:
        o.select_set(o == obj)
    obj.rotation_euler, obj.scale = rotation, (scale,) * 3
    bpy.ops.object.transform_apply(location=False, rotation=True, scale=True)


def _metarig():
    import bpy

    bpy.ops.object.armature_human_metarig_add()
    return bpy.context.object


def build(name: str, folder: Path):
    """A fresh scene holding character `name`; returns its armature object."""
    bpy = _fresh()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if name == "mixamo_fbx":
        from dynamic_pose.motioncore.canonical import canonical_skeleton
        from dynamic_pose.motioncore.rigs import PRESETS
        from dynamic_pose.rig.armature import create_armature

        obj = create_armature(canonical_skeleton(), "Armature")
        for joint, bone in PRESETS["mixamo"].items():
            obj.data.bones[joint].name = bone
        _bake(obj, (-math.pi / 2, 0.0, 0.0), 100.0)  # bones Y-up, in centimetres
        obj.rotation_euler, obj.scale = (math.pi / 2, 0.0, 0.0), (0.01,) * 3
        path = folder / "mixamo.fbx"
        bpy.ops.export_scene.fbx(filepath=str(path), add_leaf_bones=False, bake_anim=False)
        _fresh()
        bpy.ops.import_scene.fbx(filepath=str(path))
        return _armature()
    if name == "metarig_gltf":
        obj = _metarig()
        empty = bpy.data.objects.new("Character", None)
        bpy.context.scene.collection.objects.link(empty)
        obj.parent = empty
        empty.rotation_euler, empty.location = (0.0, 0.0, 2.2), (1.5, -0.5, 0.0)
        path = folder / "metarig.glb"
        bpy.ops.export_scene.gltf(filepath=str(path), export_format="GLB")
        _fresh()
        _import_gltf(path)
        return _armature()
    if name == "metarig_facing_y":
        obj = _metarig()
        _bake(obj, (0.0, 0.0, math.pi), 1.0)
        return obj
    if name in ("cmu_bvh", "anonymous_cmu"):
        bpy.ops.import_anim.bvh(filepath=str(RIGS / "cmu_131_01.bvh"))
        obj = bpy.context.object
    elif name in ("robot_gltf", "anonymous_robot"):
        _import_gltf(RIGS / "RobotExpressive.glb")
        obj = _armature()
    else:
        raise ValueError(f"unknown character {name!r}; known: {', '.join(CHARACTERS)}")
    if name.startswith("anonymous"):
        for i, bone in enumerate(obj.data.bones):
            bone.name = f"Bone.{i:03d}"
    return obj


def per_bone_keys_gltf(folder: Path):
    """The human metarig walking (the real walk), each bone keyed on its own frames (frames 1
    and 31 and two more of its own, as hand-keyed or imported animation is), through Blender's
    glTF exporter with its keys as they are (no resampling) and its importer: (armature,
    {bone: frames keyed})."""
    from dynamic_pose.rig import action as act
    from dynamic_pose.rig import motion_io, read

    bpy = _fresh()
    bpy.context.scene.render.fps = 30
    obj = _metarig()
    motion_io.put_motion(obj, walk(), "walk", read.retarget_for(obj), frame_start=1, fps=30.0)
    own = {}
    for i, bone in enumerate(obj.pose.bones):
        own[bone.name] = {1.0, 31.0, 1.0 + 3 * (1 + i % 5), 2.0 + 7 * (1 + i % 3)}
    for fc in act._fcurves(obj.animation_data.action, obj, create=False):
        frames = own.get(act.bone_of(fc.data_path) or "", set())
        for k in [k for k in fc.keyframe_points if k.co[0] not in frames][::-1]:
            fc.keyframe_points.remove(k, fast=True)
        fc.update()
    path = Path(folder) / "per_bone_keys.glb"
    path.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.export_scene.gltf(filepath=str(path), export_format="GLB", export_force_sampling=False)
    _fresh()
    bpy.context.scene.render.fps = 30
    _import_gltf(path)
    return _armature(), own


def generated_rigify(folder: Path):
    """A fresh scene holding a Rigify rig generated from the human metarig (controls, MCH and
    DEF bones, constraints) and that metarig: (metarig, rig).

    Generated by a child process of this Python and appended from the file it writes: Rigify's
    generation registers its rig UI script's classes in the process, and on bpy 4.2 a later
    factory reset followed by enabling Rigify again then crashes (segfault)."""
    import subprocess
    import sys

    bpy = _fresh()
    path = Path(folder) / "rigify_generated.blend"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        run = subprocess.run([sys.executable, "-m", "tools.characters", "generated_rigify", str(path)], cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            raise RuntimeError(f"generating the Rigify rig failed: {run.stderr[-2000:]}")
    with bpy.data.libraries.load(str(path)) as (source, loaded):
        loaded.objects = ["metarig", "rig"]
    for obj in loaded.objects:
        bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.update()
    return tuple(loaded.objects)


def _write_generated_rigify(path: str) -> None:
    import os
    import sys

    import bpy  # noqa: I001 (bpy first: addon_utils lives in Blender's scripts, on the path once bpy is in)
    import addon_utils

    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.object
    bpy.ops.pose.rigify_generate()
    rig = bpy.context.object
    assert (meta.name, rig.name) == ("metarig", "rig"), (meta.name, rig.name)
    bpy.data.libraries.write(path, {meta, rig})
    # bpy 4.2 segfaults while tearing down after a Rigify generation; the file is written.
    sys.stdout.flush()
    os._exit(0)


def walk():
    """The test split's real walk (1 s, straight ahead), canonical."""
    from dynamic_pose.motioncore import canonical
    from dynamic_pose.motioncore.bvh import read_bvh

    return canonical.to_canonical(read_bvh(WALK))


def world_heads(obj, names: list[str], frames) -> np.ndarray:
    """(T, N, 3) world positions of the named pose bones' heads at each frame, as Blender
    evaluates them."""
    import bpy

    out = []
    for f in frames:
        bpy.context.scene.frame_set(int(f))
        m = np.array(obj.matrix_world)
        heads = np.array([np.array(obj.pose.bones[n].head) for n in names])
        out.append(heads @ m[:3, :3].T + m[:3, 3])
    return np.array(out)


def facing(obj, rt, frame) -> np.ndarray:
    """The character's forward (world, horizontal, unit) at `frame` as Blender poses it: from
    its hip line, left to right, crossed with up."""
    names = [rt.rig.names[rt.joint_bone[j]] for j in ("UpperLeg_L", "UpperLeg_R")]
    left, right = world_heads(obj, names, [frame])[0]
    forward = np.cross(left - right, [0.0, 0.0, 1.0])
    forward[2] = 0.0
    return forward / np.linalg.norm(forward)


def stance(obj, rt, motion, frames, forward) -> dict:
    """How `motion` (canonical, at the scene's frame rate, keyed from frames[0]) stands on the
    rig, measured in Blender's evaluation of the action:

    upright: share of frames with head above hips above both ankles (world z);
    heading_error_deg: angle between the hips' travel (first to last frame) and `forward`
    (the character's facing before the clip was put on it: `facing`);
    foot_error: worst gap, on the clip's contact frames, between each planted foot's lowest
    mapped joint and where it stands at rest (or, for a rig hung from its origin, the floor at
    the origin's height plus a planted joint's height in the data), as a share of body height;
    height: body height at rest (world units)."""
    from dynamic_pose.motioncore.canonical import FEET
    from dynamic_pose.motioncore.features import PLANTED_HEIGHT, foot_contacts

    joints = [j for j in ("Hips", "Head", "UpperLeg_L", "UpperLeg_R", "Foot_L", "Foot_R", "Toes_L", "Toes_R")
              if j in rt.joint_bone]
    names = [rt.rig.names[rt.joint_bone[j]] for j in joints]
    rest = _rest_world(obj, names)
    at = dict(zip(joints, range(len(joints))))
    posed = world_heads(obj, names, frames)
    z = posed[..., 2]
    upright = (z[:, at["Head"]] > z[:, at["Hips"]]) & (z[:, at["Hips"]] > np.maximum(z[:, at["Foot_L"]],
                                                                                      z[:, at["Foot_R"]]))
    travel = posed[-1, at["Hips"]] - posed[0, at["Hips"]]
    cos = np.dot(forward[:2], travel[:2]) / (np.linalg.norm(forward[:2]) * np.linalg.norm(travel[:2]) + 1e-12)
    height = float(np.ptp(rest[:, 2]))
    planted = foot_contacts(motion.positions(), motion.fps)[: len(frames)] > 0
    gaps = []
    for side in ("L", "R"):
        joint = f"Toes_{side}" if f"Toes_{side}" in at else f"Foot_{side}"
        on = planted[:, FEET.index(joint)]
        if rt.hung or not rt.stands:
            target = rt.origin[2] + rt.scale * PLANTED_HEIGHT[joint.split("_")[0]]
        else:
            target = rest[at[joint], 2]
        gaps.append(np.abs(z[on, at[joint]] - target))
    gaps = np.concatenate(gaps)
    return {"upright": float(upright.mean()), "heading_error_deg": float(np.degrees(np.arccos(np.clip(cos, -1, 1)))),
            "foot_error": float(gaps.max() / height) if len(gaps) else float("nan"), "height": height,
            "contact_frames": int(len(gaps))}


def _rest_world(obj, names: list[str]) -> np.ndarray:
    m = np.array(obj.matrix_world)
    heads = np.array([np.array(obj.data.bones[n].head_local) for n in names])
    return heads @ m[:3, :3].T + m[:3, 3]


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["generated_rigify"]:
        _write_generated_rigify(sys.argv[2])
