"""Training the in-betweener (backend/models/inbetweener.py): random windows of the train split
(and their mirrors), keys at random gaps, a loss on rotations and positions."""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from backend.models.inbetweener import (
    Inbetweener,
    InbetweenerConfig,
    J,
    encode,
    known_frames,
    past_first_key,
    window_input,
)
from backend.models.kinematics import matrix_from_6d
from backend.options import option
from backend.training import checkpoint
from backend.training.loop import Loop, seeded
from backend.training.loop import run as run_loop
from backend.training.plots import save_loss_curve
from motioncore import canonical, features
from motioncore.clip import Motion
from motioncore import windows


# -- training ------------------------------------------------------------------------------
@dataclass
class InbetweenerTraining:
    steps: int = option(3000, "optimizer steps")
    batch: int = option(48, "windows per step")
    lr: float = option(5e-4, "peak learning rate")
    warmup: int = option(100, "warm-up steps")
    min_gap: int = 1
    context_dropout: float = 0.3   # share of windows shown fewer context frames (as at a first key)
    lookahead: int = option(0, "keys after a gap's end the network learns to see (0: the end key only)")
    later_share: float = option(0.6, "share of steps whose windows show keys after the gap's end (with lookahead)")
    mirror: bool = True
    seed: int = option(0, "random seed")
    threads: int = option(0, "torch threads (0: torch's choice)")
    minutes: float = option(0.0, "stop after this many minutes (0: no limit)")
    init: str = option("", "start from the in-betweener in this folder (same shape) instead of from interpolation")


def clips_at(ds, split: str, fps: float, mirror: bool) -> list[Motion]:
    """The split's clips as canonical motions at `fps` (and their mirrors)."""
    out = []
    for c in tqdm(ds.split(split), desc=f"clips ({split})", unit="clip"):
        m = features.from_features(ds.clip_features(c), canonical.MODEL_FPS).resample(fps)
        out.append(m)
        if mirror:
            out.append(m.mirror())
    return out


def sample_batch(clips: list[Motion], config: InbetweenerConfig, training: InbetweenerTraining,
                 rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(base, known, target) for `batch` windows sharing one pattern: the context, a gap, its
    key, and with lookahead (on `later_share` of steps) up to `lookahead` more keys about as far
    apart (keys every N frames, as animators set them)."""
    c = config.context
    n = rng.randint(training.min_gap, config.max_gap)
    gaps = [n]
    if config.lookahead and rng.random() < training.later_share:
        for _ in range(rng.randint(1, config.lookahead)):
            nxt = min(config.max_gap, max(1, round(n * rng.uniform(0.75, 1.25))))
            if c + sum(g + 1 for g in gaps) + nxt + 1 > Inbetweener.max_len_of(config):
                break
            gaps.append(nxt)
    ends = c - 1 + np.cumsum([g + 1 for g in gaps])  # window frames of the keys
    L = int(ends[-1]) + 1
    later = tuple(int(e) for e in ends[:-1])
    fit = [m for m in clips if m.num_frames >= L]
    bases, targets = [], []
    known = torch.from_numpy(known_frames(L, c, later)).expand(training.batch, L)
    for _ in range(training.batch):
        m = rng.choice(fit)
        s = rng.randint(0, m.num_frames - L)
        idx = np.arange(s, s + L)
        if rng.random() < training.context_dropout:  # as at a first key: fewer real context frames
            k = rng.randint(0, c - 1)
            idx[:k] = idx[k]
        window = Motion(m.skeleton, m.fps, m.root_position[idx], m.local_rotations[idx])
        turned, _, _, base = window_input(window, c, later)
        bases.append(base)
        targets.append(encode(turned))
    return torch.from_numpy(np.stack(bases)), known, torch.from_numpy(np.stack(targets))


FEET = [canonical.CANONICAL_JOINTS.index(n) for n in canonical.FEET]


def loss_of(model: Inbetweener, base, known, target) -> tuple[torch.Tensor, dict]:
    pred = model(base, known)
    # Scored: the first gap only. Keys after it are there to be read; their gaps, seen with a
    # key alone before them, are filled in windows of their own.
    gap = ~known & ~past_first_key(known)
    p_pred, p_true = model.joint_positions(pred[gap]), model.joint_positions(target[gap])
    lp = (p_pred - p_true).abs().mean()
    m_pred = matrix_from_6d(pred[gap][:, : J * 6].reshape(-1, J, 6))
    m_true = matrix_from_6d(target[gap][:, : J * 6].reshape(-1, J, 6))
    lq = (m_pred - m_true).abs().mean()
    return lp + 0.5 * lq, {"pos_m": lp.item(), "rot": lq.item()}


def position_stats(clips: list[Motion], config: InbetweenerConfig) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of joint positions as the LaFAN1 benchmark normalises L2P (windows of 50
    frames every 20, framed at the last context frame), from training clips only; kept with
    the weights as a record (`bench inbetween` computes its own from the train split's BVH)."""
    wins = [w for m in clips for w in windows.lafan_windows(m, windows.LAFAN_TRAIN_WINDOW, windows.LAFAN_TRAIN_OFFSET,
                                                          config.context - 1)]
    mean, std = windows.position_stats(wins)
    return mean, std + 1e-6


def train(ds, out: Path, config: InbetweenerConfig | None = None, training: InbetweenerTraining | None = None,
          progress: bool = True, resume: bool = True) -> tuple[Inbetweener, dict]:
    training = training or InbetweenerTraining()
    config = replace(config or InbetweenerConfig(), lookahead=training.lookahead)
    rng = seeded(training.seed, training.threads)
    clips = clips_at(ds, "train", config.fps, training.mirror)
    model = Inbetweener(config)
    if training.init:  # fine-tuning: go on from trained weights rather than from interpolation
        start = Inbetweener.from_pretrained(Path(training.init))
        if replace(start.config, lookahead=config.lookahead) != config:
            raise ValueError(f"the in-betweener in {training.init} has shape {start.config}, not {config}")
        model.load_trained(start)
    mean, std = position_stats([m for i, m in enumerate(clips) if i % 2 == 0] if training.mirror else clips, config)
    model.pos_mean.copy_(torch.from_numpy(mean).float())
    model.pos_std.copy_(torch.from_numpy(std).float())
    opt = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=1e-4)
    sched = checkpoint.warmup_cosine(opt, training.warmup, training.steps)

    def step(_: int):
        return loss_of(model, *sample_batch(clips, config, training, rng))

    loop = Loop("inbetweener", training.steps, training.seed, Path(out) / "inbetweener_checkpoint", resume,
                minutes=training.minutes, history_names={"pos_m": "position error (m)"}, progress=progress)
    run = run_loop(loop, model, opt, step, sched, rng=rng)
    result = {"steps": run.step, "train_seconds": round(run.seconds, 1), "resumed_from": run.resumed_from,
              "final_position_error_m": round(run.running.get("pos_m", math.nan), 5), "training": asdict(training)}
    model.save_pretrained(out, extra={"training": result})
    save_loss_curve(run.history, Path(out) / "inbetweener_loss.png", "in-betweener (residual over interpolation)")
    return model, result
