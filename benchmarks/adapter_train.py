"""Your own style in minutes: an adapter trained on 5 clips of one Bandai style (held-out clips
first) on the real model, then the default model's takes and the adapter's from the same
captions, each measured by its distance to the nearest of the 5 clips in the shipped
evaluator's motion embedding space. Target: the adapter's distance at least 20% smaller. What
its motion decoder costs other motion: the tokenizer round trip of other styles' test clips. And the
default is the default again once selected: its merged weights hash the same and its takes on
fixed prompts and seeds are bit-identical to those before any adapter was trained.

    python benchmarks/adapter_train.py                   # 4 styles, 120 steps each, 3 seeds a caption
    python benchmarks/adapter_train.py --style giant --json docs/adapter.json

Writes each style's report picture (your clips, the default's takes, the adapter's) beside --json."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# What a user would write for each content, in their own words (not the training templates).
WORDS = {"walk": "walks forward", "walk-back": "walks backwards", "walk-left": "walks to the left",
         "walk-right": "walks to the right", "dash": "runs forward", "bye": "waves goodbye with one hand",
         "byebye": "waves bye-bye with both hands", "bow": "bows", "guide": "shows the way with an arm",
         "respond": "answers with a nod and a gesture", "call": "calls someone over", "punch": "throws punches",
         "kick": "kicks", "slash": "slashes with a sword", "dance": "dances"}
WHO = {"childish": "a child", "giant": "a giant", "old": "an old man", "chimpira": "a street thug",
       "happy": "a happy person", "sad": "a sad person", "angry": "an angry person", "proud": "a proud person",
       "tired": "a tired person", "musical": "a person, like in a musical,", "not-confident": "a shy person"}
CHECK_PROMPTS = ["a person walks forward", "someone waves with the right hand", "a man runs and stops"]


def style_clips(archive: Path, style: str, n: int):
    """(name, canonical motion, caption) for n clips of `style`: val and test clips first."""
    from backend.data.dataset import split_of
    from motioncore import bvh, canonical

    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers() if m.name.endswith(".bvh") and f"_{style}_" in m.name]
        members.sort(key=lambda m: (split_of(Path(m.name).stem) == "train", m.name))
        out = []
        for m in members[:n]:
            stem = Path(m.name).stem
            content = stem.split("_")[1]
            motion = canonical.to_canonical(bvh.bvh_from_text(tf.extractfile(m).read().decode(), stem))
            out.append((stem, motion, f"{WHO.get(style, 'a person')} {WORDS.get(content, content)}"))
    if len(out) < n:
        raise SystemExit(f"only {len(out)} clips of style {style!r} in {archive}")
    return out


def fingerprint(engine) -> str:
    h = hashlib.sha256()
    for m in engine._lora.values():
        h.update(m.weight.detach().float().numpy().tobytes())
    h.update(engine.model.new_tokens.weight.detach().float().numpy().tobytes())
    for v in engine.tokenizer.decoder.state_dict().values():
        h.update(v.detach().numpy().tobytes())
    return h.hexdigest()


def other_clips(archive: Path, style: str, n: int):
    """n test-split clips of other styles: what the adapter's decoder costs everything else."""
    from backend.data.dataset import split_of
    from motioncore import bvh, canonical

    with tarfile.open(archive) as tf:
        members = sorted((m for m in tf.getmembers() if m.name.endswith(".bvh") and f"_{style}_" not in m.name
                          and split_of(Path(m.name).stem) == "test"), key=lambda m: m.name)
        step = max(1, len(members) // n)
        return [canonical.to_canonical(bvh.bvh_from_text(tf.extractfile(m).read().decode(), Path(m.name).stem))
                for m in members[::step][:n]]


def round_trip_mm(engine, motions) -> float:
    """Mean joint error (mm) of the clips through the engine's tokenizer and back."""
    from motioncore import canonical, features
    from motioncore.metrics import mpjpe

    errors = []
    for m in motions:
        f = features.to_features(m.resample(canonical.MODEL_FPS))
        back = engine.tokenizer.decode(engine.tokenizer.encode(f))[: len(f)]
        errors.append(mpjpe(features.from_features(back, canonical.MODEL_FPS), features.from_features(f, canonical.MODEL_FPS)))
    return round(1000 * float(np.mean(errors)), 1)


def check_takes(engine) -> list[np.ndarray]:
    return [engine.generate(p, 4.0, seed=s)[0].local_rotations for p in CHECK_PROMPTS for s in (0, 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", default="giant,childish,chimpira,old", help="styles, comma-separated (one adapter each)")
    ap.add_argument("--clips", type=int, default=5)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--decoder-steps", type=int, default=50, help="passes tuning the motion decoder (0: none)")
    ap.add_argument("--others", type=int, default=24, help="test clips of other styles for the decoder's cost")
    ap.add_argument("--seeds", type=int, default=3, help="takes per caption for each model")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" /
                                          "bandai-namco-motion-1.tar.xz"))
    ap.add_argument("--json", help="write the figures here (the pictures go beside it)")
    args = ap.parse_args()

    from backend import studio
    from backend.engine import Engine
    from backend.evaluation.adapter_report import measure

    folder = Path(tempfile.mkdtemp(prefix="dp-bench-adapters-"))
    engine = Engine(device="cpu", adapters=folder)
    before_print, before_takes = fingerprint(engine), check_takes(engine)
    rows = []
    for style in args.style.split(","):
        clips = style_clips(Path(args.data), style, args.clips)
        name = f"{style} bench"
        t0 = time.perf_counter()
        info = studio.train_adapter(engine, name, [m for _, m, _ in clips], [c for _, _, c in clips],
                                    steps=args.steps, batch=args.batch, lr=args.lr, report=False,
                                    sources=[n for n, _, _ in clips], decoder_steps=args.decoder_steps)
        train_seconds = time.perf_counter() - t0
        picture = (Path(args.json).with_name(f"{Path(args.json).stem}_{style}.png") if args.json
                   else folder / f"{style}.png")
        t1 = time.perf_counter()
        report = measure(engine, name, [m for _, m, _ in clips], [c for _, _, c in clips], picture=picture,
                         seeds=args.seeds)
        near, rc = report["nearest_distance"], report["reconstruction_cm"]
        others = other_clips(Path(args.data), style, args.others)
        own_mm = {"default": round_trip_mm(engine, [m for _, m, _ in clips])}
        others_mm = {"default": round_trip_mm(engine, others)}
        engine.use_adapter(name)
        own_mm["adapter"], others_mm["adapter"] = round_trip_mm(engine, [m for _, m, _ in clips]), round_trip_mm(engine, others)
        engine.use_adapter("default")
        rows.append({"style": style, "clips": [{"name": n, "caption": c, "seconds": round(m.duration, 1)}
                                               for n, m, c in clips],
                     "steps": info["steps"], "train_seconds": round(train_seconds, 1),
                     "report_seconds": round(time.perf_counter() - t1, 1), "loss": info["loss"],
                     "takes_per_model": report["takes"], "nearest_distance": {"default": near["default"],
                                                                              "adapter": near[name]},
                     "nearest_distance_ratio": report["nearest_distance_ratio"],
                     "reconstruction_cm": {"default": rc["default"], "adapter": rc[name]},
                     "decoder": info["decoder"], "round_trip_mm": {"own clips": own_mm,
                                                                   f"{len(others)} test clips of other styles": others_mm},
                     "picture": str(picture)})
        print(f"{style}: {args.clips} clips, {info['steps']} steps x batch {args.batch}, trained in "
              f"{train_seconds:.0f} s; nearest-clip distance ({report['takes']} takes each) default "
              f"{near['default']:.4g}, adapter {near[name]:.4g}, ratio {report['nearest_distance_ratio']:.3f} "
              f"(target <= 0.80); middle half regenerated: {rc['default']:.2f} -> {rc[name]:.2f} cm; tokenizer round "
              f"trip of the clips {own_mm['default']} -> {own_mm['adapter']} mm, of {len(others)} other styles' test "
              f"clips {others_mm['default']} -> {others_mm['adapter']} mm", flush=True)
    engine.use_adapter("default")
    same = fingerprint(engine) == before_print
    same_takes = all(np.array_equal(a, b) for a, b in zip(before_takes, check_takes(engine)))
    print(f"default selected again: merged weights unchanged {same}, "
          f"{len(before_takes)} takes on fixed prompts and seeds bit-identical {same_takes}")
    if args.json:
        Path(args.json).write_text(json.dumps({"lr": args.lr, "batch": args.batch, "decoder_steps": args.decoder_steps,
                                               "styles": rows,
                                               "default_weights_unchanged": same,
                                               "default_takes_unchanged": same_takes}, indent=1))
        print(f"wrote {args.json}")
    return 0 if same and same_takes else 1


if __name__ == "__main__":
    sys.exit(main())
