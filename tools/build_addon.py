"""Build the installable extension zip with Blender's own builder (from the bpy wheel):
`python -m tools.build_addon [--out DIR]` validates the manifest and writes
DIR/dynamic_pose-VERSION.zip (default out/)."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def blender_ext() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise SystemExit("the bpy module is not installed here (pip install bpy==5.0.1)")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise SystemExit("Blender's extension builder (bl_pkg/cli/blender_ext.py) is missing from bpy")
    return found[-1]


def build(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    tool = str(blender_ext())
    for cmd in (["validate", str(ROOT)], ["build", "--source-dir", str(ROOT), "--output-dir", str(out)]):
        run = subprocess.run([sys.executable, tool, *cmd], capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"blender_ext {cmd[0]} failed:\n{run.stdout}{run.stderr}")
    return max(out.glob("dynamic_pose-*.zip"), key=lambda p: p.stat().st_mtime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "out"))
    print(build(Path(parser.parse_args().out)))


if __name__ == "__main__":
    main()
