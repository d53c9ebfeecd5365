"""Editable keys: a generated walk (the shipped model, feet locked, 4 s at 30 fps) written onto
real rigs (the Bandai BVH import, the Rigify metarig) with one key per frame and with editable
keys at 1, 5 and 10 mm; the keys written, the largest joint error read back from Blender's own
curves, and the seconds the thinning took.

    python benchmarks/sparse_keys.py [--json docs/sparse_keys.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BVH = ROOT / "tests" / "data" / "bandai-1" / "dataset-1_walk_normal_002.bvh"


def rig(kind: str):
    import addon_utils
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    if kind == "bandai":
        addon_utils.enable("io_anim_bvh", default_set=True)
        bpy.ops.import_anim.bvh(filepath=str(BVH))
    else:
        addon_utils.enable("rigify", default_set=True)
        bpy.ops.object.armature_human_metarig_add()
    return bpy.context.object


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--prompt", default="a person walks forward")
    args = ap.parse_args()

    from backend.engine import Engine
    from motioncore import footlock
    from tools.addon_import import import_addon

    walk = footlock.lock_feet(Engine(device="cpu").generate(args.prompt, 4.0, seed=0, fps=30.0)[0])
    import_addon()
    from dynamic_pose.motioncore.clip import Motion
    from dynamic_pose.rig import action as act
    from dynamic_pose.rig import motion_io
    from dynamic_pose.rig.read import retarget_for

    walk = Motion(_canonical(), walk.fps, walk.root_position, walk.local_rotations)
    frames = 1 + np.arange(walk.num_frames)
    rows = []
    for kind in ("bandai", "rigify"):
        obj = rig(kind)
        rt = retarget_for(obj)
        dense = motion_io.put_motion(obj, walk, "dense", rt, frame_start=1, fps=30.0)
        want = motion_io.take_motion(obj, rt, frames, 30.0).positions()
        total = sum(len(fc.keyframe_points) for fc in act._fcurves(dense, obj, create=False))
        for mm in (1.0, 5.0, 10.0):
            t0 = time.perf_counter()
            sparse = motion_io.put_motion(obj, walk, f"sparse {mm}", rt, frame_start=1, fps=30.0, sparse=mm / 1000)
            seconds = time.perf_counter() - t0
            got = motion_io.take_motion(obj, rt, frames, 30.0).positions()
            keys = sum(len(fc.keyframe_points) for fc in act._fcurves(sparse, obj, create=False))
            error = 1000 * float(np.linalg.norm(got - want, axis=-1).max())
            rows.append({"rig": kind, "bound_mm": mm, "keys": keys, "dense_keys": total,
                         "share": round(keys / total, 3), "error_mm": round(error, 2), "seconds": round(seconds, 2)})
            print(f"{kind}: {mm:g} mm -> {keys} keys of {total} ({keys / total:.0%}), largest joint error "
                  f"{error:.2f} mm, {seconds:.2f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"prompt": args.prompt, "seconds": 4.0, "fps": 30, "rows": rows},
                                              indent=1))
        print(f"wrote {args.json}")
    return 0


def _canonical():
    from dynamic_pose.motioncore.canonical import canonical_skeleton

    return canonical_skeleton()


if __name__ == "__main__":
    sys.exit(main())
