"""`make demo`: a real clip from the built dataset, on the canonical rig in Blender.

Writes out/demo.blend (an armature with the clip as an ordinary, editable action), out/demo.png
(a preview strip) and out/demo.bvh. Later the generator replaces the dataset clip with a
generated one.

    python -m tools.demo [--out out] [--clip NAME]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PREFERRED = ("walk-turn-left", "wave-right-hand", "walk")


def pick_clip(ds, name: str | None):
    if name:
        for c in ds.clips:
            if c.name == name:
                return c
        raise SystemExit(f"demo: no clip named {name!r} in the dataset cache")
    test = ds.split("test") or ds.clips
    for content in PREFERRED:
        matches = [c for c in test if c.content == content]
        if matches:
            return max(matches, key=lambda c: (c.length, c.name))
    return test[0]


def put_on_canonical_rig(motion, name: str):
    """A new scene holding the canonical armature with `motion` as its action; returns the object."""
    import bpy

    from motioncore.bonespace import to_pose_channels
    from tools.addon_import import import_addon

    import_addon()
    from dynamic_pose.rig import action, armature

    scene = bpy.context.scene
    scene.render.fps = int(round(motion.fps))
    scene.frame_start, scene.frame_end = 1, motion.num_frames
    obj = armature.create_armature(motion.skeleton, "DynamicPose_canonical")
    rest_rot, rest_head = armature.rest_orientations(obj, list(motion.skeleton.names))
    quats, loc = to_pose_channels(motion.local_rotations, motion.root_position, rest_rot, rest_head[0])
    action.write_action(obj, name, list(motion.skeleton.names), quats, loc, frame_start=1)
    return obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out", help="output folder (default: out)")
    parser.add_argument("--clip", help="dataset clip name (default: a test-split clip)")
    parser.add_argument("--cache", help="dataset cache folder (default: cache/)")
    args = parser.parse_args(argv)

    from backend import dataset, preview
    from motioncore import canonical, features, write_bvh

    try:
        ds = dataset.load(Path(args.cache) if args.cache else None)
    except (FileNotFoundError, ValueError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    clip = pick_clip(ds, args.clip)
    motion = features.from_features(ds.clip_features(clip), canonical.MODEL_FPS).resample(30)
    caption = clip.captions[0] if clip.captions else clip.name
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    put_on_canonical_rig(motion, clip.name)
    blend = out / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend.resolve()))
    png = preview.save_strip(motion, out / "demo.png", title=f"{clip.name}: {caption}")
    write_bvh(out / "demo.bvh", motion)
    print(f"clip {clip.name} ({clip.split} split, {motion.num_frames} frames at {motion.fps:g} fps): {caption}")
    print(f"wrote {blend}, {png}, {out / 'demo.bvh'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
