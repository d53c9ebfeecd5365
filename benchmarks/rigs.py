"""Real characters: how a real walk stands on each test character (tools/characters.py), as
Blender evaluates the keys. Prints, per character: what detection found, the rig's world
facing and scale, the share of upright frames, the heading error against the character's
facing, the planted feet's worst distance from the floor with and without the floor step
(share of body height), and the largest joint-rotation error of reading the keys back. Writes
a PNG strip (side and top view of each character) and the figures as JSON.

    python benchmarks/rigs.py [--out docs/rigs] [--clip PATH.bvh]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(name: str, folder: Path, clip: Path | None) -> tuple[dict, dict]:
    """(figures, what to draw) for one character."""
    import bpy
    from dynamic_pose.motioncore import canonical
    from dynamic_pose.motioncore import rotations as rot
    from dynamic_pose.motioncore.bvh import read_bvh
    from dynamic_pose.motioncore.canonical import CANONICAL_JOINTS, CANONICAL_PARENTS
    from dynamic_pose.motioncore.retarget import place
    from dynamic_pose.rig import motion_io, read

    from tools import characters

    obj = characters.build(name, folder)
    bpy.context.scene.render.fps = 30
    preset, confidence, _ = read.detection(obj)
    rt = read.retarget_for(obj)
    walk = canonical.to_canonical(read_bvh(clip)).resample(30.0) if clip else characters.walk()
    forward = characters.facing(obj, rt, 1)
    where = motion_io.standing(obj, rt, 1, 30.0)
    frames = 1 + np.arange(walk.num_frames)
    placed = place(walk, *where)
    motion_io.put_motion(obj, walk, "as is", rt, frame_start=1, fps=30.0, start="CHARACTER", floor=None)
    floating = characters.stance(obj, rt, placed, frames, forward)
    t0 = time.perf_counter()
    motion_io.put_motion(obj, walk, "walk", rt, frame_start=1, fps=30.0, start="CHARACTER", floor="AUTO")
    put_ms = 1000 * (time.perf_counter() - t0)
    st = characters.stance(obj, rt, placed, frames, forward)
    back = motion_io.take_motion(obj, rt, frames, 30.0)
    mapped = [rt.skeleton.index(j) for j in rt.joint_bone]
    err = float(rot.angle_between(back.local_rotations[:, mapped], placed.local_rotations[:, mapped]).max())
    figures = {"detected": preset, "confidence": round(confidence, 3), "facing_deg": round(float(np.degrees(rt.facing)), 1),
               "world_scale": round(rt.unit, 4), "hung_from_origin": bool(rt.hung),
               "upright": st["upright"], "heading_error_deg": round(st["heading_error_deg"], 2),
               "feet_from_floor": round(st["foot_error"], 4), "feet_from_floor_without_floor_step":
               round(floating["foot_error"], 4), "round_trip_rad": err, "frames": int(walk.num_frames),
               "put_ms": round(put_ms, 1)}
    joints = [j for j in CANONICAL_JOINTS if j in rt.joint_bone]
    heads = characters.world_heads(obj, [rt.rig.names[rt.joint_bone[j]] for j in joints], frames)
    links = []
    for j in joints:
        p = CANONICAL_PARENTS[CANONICAL_JOINTS.index(j)]
        while p >= 0 and CANONICAL_JOINTS[p] not in rt.joint_bone:
            p = CANONICAL_PARENTS[p]
        if p >= 0:
            links.append((joints.index(CANONICAL_JOINTS[p]), joints.index(j)))
    floor = rt.origin[2] if rt.hung or not rt.stands else min(
        rt.joint_pos[j][2] for j in ("Toes_L", "Toes_R", "Foot_L", "Foot_R") if j in rt.joint_pos)
    draw = {"heads": heads, "links": links, "forward": forward, "floor": floor, "height": st["height"]}
    return figures, draw


def plot(rows: list[tuple[str, dict, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(rows), figsize=(2.6 * len(rows), 6.0), squeeze=False)
    for k, (name, fig_, d) in enumerate(rows):
        heads, fwd, h = d["heads"], d["forward"], d["height"]
        side = np.array([fwd[0], fwd[1], 0.0])
        start = heads[0].mean(axis=0)
        picks = np.linspace(0, len(heads) - 1, 5).astype(int)
        ax = axes[0, k]
        for i, t in enumerate(picks):  # side view: along the facing, world up
            x = (heads[t] - start) @ side
            z = heads[t][:, 2]
            for a, b in d["links"]:
                ax.plot([x[a], x[b]], [z[a], z[b]], color=plt.cm.viridis(i / len(picks)), lw=1.2)
        ax.axhline(d["floor"], color="0.4", lw=0.8, ls="--")
        ax.set_aspect("equal")
        ax.set_title(f"{name}\nfeet {fig_['feet_from_floor']:.1%} (was {fig_['feet_from_floor_without_floor_step']:.1%})",
                     fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
        ax = axes[1, k]  # top view: the hips' path against the character's facing
        hips = heads[:, 0]
        ax.plot(hips[:, 0], hips[:, 1], color="C1", lw=1.5, label="hips")
        ax.annotate("", xy=hips[0, :2] + 0.5 * h * fwd[:2], xytext=hips[0, :2],
                    arrowprops={"arrowstyle": "->", "color": "C0"})
        for t in picks:
            ax.scatter(heads[t][:, 0], heads[t][:, 1], s=2, color="0.6")
        ax.set_aspect("equal")
        ax.set_title(f"heading off {fig_['heading_error_deg']:.1f} deg", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_ylabel("side (facing, up)")
    axes[1, 0].set_ylabel("top (arrow: facing)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "rigs", help="writes OUT.png and OUT.json")
    parser.add_argument("--clip", type=Path, help="a BVH clip to put on every character (default: the test walk)")
    args = parser.parse_args(argv)
    from tools.addon_import import import_addon
    from tools.characters import CHARACTERS

    import_addon()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in CHARACTERS:
            figures, draw = measure(name, Path(tmp) / name, args.clip)
            rows.append((name, figures, draw))
    print(f"{'character':18s} {'detected':14s} {'conf':>5s} {'facing':>7s} {'scale':>7s} {'upright':>7s} "
          f"{'heading':>8s} {'feet':>6s} {'no step':>7s} {'round trip':>10s}")
    for name, f, _ in rows:
        print(f"{name:18s} {f['detected']:14s} {f['confidence']:5.2f} {f['facing_deg']:7.1f} {f['world_scale']:7.3g} "
              f"{f['upright']:7.0%} {f['heading_error_deg']:7.1f}d {f['feet_from_floor']:6.1%} "
              f"{f['feet_from_floor_without_floor_step']:7.1%} {f['round_trip_rad']:10.1e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({n: f for n, f, _ in rows}, indent=1))
    plot(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.png')} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
