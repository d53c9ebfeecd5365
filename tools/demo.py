"""`make demo`: text to motion with the shipped default model, on the canonical rig in Blender.

Writes out/demo.blend (an armature with the generated clip as an ordinary, editable action),
out/demo.png (a preview strip) and out/demo.bvh. Without model weights it falls back to a real
test-split clip from the dataset cache (built on the way).

    python -m tools.demo [--out out] [--text T] [--seconds S] [--seed K] [--clip NAME]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PREFERRED = ("walk-turn-left", "wave-right-hand", "walk")
DEFAULT_PROMPT = "An elderly person walks forward, turning left."


def pick_clip(ds, name: str | None):
    if name:
        for c in ds.clips:
            if c.name == name:
                return c
        raise ValueError(f"no clip named {name!r} in the dataset cache")
    test = ds.split("test") or ds.clips
    for content in PREFERRED:
        matches = [c for c in test if c.content == content]
        if matches:
            return max(matches, key=lambda c: (c.length, c.name))
    return test[0]


def put_on_canonical_rig(motion, name: str):
    """A new scene holding the canonical armature with `motion` as its action; returns the object."""
    import bpy

    from tools.addon_import import import_addon

    import_addon()
    from dynamic_pose.rig import armature, motion_io, read

    scene = bpy.context.scene
    scene.render.fps = int(round(motion.fps))
    scene.frame_start, scene.frame_end = 1, motion.num_frames
    obj = armature.create_armature(motion.skeleton, "DynamicPose_canonical")
    motion_io.put_motion(obj, motion, name, read.retarget_for(obj), frame_start=1, fps=motion.fps)
    return obj


def _generated(weights: Path, text: str, seconds: float, seed: int):
    import time

    from backend.engine import Engine

    engine = Engine(weights)
    t0 = time.perf_counter()
    motion = engine.generate(text, seconds, seed=seed, fps=30.0)[0]
    print(f"generated {seconds:g} s in {time.perf_counter() - t0:.2f} s on {engine.device} "
          f"(model loaded in {engine.load_seconds:.1f} s)")
    name = "DP_" + "".join(ch if ch.isalnum() else "_" for ch in text)[:40].strip("_")
    return motion, name, f"generated: {text}"


def _from_dataset(cache: str | None, clip_name: str | None):
    from backend.data import dataset
    from motioncore import canonical, features

    cache_dir = Path(cache) if cache else dataset.default_cache_dir()
    try:
        ds = dataset.load(cache_dir)
    except FileNotFoundError:
        ds, _, _ = dataset.build(dataset.default_sources(), cache_dir)
    clip = pick_clip(ds, clip_name)
    motion = features.from_features(ds.clip_features(clip), canonical.MODEL_FPS).resample(30)
    caption = f"{clip.name} ({clip.split} split): {clip.captions[0] if clip.captions else ''}"
    return motion, clip.name, caption


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out", help="output folder (default: out)")
    parser.add_argument("--text", default=DEFAULT_PROMPT, help="prompt for the generator")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clip", help="show this dataset clip instead of generating")
    parser.add_argument("--cache", help="dataset cache folder (default: cache/)")
    parser.add_argument("--weights", help="model folder (default: weights/default)")
    args = parser.parse_args(argv)

    from backend.evaluation import preview
    from backend.paths import default_weights_dir
    from motioncore import write_bvh

    weights = Path(args.weights) if args.weights else default_weights_dir()
    try:
        if args.clip is None and (weights / "generator.json").is_file():
            motion, name, caption = _generated(weights, args.text, args.seconds, args.seed)
        else:
            motion, name, caption = _from_dataset(args.cache, args.clip)
    except (FileNotFoundError, ValueError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    put_on_canonical_rig(motion, name)
    blend = out / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend.resolve()))
    png = preview.save_strip(motion, out / "demo.png", title=caption)
    write_bvh(out / "demo.bvh", motion)
    print(f"{name}: {motion.num_frames} frames at {motion.fps:g} fps: {caption}")
    print(f"wrote {blend}, {png}, {out / 'demo.bvh'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
