"""The animator's question (`dynamicpose bench keys`): given keys on a held-out capture, how
close do the frames between come back - the engine, Blender's own curves through the same keys
(auto-clamped Bezier, evaluated by bpy's FCurve.evaluate), and slerp between the keys
(motioncore.blend.interpolate_keys)?

Keys every N frames (N = 5 ... 120) over each clip's first MAX_FRAMES frames, and two keys only
(a window of N frames between two keys). Figures on the frames between keys: mean joint
position error (cm); foot sliding (metrics.foot_skating, cm/frame at 30 fps) beside the
capture's on the same frames; the velocity jump at keys (cm/frame, mean over joints and keys).
Needs the `bpy` module (Blender's own curves); clips at 30 fps."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from motioncore import blend, footlock, metrics
from motioncore import rotations as rot
from motioncore.clip import Motion

GAPS = (5, 10, 20, 30, 45, 60, 90, 120)  # past 60 the motion LM fills the gap
MAX_FRAMES = 240      # of each clip, for keys every N
FPS = 30.0


def bezier(motion: Motion, keys: list[int]) -> Motion:
    """The keyed frames of `motion` on Blender f-curves (one per root and quaternion channel,
    auto-clamped Bezier, as keys inserted in Blender get), evaluated at every frame."""
    import bpy

    action = bpy.data.actions.new("dp-bench-keys")
    try:
        # Blender 5.0 keeps curves in an action's channelbag; a fresh slot-less action takes
        # them through the legacy fcurves collection on 4.2/4.3 only, so build one either way.
        from bpy_extras import anim_utils

        slot = action.slots.new(id_type="OBJECT", name="bench") if hasattr(action, "slots") else None
        bag = (anim_utils.action_ensure_channelbag_for_slot(action, slot) if slot is not None
               and hasattr(anim_utils, "action_ensure_channelbag_for_slot") else action)
        q = rot.make_continuous(motion.local_rotations)
        values = [motion.root_position[:, i] for i in range(3)] + [q[:, j, i] for j in range(q.shape[1]) for i in range(4)]
        k = np.asarray(keys, dtype=float)
        out = np.empty((motion.num_frames, len(values)))
        frames = np.arange(motion.num_frames, dtype=float)
        for c, v in enumerate(values):
            fc = bag.fcurves.new(f"v{c}", index=0)
            fc.keyframe_points.add(len(k))
            co = np.empty(2 * len(k), dtype=np.float32)
            co[0::2], co[1::2] = k, v[keys]
            fc.keyframe_points.foreach_set("co", co)
            for p in fc.keyframe_points:
                p.handle_left_type = p.handle_right_type = "AUTO_CLAMPED"
            fc.update()
            out[:, c] = [fc.evaluate(f) for f in frames]
    finally:
        bpy.data.actions.remove(action)
    quats = rot.normalize(out[:, 3:].reshape(motion.num_frames, -1, 4))
    return Motion(motion.skeleton, motion.fps, out[:, :3], quats)


def _figures(truth: Motion, filled: Motion, free: np.ndarray, keys: list[int]) -> tuple[float, float, float]:
    p, t = filled.positions(), truth.positions()
    error = 100 * float(np.linalg.norm(p[free] - t[free], axis=-1).mean())
    inner = filled.trim(max(0, int(free.min()) - 1), min(filled.num_frames, int(free.max()) + 2))
    sliding = 100 * metrics.foot_skating(inner) / filled.fps
    inside = [k for k in keys if 0 < k < filled.num_frames - 1]
    jump = 100 * float(np.mean([np.linalg.norm((p[k + 1] - p[k]) - (p[k] - p[k - 1]), axis=-1).mean()
                                for k in inside])) if inside else float("nan")
    return error, sliding, jump


def run(engine, clips: Iterable[tuple[str, Motion]], gaps=GAPS, limit: int = 0) -> dict:
    """{mode: {gap: {method: {error_cm, sliding_cm_per_frame, jump_cm_per_frame}}}} over the
    clips (each at 30 fps), for the engine (in-betweener, or the LM's infill past its gap),
    Blender's Bezier and slerp; the capture's own sliding beside them."""
    sums: dict = {}
    counts: dict = {}
    used = 0
    for _, clip in clips:
        if limit and used >= limit:
            break
        used += 1
        clip = clip.trim(0, min(clip.num_frames, MAX_FRAMES))
        for gap in gaps:
            cases = []
            if clip.num_frames >= gap + 2:
                keys = list(range(0, clip.num_frames, gap + 1))
                if keys[-1] != clip.num_frames - 1 and clip.num_frames - 1 - keys[-1] > 1:
                    keys.append(clip.num_frames - 1)
                cases.append(("keys every N", clip, keys))
                mid = (clip.num_frames - gap - 2) // 2
                cases.append(("two keys", clip.trim(mid, mid + gap + 2), [0, gap + 1]))
            for mode, m, keys in cases:
                free = np.setdiff1d(np.arange(m.num_frames), keys)
                if free.size == 0:
                    continue
                filled = engine.inbetween(m, keys)
                methods = {"engine": filled, "engine, feet locked": footlock.lock_feet(filled, fixed=keys),
                           "bezier": bezier(m, keys), "slerp": blend.interpolate_keys(m, np.asarray(keys))}
                for name, filled in methods.items():
                    row = _figures(m, filled, free, keys)
                    acc = sums.setdefault(mode, {}).setdefault(gap, {}).setdefault(name, np.zeros(3))
                    acc += np.nan_to_num(np.array(row))
                    counts.setdefault(mode, {}).setdefault(gap, {}).setdefault(name, 0)
                    counts[mode][gap][name] += 1
                capture = sums[mode][gap].setdefault("capture", np.zeros(3))
                capture += [0.0, _figures(m, m, free, keys)[1], 0.0]
                counts[mode][gap]["capture"] = counts[mode][gap].get("capture", 0) + 1
    out = {"clips": used, "fps": FPS}
    for mode, by_gap in sums.items():
        out[mode] = {str(g): {name: dict(zip(("error_cm", "sliding_cm_per_frame", "jump_cm_per_frame"),
                                             (round(float(v), 3) for v in acc / counts[mode][g][name])))
                              for name, acc in by_method.items()} for g, by_method in sorted(by_gap.items())}
    return out


def table(result: dict) -> str:
    lines = [f"{result['clips']} clips at 30 fps; error (cm) on the frames between keys, engine / Bezier / slerp "
             "(engine : Bezier); foot sliding (cm/frame) engine / engine with feet locked (the add-on's default) / "
             "Bezier / capture; velocity jump at inner keys (cm/frame) engine / Bezier"]
    for mode in ("keys every N", "two keys"):
        lines.append(f"\n{mode}:")
        for gap, row in result.get(mode, {}).items():
            e, b, lin, cap = (row[k] for k in ("engine", "bezier", "slerp", "capture"))
            locked = row["engine, feet locked"]
            jump = (f"   jump {e['jump_cm_per_frame']:.2f} / {b['jump_cm_per_frame']:.2f}" if mode != "two keys" else "")
            lines.append(f"  gap {gap:>2}: {e['error_cm']:.2f} / {b['error_cm']:.2f} / {lin['error_cm']:.2f} cm  "
                         f"({e['error_cm'] / max(b['error_cm'], 1e-9):.2f}x)   sliding {e['sliding_cm_per_frame']:.2f}"
                         f" / {locked['sliding_cm_per_frame']:.2f} / {b['sliding_cm_per_frame']:.2f}"
                         f" / {cap['sliding_cm_per_frame']:.2f}{jump}")
    return "\n".join(lines)


def plot(result: dict, path) -> None:
    from backend.figures import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, mode in zip(axes, ("keys every N", "two keys")):
        rows = result.get(mode, {})
        gaps = [int(g) for g in rows]
        for name, style in (("engine", "o-"), ("bezier", "s--"), ("slerp", "^:")):
            ax.plot(gaps, [rows[str(g)][name]["error_cm"] for g in gaps], style, label=name)
        ax.set_title(f"{mode} (held-out clips, 30 fps)")
        ax.set_xlabel("frames between keys")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean joint error between keys (cm)")
    axes[0].legend()
    save_figure(fig, path)


def test_split_clips(cache=None):
    """The test split at 30 fps from its BVH sources (as `bench inbetween` reads it)."""
    from backend.evaluation.inbetween import clips_from_split

    return clips_from_split("test", cache)

