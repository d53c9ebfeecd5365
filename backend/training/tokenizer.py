"""Training and evaluation of the motion tokenizer (`dynamicpose train tokenizer`)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from backend.data.dataset import Dataset, mirrored_features
from backend.models.kinematics import FeatureFK
from backend.models.tokenizer import MotionTokenizer, TokenizerConfig
from backend.options import option
from backend.training import checkpoint
from backend.training.loop import Loop, Outcome, seeded
from backend.training.loop import run as run_loop
from backend.training.plots import save_loss_curve
from motioncore import canonical, features, metrics


@dataclass
class TokenizerTraining:
    """How the tokenizer is trained. Defaults reproduce the shipped weights."""

    steps: int = option(4000, "optimizer steps")
    batch: int = option(64, "windows per step")
    window: int = 64          # frames per training window (3.2 s at 20 fps)
    lr: float = 4e-4
    warmup: int = 100
    velocity_weight: float = 0.5
    position_weight: float = 10.0  # L1 on joint positions (metres) through FK of the output
    mirror: bool = True       # add left/right mirrored copies of every training clip
    seed: int = option(0, "random seed")
    eval_every: int = 500
    threads: int = option(0, "torch threads (0: torch's choice)")

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "window", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


def training_clips(ds: Dataset, window: int, mirror: bool) -> list[np.ndarray]:
    """Normalised train-split clips at least `window` frames long (plus their mirrors)."""
    clips = []
    for c in ds.split("train"):
        if c.length < window:
            continue
        f = ds.clip_features(c)
        clips.append(f)
        if mirror:
            clips.append(mirrored_features(f))
    return [((f - ds.mean) / ds.std).astype(np.float32) for f in clips]


class WindowSampler:
    """Random fixed-length windows, clips chosen in proportion to their length."""

    def __init__(self, clips: list[np.ndarray], window: int, seed: int):
        if not clips:
            raise ValueError(f"no training clip is {window} frames or longer")
        self.clips, self.window = clips, window
        weights = np.array([len(c) - window + 1 for c in clips], dtype=float)
        self.p = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        picks = self.rng.choice(len(self.clips), size=size, p=self.p)
        out = np.empty((size, self.window, self.clips[0].shape[1]), dtype=np.float32)
        for b, k in enumerate(picks):
            start = self.rng.integers(0, len(self.clips[k]) - self.window + 1)
            out[b] = self.clips[k][start: start + self.window]
        return torch.from_numpy(out)


def decoding_loss(model: MotionTokenizer, recon: torch.Tensor, target: torch.Tensor, training: TokenizerTraining,
                  fk: FeatureFK) -> torch.Tensor:
    """What the tokenizer learns from, beside its quantizer's own term: the features and their
    velocity, and the joint positions they make (through FK)."""
    loss = reconstruction_loss(recon, target, training.velocity_weight)
    if training.position_weight:
        error = fk(model.denormalize(recon)) - fk(model.denormalize(target))
        loss = loss + training.position_weight * error.abs().mean()
    return loss


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, velocity_weight: float) -> torch.Tensor:
    loss = F.smooth_l1_loss(recon, target)
    if velocity_weight:
        loss = loss + velocity_weight * F.smooth_l1_loss(recon[:, 1:] - recon[:, :-1],
                                                         target[:, 1:] - target[:, :-1])
    return loss


@torch.no_grad()
def evaluate(tokenizer: MotionTokenizer, ds: Dataset, split: str = "test") -> dict:
    """MPJPE (mm, root-relative and facing-aligned), codebook usage and perplexity on a split."""
    tokenizer.eval()
    if not ds.split(split):
        return {"split": split, "clips": 0}
    errors, frames, counts = [], 0, np.zeros(tokenizer.config.codebook_size)
    for c in ds.split(split):
        f = ds.clip_features(c)
        tokens = tokenizer.encode(f)
        recon = tokenizer.decode(tokens)[: len(f)]
        a = features.from_features(f, canonical.MODEL_FPS)
        b = features.from_features(recon, canonical.MODEL_FPS)
        errors.append(metrics.mpjpe(a, b) * len(f))
        frames += len(f)
        np.add.at(counts, tokens, 1)
    p = counts / counts.sum()
    nz = p[p > 0]
    return {"split": split, "clips": len(ds.split(split)),
            "mpjpe_mm": round(1000 * sum(errors) / frames, 2),
            "codebook_used": int((counts > 0).sum()), "codebook_size": int(len(counts)),
            "perplexity": round(float(np.exp(-(nz * np.log(nz)).sum())), 1)}


def train(ds: Dataset, config: TokenizerConfig, training: TokenizerTraining, out: Path,
          resume: bool = True, progress: bool = True) -> tuple[MotionTokenizer, dict]:
    """Train, writing checkpoints to out/checkpoint and the final model to out/."""
    seeded(training.seed, training.threads)
    model = MotionTokenizer(config)
    model.set_statistics(ds.mean, ds.std)
    sampler = WindowSampler(training_clips(ds, training.window, training.mirror),
                            training.window, training.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=0.0)
    sched = checkpoint.warmup_cosine(opt, training.warmup, training.steps)
    fk = FeatureFK()

    def step(_: int):
        x = sampler.batch(training.batch)
        recon, _, aux = model(x)
        loss = decoding_loss(model, recon, x, training, fk) + aux
        return loss, {"loss": loss.item()}

    def validate(at: int, run: Outcome) -> None:
        val = evaluate(model, ds, "val")
        model.train()
        if val["clips"]:
            run.history.setdefault("val MPJPE (m)", []).append((at, val["mpjpe_mm"] / 1000))
            tqdm.write(f"step {at}: val MPJPE {val['mpjpe_mm']} mm, "
                       f"{val['codebook_used']}/{val['codebook_size']} codes used")

    loop = Loop(f"tokenizer ({config.quantizer})", training.steps, training.seed, Path(out) / "checkpoint", resume,
                save_every=training.eval_every, history_every=50, history_names={"loss": "train loss"},
                progress=progress)
    run = run_loop(loop, model, opt, step, sched, every=(training.eval_every, validate))
    result = {"train_seconds": round(run.seconds, 1), "steps": run.step, "resumed_from": run.resumed_from,
              "val": evaluate(model, ds, "val"), "test": evaluate(model, ds, "test"),
              "training": asdict(training)}
    model.save_pretrained(Path(out), extra={"metrics": result})
    save_loss_curve(run.history, Path(out) / "tokenizer_loss.png", f"motion tokenizer ({config.quantizer})")
    (Path(out) / "tokenizer_metrics.json").write_text(json.dumps(result, indent=1))
    return model, result
