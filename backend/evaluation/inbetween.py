"""`dynamicpose bench inbetween`: the LaFAN1 in-betweening protocol (Harvey et al. 2020).

As the benchmark's own code computes it (ubisoft-laforge-animation-dataset, `extract.py` and
`benchmarks.py`): test windows of 65 frames every 40 frames at 30 fps, training windows of 50
every 20 for the statistics; each window moved so its mean root XY is at the origin, then
turned about it to face -Y at its last context frame (`windows.face_forward_about_mean`).
10 context frames; the target key at frame 10 + n for n in 5, 15, 30, 45; the n frames between
are predicted. L2P: global positions normalised per coordinate by the training windows' mean
and standard deviation; L2Q: global quaternions; NPSS: normalised power spectrum similarity
of the global quaternions; each averaged over the predicted frames and windows. Baselines from
the same windows: zero velocity (hold the last context frame) and interpolation (slerp local
rotations, lerp the root).

One departure, for L2Q only: a learned model's quaternions come from rotation matrices and
carry no sign, so each predicted quaternion is taken on the ground truth's hemisphere (q and
-q are one rotation); the baselines' quaternions already are, so their rows are unchanged.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from motioncore import blend, canonical
from motioncore import rotations as rot
from motioncore.bvh import read_bvh
from motioncore.clip import Motion
from motioncore.windows import LAFAN_TRAIN_OFFSET, LAFAN_TRAIN_WINDOW, lafan_windows, position_stats

FPS = 30.0
WINDOW, OFFSET, CONTEXT = 65, 40, 10
GAPS = (5, 15, 30, 45)


def clips_from_dir(folder: Path) -> Iterator[tuple[str, Motion]]:
    """Canonical motions at 30 fps from every BVH under `folder` (others are skipped with a note)."""
    for path in sorted(Path(folder).rglob("*.bvh")):
        try:
            m = canonical.to_canonical(read_bvh(path))
        except ValueError as e:
            print(f"skipped {path}: {e}")
            continue
        yield path.stem, m if abs(m.fps - FPS) < 1e-6 else m.resample(FPS)


def clips_from_split(split: str, cache: Path | None = None) -> Iterator[tuple[str, Motion]]:
    """The dataset split, re-read from its BVH sources at their own 30 fps (not the 20 fps cache)."""
    from backend.data import dataset

    wanted = {c.name for c in dataset.load(cache).split(split)}
    for item in dataset.Sources(dataset.default_sources()):
        if item.name in wanted:
            from motioncore.bvh import bvh_from_text

            m = canonical.to_canonical(bvh_from_text(item.text, item.name))
            yield item.name, m if abs(m.fps - FPS) < 1e-6 else m.resample(FPS)


def windows(clips: Iterator[tuple[str, Motion]], limit: int = 0) -> list[Motion]:
    """The test windows (65 frames every 40), at most `limit` (0: all)."""
    out: list[Motion] = []
    for _, m in clips:
        out += lafan_windows(m, WINDOW, OFFSET, CONTEXT - 1)
        if limit and len(out) >= limit:
            return out[:limit]
    return out


def train_stats(clips: Iterator[tuple[str, Motion]]) -> tuple[np.ndarray, np.ndarray]:
    """The L2P normalisation from training clips: (J, 3) mean and std of world joint positions
    over every frame of their windows of 50 frames every 20."""
    wins = [w for _, m in clips for w in lafan_windows(m, LAFAN_TRAIN_WINDOW, LAFAN_TRAIN_OFFSET, CONTEXT - 1)]
    if not wins:
        raise ValueError(f"no training clip has more than {LAFAN_TRAIN_WINDOW} frames for the L2P statistics")
    return position_stats(wins)


def loop_cut(motion: Motion, shortest: int = 15) -> Motion:
    """A real clip made a loop, for measuring seams: cut at the frame (at least `shortest` in)
    whose pose is nearest the first, that frame given the first pose (and its root height)."""
    q = motion.local_rotations
    t = shortest + int(np.argmin([rot.angle_between(q[k], q[0]).mean() for k in range(shortest, motion.num_frames)]))
    cut = motion.trim(0, t + 1)
    lq, lp = cut.local_rotations.copy(), cut.root_position.copy()
    lq[-1], lp[-1, 2] = lq[0], lp[0, 2]
    return Motion(cut.skeleton, cut.fps, lp, lq)


def zero_velocity(window: Motion) -> Motion:
    n = window.num_frames - CONTEXT - 1
    idx = np.concatenate([np.arange(CONTEXT), np.full(n, CONTEXT - 1), [window.num_frames - 1]])
    return Motion(window.skeleton, window.fps, window.root_position[idx], window.local_rotations[idx])


def interpolation(window: Motion) -> Motion:
    return blend.interpolate_keys(window, np.array([CONTEXT - 1, window.num_frames - 1]))


def npss(gt: np.ndarray, pred: np.ndarray) -> float:
    """(N, T, F) ground truth and prediction -> normalised power spectrum similarity."""
    gt_power = np.abs(np.fft.fft(gt, axis=1)) ** 2
    pred_power = np.abs(np.fft.fft(pred, axis=1)) ** 2
    gt_total = gt_power.sum(axis=1, keepdims=True)
    pred_total = pred_power.sum(axis=1, keepdims=True)
    gt_cdf = np.cumsum(gt_power / np.maximum(gt_total, 1e-12), axis=1)
    pred_cdf = np.cumsum(pred_power / np.maximum(pred_total, 1e-12), axis=1)
    emd = np.abs(gt_cdf - pred_cdf).sum(axis=1)
    weights = gt_total[:, 0]
    return float((emd * weights).sum() / max(weights.sum(), 1e-12))


def measure(wins: list[Motion], method: Callable[[Motion], Motion], mean: np.ndarray, std: np.ndarray) -> dict:
    """L2Q, L2P, NPSS per gap and seconds per transition for one method."""
    out: dict = {"L2Q": {}, "L2P": {}, "NPSS": {}}
    seconds, count = 0.0, 0
    for n in GAPS:
        gq, pq, gp, pp = [], [], [], []
        for w in wins:
            part = w.trim(0, CONTEXT + n + 1)
            t0 = time.perf_counter()
            pred = method(part)
            seconds += time.perf_counter() - t0
            count += 1
            (g_rot, g_pos), (p_rot, p_pos) = part.world(), pred.world()
            sl = slice(CONTEXT, CONTEXT + n)
            g, p = g_rot[sl], p_rot[sl]
            p = np.where(np.sum(g * p, axis=-1, keepdims=True) < 0, -p, p)  # q and -q are one rotation
            gq.append(g)
            pq.append(p)
            gp.append((g_pos[sl] - mean) / std)
            pp.append((p_pos[sl] - mean) / std)
        gq, pq, gp, pp = (np.stack(a) for a in (gq, pq, gp, pp))
        out["L2Q"][str(n)] = float(np.mean(np.sqrt(np.sum((pq - gq) ** 2, axis=(2, 3)))))
        out["L2P"][str(n)] = float(np.mean(np.sqrt(np.sum((pp - gp) ** 2, axis=(2, 3)))))
        out["NPSS"][str(n)] = npss(gq.reshape(len(wins), n, -1), pq.reshape(len(wins), n, -1))
    out["seconds_per_transition"] = seconds / max(count, 1)
    return out


def run(wins: list[Motion], model, stats: tuple[np.ndarray, np.ndarray],
        extra: dict[str, Callable[[Motion], Motion]] | None = None) -> dict:
    """Every method's figures on the test windows, `stats` from `train_stats`; `model` None
    measures the baselines alone."""
    mean, std = stats
    methods = {**({"model": model.fill_window} if model is not None else {}),
               "zero_velocity": zero_velocity, "interpolation": interpolation, **(extra or {})}
    result = {name: measure(wins, fn, mean, std) for name, fn in methods.items()}
    result["windows"] = len(wins)
    return result


def table(result: dict) -> str:
    rows = [f"{'':16s}" + "".join(f"{m}@{n:<5d}" for m in ("L2Q", "L2P", "NPSS") for n in GAPS) + "  s/transition"]
    for name, r in result.items():
        if name == "windows":
            continue
        rows.append(f"{name:16s}" + "".join(f"{r[m][str(n)]:<10.4f}"[:10] for m in ("L2Q", "L2P", "NPSS") for n in GAPS)
                    + f"  {r['seconds_per_transition']:.4f}")
    interp = result["interpolation"]["L2P"]["30"]
    rows.append(f"windows: {result['windows']}; model L2P@30 / interpolation L2P@30 = "
                f"{result['model']['L2P']['30'] / interp:.2f} (published on LaFAN1: Delta-interpolator 0.43, "
                "two-stage transformer 0.39)")
    return "\n".join(rows)
