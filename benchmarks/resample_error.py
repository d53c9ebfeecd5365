"""How far joints move when a clip is resampled 30 -> 24 -> 30 fps, over real clips.

    python benchmarks/resample_error.py [--data DIR_OR_ARCHIVE ...] [--limit N]

Prints the largest joint error per clip, summarised for fast clips (run, dash) and the rest.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.data.dataset import Sources, default_sources  # noqa: E402
from motioncore import bvh, canonical  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", help="folder or archive (default: the Bandai archives)")
    p.add_argument("--limit", type=int, default=0, help="stop after N clips (0: all)")
    args = p.parse_args()
    sources = Sources([Path(d) for d in args.data] if args.data else default_sources())
    errors: dict[str, list[float]] = {"fast (run, dash)": [], "other": []}
    for k, item in enumerate(sources):
        if args.limit and k >= args.limit:
            break
        m = canonical.to_canonical(bvh.bvh_from_text(item.text, item.name))
        back = m.resample(24).resample(m.fps)
        n = back.num_frames
        err = float(np.linalg.norm(back.positions() - m.positions()[:n], axis=-1).max())
        fast = "_run_" in item.name or "_dash_" in item.name
        errors["fast (run, dash)" if fast else "other"].append(err)
    print(f"{'clips':<18}{'n':>6}{'median cm':>11}{'p95 cm':>9}{'max cm':>9}{'> 1 cm':>9}")
    for name, v in errors.items():
        if v:
            a = np.array(v) * 100
            print(f"{name:<18}{len(a):>6}{np.median(a):>11.2f}{np.percentile(a, 95):>9.2f}"
                  f"{a.max():>9.2f}{(a > 1).mean():>9.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
