"""The in-betweener: a small transformer that predicts the residual over interpolation.

Given context frames and a target key, interpolation (slerp on local rotations, lerp on the
root) is a strong start; the network only adds what interpolation misses (the dip of a step, the
swing of an arm), as the Delta-interpolator and two-stage transformer do. Known frames pass
through untouched, so keys stay exact. Windows are seen from the last context frame (re-centred,
facing -Y), so the network learns one way round. Trained on the dataset's train split at 30 fps.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from motioncore import blend, canonical, features
from motioncore import rotations as rot
from motioncore.clip import Motion
from motioncore.windows import face_forward, restore

from . import checkpoint, weights_file
from .kinematics import matrix_from_6d, positions

FORMAT_VERSION = 1
J = len(canonical.CANONICAL_JOINTS)
FRAME = J * 6 + 3  # 6D local rotations, then the root position


@dataclass
class InbetweenerConfig:
    context: int = 10       # frames before the gap the network sees
    max_gap: int = 60       # longest gap it fills (frames); longer gaps are left to the motion LM
    fps: float = 30.0
    width: int = 128
    layers: int = 4
    heads: int = 4

    def __post_init__(self) -> None:
        if self.context < 1 or self.max_gap < 1 or self.width % self.heads:
            raise ValueError("context and max_gap must be >= 1, width a multiple of heads")


def encode(motion: Motion) -> np.ndarray:
    """(T, FRAME) float32: 6D local rotations and root position."""
    T = motion.num_frames
    return np.concatenate([rot.to_6d(motion.local_rotations).reshape(T, -1), motion.root_position],
                          axis=1).astype(np.float32)


def decode(x: np.ndarray, fps: float) -> Motion:
    T = x.shape[0]
    q = rot.from_6d(x[:, : J * 6].reshape(T, J, 6).astype(float))
    return Motion(canonical.canonical_skeleton(), fps, x[:, J * 6:].astype(float), rot.make_continuous(q))


def window_input(window: Motion, context: int) -> tuple[Motion, np.ndarray, float, np.ndarray]:
    """A window [context frames, gap, target key] seen from its last context frame ->
    (turned window, xy, yaw, interpolation baseline (L, FRAME))."""
    turned, xy, yaw = face_forward(window, context - 1)
    base = blend.interpolate_keys(turned, np.array([context - 1, window.num_frames - 1]))
    # Context frames are known; interpolate_keys holds them at the first key, put them back.
    known = np.concatenate([encode(turned)[:context], encode(base)[context:-1], encode(turned)[-1:]])
    return turned, xy, yaw, known


class Inbetweener(weights_file.Stored, nn.Module):
    stem, config_class, format_version, what = "inbetweener", InbetweenerConfig, FORMAT_VERSION, "in-betweener"
    unstored = ('offsets',)  # the skeleton offsets come from the config, not from training

    def __init__(self, config: InbetweenerConfig):
        super().__init__()
        self.config = config
        d = config.width
        self.max_len = config.context + config.max_gap + 1
        self.inp = nn.Linear(FRAME + 2, d)  # frame, known flag, position within the gap
        self.pos = nn.Parameter(torch.zeros(self.max_len, d))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d, config.heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.trunk = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.out = nn.Linear(d, FRAME)
        nn.init.zeros_(self.out.weight)  # start as interpolation
        nn.init.zeros_(self.out.bias)
        self.register_buffer("offsets", torch.tensor(canonical.canonical_skeleton().offsets, dtype=torch.float32))
        self.register_buffer("pos_mean", torch.zeros(J, 3))
        self.register_buffer("pos_std", torch.ones(J, 3))

    def forward(self, base: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """base (B, L, FRAME) interpolation with known frames in place, known (B, L) bool ->
        (B, L, FRAME): known frames unchanged, the rest base + predicted residual."""
        B, L, _ = base.shape
        gap = (~known).float()
        t = torch.cumsum(gap, dim=1) / gap.sum(1, keepdim=True).clamp(min=1) * gap
        h = self.inp(torch.cat([base, known.float()[..., None], t[..., None]], dim=-1)) + self.pos[:L]
        residual = self.out(self.trunk(h))
        return torch.where(known[..., None], base, base + residual)

    def joint_positions(self, x: torch.Tensor) -> torch.Tensor:
        return positions(x[..., : J * 6].reshape(*x.shape[:-1], J, 6), x[..., J * 6:], self.offsets)

    # -- use -------------------------------------------------------------------------------
    @torch.no_grad()
    def fill_window(self, window: Motion) -> Motion:
        """Frames [context, L - 1) of the window predicted from the context and the last frame."""
        c = self.config.context
        turned, xy, yaw, base = window_input(window, c)
        known = torch.zeros(1, window.num_frames, dtype=torch.bool)
        known[0, :c] = known[0, -1] = True
        out = self(torch.from_numpy(base)[None], known)[0].numpy()
        return restore(decode(out, window.fps), xy, yaw)

    @torch.no_grad()
    def inbetween(self, motion: Motion, keys: np.ndarray) -> Motion:
        """Every frame of `motion` not in `keys` filled gap by gap (each gap sees up to `context`
        frames before it, already filled ones included); keyed frames exact. Gaps longer than
        max_gap are interpolated; frames outside the first and last key hold those keys."""
        keys = np.unique(np.asarray(keys, dtype=int))
        if abs(motion.fps - self.config.fps) > 1e-6:
            return _resampled(self, motion, keys)
        out = blend.interpolate_keys(motion, keys)
        root, local = out.root_position.copy(), out.local_rotations.copy()
        c = self.config.context
        for a, b in zip(keys[:-1], keys[1:]):
            n = b - a - 1
            if n < 1 or n > self.config.max_gap:
                continue
            have = min(c, a + 1)
            idx = np.concatenate([np.full(c - have, a - have + 1), np.arange(a - have + 1, a + 1), np.arange(a + 1, b + 1)])
            cur = Motion(out.skeleton, motion.fps, root, local)
            window = Motion(out.skeleton, motion.fps, cur.root_position[idx], cur.local_rotations[idx])
            filled = self.fill_window(window)
            root[a + 1: b], local[a + 1: b] = filled.root_position[c: c + n], filled.local_rotations[c: c + n]
        result = Motion(out.skeleton, motion.fps, root, rot.make_continuous(local))
        return blend.pin_to_keys(result, motion, keys)



def _resampled(model: Inbetweener, motion: Motion, keys: np.ndarray) -> Motion:
    """In-between at the model's fps, back at the motion's own; keys exact at the original frames."""
    fps = model.config.fps
    m = motion.resample(fps)
    scaled = np.unique(np.clip(np.round(keys * fps / motion.fps).astype(int), 0, m.num_frames - 1))
    filled = model.inbetween(m, scaled).resample(motion.fps)
    return blend.pin_to_keys(filled.fit(motion.num_frames), motion, keys)


# -- training ------------------------------------------------------------------------------
@dataclass
class InbetweenerTraining:
    steps: int = 3000
    batch: int = 48
    lr: float = 5e-4
    warmup: int = 100
    min_gap: int = 1
    context_dropout: float = 0.3   # share of windows shown fewer context frames (as at a first key)
    mirror: bool = True
    seed: int = 0
    threads: int = 0
    minutes: float = 0.0


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
    """(base, known, target) for `batch` windows sharing one gap length."""
    c = config.context
    n = rng.randint(training.min_gap, config.max_gap)
    L = c + n + 1
    fit = [m for m in clips if m.num_frames >= L]
    bases, targets = [], []
    known = torch.zeros(training.batch, L, dtype=torch.bool)
    known[:, :c] = known[:, -1] = True
    for _ in range(training.batch):
        m = rng.choice(fit)
        s = rng.randint(0, m.num_frames - L)
        idx = np.arange(s, s + L)
        if rng.random() < training.context_dropout:  # as at a first key: fewer real context frames
            k = rng.randint(0, c - 1)
            idx[:k] = idx[k]
        window = Motion(m.skeleton, m.fps, m.root_position[idx], m.local_rotations[idx])
        turned, _, _, base = window_input(window, c)
        bases.append(base)
        targets.append(encode(turned))
    return torch.from_numpy(np.stack(bases)), known, torch.from_numpy(np.stack(targets))


def loss_of(model: Inbetweener, base, known, target) -> tuple[torch.Tensor, dict]:
    pred = model(base, known)
    gap = ~known
    p_pred, p_true = model.joint_positions(pred[gap]), model.joint_positions(target[gap])
    lp = (p_pred - p_true).abs().mean()
    m_pred = matrix_from_6d(pred[gap][:, : J * 6].reshape(-1, J, 6))
    m_true = matrix_from_6d(target[gap][:, : J * 6].reshape(-1, J, 6))
    lq = (m_pred - m_true).abs().mean()
    return lp + 0.5 * lq, {"pos_m": lp.item(), "rot": lq.item()}


def position_stats(clips: list[Motion], config: InbetweenerConfig, windows: int = 2000, seed: int = 0):
    """Mean and std of joint positions in windows seen from their last context frame (the L2P
    normalisation of the LaFAN1 protocol, from training data only)."""
    rng = random.Random(seed)
    L = config.context + 45 + 1
    fit = [m for m in clips if m.num_frames >= L]
    pos = []
    for _ in range(windows):
        m = rng.choice(fit)
        s = rng.randint(0, m.num_frames - L)
        w = m.trim(s, s + L)
        pos.append(face_forward(w, config.context - 1)[0].positions())
    pos = np.concatenate(pos)
    return pos.mean(0), pos.std(0) + 1e-6


def train(ds, out: Path, config: InbetweenerConfig | None = None, training: InbetweenerTraining | None = None,
          progress: bool = True) -> tuple[Inbetweener, dict]:
    config, training = config or InbetweenerConfig(), training or InbetweenerTraining()
    if training.threads:
        torch.set_num_threads(training.threads)
    torch.manual_seed(training.seed)
    rng = random.Random(training.seed)
    clips = clips_at(ds, "train", config.fps, training.mirror)
    model = Inbetweener(config)
    mean, std = position_stats([m for i, m in enumerate(clips) if i % 2 == 0] if training.mirror else clips, config)
    model.pos_mean.copy_(torch.from_numpy(mean).float())
    model.pos_std.copy_(torch.from_numpy(std).float())
    opt = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=1e-4)
    sched = checkpoint.warmup_cosine(opt, training.warmup, training.steps)
    history: dict[str, list] = {"position error (m)": []}
    run = None
    t0 = time.perf_counter()
    bar = tqdm(range(training.steps), desc="inbetweener", unit="step", disable=not progress)
    step = 0
    for step in bar:
        if training.minutes and time.perf_counter() - t0 > 60 * training.minutes:
            bar.write(f"stopping at step {step}: the {training.minutes} minute budget is spent")
            break
        loss, logs = loss_of(model, *sample_batch(clips, config, training, rng))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        run = logs["pos_m"] if run is None else 0.98 * run + 0.02 * logs["pos_m"]
        bar.set_postfix(pos_cm=f"{100 * run:.2f}")
        if step % 25 == 0:
            history["position error (m)"].append((step, run))
    else:
        step = training.steps
    model.eval()
    result = {"steps": step, "train_seconds": round(time.perf_counter() - t0, 1),
              "final_position_error_m": round(run or math.nan, 5), "training": asdict(training)}
    model.save_pretrained(out, extra={"training": result})
    from .plots import save_loss_curve

    save_loss_curve(history, Path(out) / "inbetweener_loss.png", "in-betweener (residual over interpolation)")
    return model, result
