"""Time to build the full dataset cache from the archives (a cold build, --force).

    python benchmarks/data_build.py [--workers N]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.data import dataset  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=None)
    args = p.parse_args()
    sources = dataset.default_sources()
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        ds, skipped, _ = dataset.build(sources, Path(cache), workers=args.workers, force=True)
        secs = time.perf_counter() - t0
    frames = len(ds.features)
    print(f"sources: {', '.join(s.name for s in sources)}")
    print(f"{len(ds.clips)} clips, {frames} frames at {dataset.canonical.MODEL_FPS:g} fps "
          f"({frames / dataset.canonical.MODEL_FPS / 3600:.2f} h), {len(skipped)} skipped")
    print(f"cold build: {secs:.1f} s ({len(ds.clips) / secs:.0f} clips/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
