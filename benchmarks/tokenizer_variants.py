"""The tokenizer variants trained on one budget, side by side: reconstruction, code use, size,
tokens per second and encode + decode time on the test split.

    for v in "vq --quantizer vq" "lfq --quantizer lfq" "dual --encoder dual" \
             "lfq2d --quantizer lfq --layout 2d --width 64"; do
        set -- $v; name=$1; shift
        dynamicpose train tokenizer "$@" --steps 1000 --threads 1 --out out/seeds/$name --restart
    done
    python benchmarks/tokenizer_variants.py out/seeds/vq out/seeds/lfq out/seeds/dual out/seeds/lfq2d

Times are medians of alternating rounds (one thread), so the machine's noise falls on all alike.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.data import dataset  # noqa: E402
from backend.models.tokenizer import MotionTokenizer  # noqa: E402
from motioncore import canonical  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="trained tokenizer folders (train tokenizer --out)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--clips", type=int, default=40, help="test clips timed per round")
    args = p.parse_args()
    torch.set_num_threads(1)
    ds = dataset.load()
    feats = [ds.clip_features(c) for c in ds.split("test")[: args.clips]]
    models = {Path(f).name: MotionTokenizer.from_pretrained(Path(f)).eval() for f in args.folders}
    times: dict[str, list[float]] = {n: [] for n in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            t0 = time.perf_counter()
            for f in feats:
                model.decode(model.encode(f))
            times[name].append((time.perf_counter() - t0) / len(feats))
    print("| variant | val MPJPE (mm) | test MPJPE (mm) | codes used (test) | perplexity | parameters "
          "| tokens / s | encode + decode (ms / clip) | training (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for folder, (name, model) in zip(args.folders, models.items()):
        r = json.loads((Path(folder) / "tokenizer_metrics.json").read_text())
        c = model.config
        label = f"{name} ({c.quantizer}, {c.layout}, {c.encoder}, width {c.width})"
        rate = canonical.MODEL_FPS / c.down * c.tokens_per_step
        params = sum(p.numel() for p in model.parameters())
        print(f"| {label} | {r['val']['mpjpe_mm']} | {r['test']['mpjpe_mm']} | {r['test']['codebook_used']} / "
              f"{r['test']['codebook_size']} | {r['test']['perplexity']} | {params / 1e6:.2f}M | {rate:g} "
              f"| {1000 * float(np.median(times[name])):.2f} | {r['train_seconds']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
