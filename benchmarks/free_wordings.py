"""Which free wordings a generator misreads: content accuracy per prompt over several seeds, on
the out-of-template list that `eval t2m` reports and on a second list kept apart for choosing
between training runs (so the first stays a test). Each prompt runs as long as the length
estimator reads from it, as in `eval t2m`; no dataset is needed.

    python benchmarks/free_wordings.py [--weights DIR] [--seeds 5] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.data.prompts import FIRST_LIST, OUT_OF_TEMPLATE  # noqa: E402
from backend.engine import Engine  # noqa: E402
from backend.models.evaluator import Evaluator  # noqa: E402
from backend.paths import default_weights_dir  # noqa: E402
from motioncore import canonical, features  # noqa: E402

# Written apart from OUT_OF_TEMPLATE, for choosing between runs; (prompt, content, style).
CHOOSING = [
    ("a man wanders along the pavement", "walk", "normal"),
    ("a weary grandma hobbles ahead", "walk", "elderly"),
    ("a cheery woman bops along", "walk", "happy"),
    ("a soldier paces onward", "walk", "masculine"),
    ("a girl sprints off down the road", "run", "youthful"),
    ("a man legs it ahead", "run", "normal"),
    ("a worn runner labours on at a trot", "run", "exhausted"),
    ("an eager kid zooms ahead", "run", "youthful"),
    ("someone rounds a bend to the left", "walk-turn-left", "normal"),
    ("a slow old man arcs off to his left", "walk-turn-left", "elderly"),
    ("a walker bears left", "walk-turn-left", "normal"),
    ("someone rounds a bend to the right", "walk-turn-right", "normal"),
    ("a walker bears right along the path", "walk-turn-right", "normal"),
    ("a kid zigzags off towards the right", "walk-turn-right", "youthful"),
    ("someone flaps both hands at a passing bus", "wave-both-hands", "normal"),
    ("a fan waggles both arms at the stage", "wave-both-hands", "active"),
    ("an old lady signals hi using her left palm", "wave-left-hand", "elderly"),
    ("a girl wiggles her left hand at her mum", "wave-left-hand", "youthful"),
    ("a man signals hi using his right palm", "wave-right-hand", "normal"),
    ("a weary man wiggles his right hand at a friend", "wave-right-hand", "exhausted"),
    ("a kid shoots up the left hand in class", "raise-up-left-hand", "youthful"),
    ("a woman elevates her left arm", "raise-up-left-hand", "feminine"),
    ("a man sticks his right arm straight up", "raise-up-right-hand", "normal"),
    ("a bidder hoists the right hand at the auction", "raise-up-right-hand", "normal"),
    ("a robbery victim puts both hands high", "raise-up-both-hands", "normal"),
    ("a fan stretches both arms skyward in triumph", "raise-up-both-hands", "active"),
    ("a tired person holds both arms overhead", "raise-up-both-hands", "exhausted"),
    ("an old man elevates both arms", "raise-up-both-hands", "elderly"),
]


def read(engine: Engine, ev: Evaluator, prompts, seeds: int) -> dict:
    """Accuracy per seed and, per prompt, the contents read from its clips."""
    texts = [p for p, _, _ in prompts]
    longest = ev.config.max_frames / canonical.MODEL_FPS
    seconds = [min(engine.length_for(p), longest) for p in texts]
    read_as = collections.defaultdict(list)
    for seed in tqdm(range(seeds), desc="seeds", unit="seed"):
        feats = [features.to_features(engine.generate(p, s, seed=seed * 1000 + k, fps=canonical.MODEL_FPS)[0])
                 for k, (p, s) in enumerate(zip(texts, seconds))]
        content, _ = ev.classify(ev.embed_motions(feats))
        for p, c in zip(texts, content):
            read_as[p].append(c)
    right = np.array([[c == want for c in read_as[p]] for p, want, _ in prompts])  # (prompts, seeds)
    misread = {p: collections.Counter(read_as[p]).most_common(2) for p, want, _ in prompts
               if read_as[p].count(want) < seeds / 2}
    return {"content_accuracy": round(float(right.mean()), 4),
            "per_seed": [round(float(a), 3) for a in right.mean(0)], "right": right, "misread": misread}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", help="generator folder (default: weights/default)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    if args.seeds < 1:
        ap.error("--seeds must be at least 1")
    engine = Engine(Path(args.weights) if args.weights else None, device=args.device)
    ev = Evaluator.from_pretrained(default_weights_dir() / "evaluator")
    out = {}
    for name, prompts in (("out_of_template", OUT_OF_TEMPLATE), ("choosing", CHOOSING)):
        r = read(engine, ev, prompts, args.seeds)
        right = r.pop("right")
        if name == "out_of_template":
            r["first_list"] = round(float(right[:FIRST_LIST].mean()), 4)
            r["later_list"] = round(float(right[FIRST_LIST:].mean()), 4)
        out[name] = r
        print(f"{name}: content {r['content_accuracy']:.3f} over {args.seeds} seeds "
              + (f"(first {FIRST_LIST}: {r['first_list']:.3f}, later: {r['later_list']:.3f})" if "first_list" in r else ""))
        for prompt, counts in r["misread"].items():
            print(f"  {prompt!r} read as " + ", ".join(f"{c} {n}/{args.seeds}" for c, n in counts))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
