"""In-betweening with several keys: the pop at each key, loop seams, and the time of a
30-frame in-between, with the shipped in-betweener on the committed test clips.

    python benchmarks/inbetween_keys.py [--weights DIR]

Acceleration is the mean second difference of joint positions (m/frame^2, 30 fps). A pop shows
as acceleration at the keys well above that between them; interpolation's is the reference.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.evaluation.inbetween import loop_cut  # noqa: E402
from backend.models.inbetweener import Inbetweener  # noqa: E402
from backend.paths import default_weights_dir  # noqa: E402
from motioncore import blend, canonical, read_bvh  # noqa: E402
from motioncore.metrics import key_pop, wrap_jump  # noqa: E402

CLIPS = sorted((ROOT / "tests" / "data").glob("bandai-*/*.bvh"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None)
    args = p.parse_args()
    ib = Inbetweener.from_pretrained(Path(args.weights) if args.weights else default_weights_dir())
    clips = [canonical.to_canonical(read_bvh(c)).resample(30) for c in CLIPS]

    rows: dict[str, list[tuple[float, float]]] = {}
    for m in clips:
        for step in (8, 15, 25):
            keys = np.arange(0, m.num_frames, step)
            if len(keys) < 3:
                continue
            raw = ib.inbetween(m, keys)
            for name, out in (("real clip", m), ("interpolation", blend.interpolate_keys(m, keys)),
                              ("in-betweener", raw), ("+ matched velocities", blend.match_velocities(raw, keys))):
                rows.setdefault(name, []).append(key_pop(out, keys))
    print("acceleration (mm/frame^2)   at keys   between keys")
    for name, v in rows.items():
        at, between = np.mean(v, axis=0) * 1000
        print(f"  {name:24s} {at:8.2f} {between:12.2f}")

    print("loop seams: velocity jump across the wrap / mean acceleration")
    for path, m in zip(CLIPS, clips):
        if m.num_frames < 31:
            continue
        lm = loop_cut(m)
        keys = np.unique(np.linspace(0, lm.num_frames - 1, 3).round().astype(int))
        raw = ib.inbetween(lm, keys)
        ratios = [wrap_jump(blend.match_velocities(raw, keys, loop=loop)) for loop in (False, True)]
        print(f"  {path.stem[:34]:34s} {lm.num_frames:3d} frames: "
              f"not looped {ratios[0]:.2f}, looped {ratios[1]:.2f}")

    m = clips[[c.stem for c in CLIPS].index("dataset-2_run_normal_001")].trim(0, 41)
    keys = np.r_[np.arange(10), 40]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times = []
        for _ in range(51):
            t = time.perf_counter()
            blend.match_velocities(ib.inbetween(m, keys), keys)
            times.append(time.perf_counter() - t)
        print(f"30-frame in-between after 10 context frames, {threads} thread(s): "
              f"{statistics.median(times[1:]) * 1000:.1f} ms (median of 50; target 5 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
