"""Training the text-to-length estimator (backend/models/length.py) on the generator's own
training captions, train split only."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from backend.data.dataset import Dataset
from backend.models.length import FORMAT_VERSION, LengthConfig, LengthEstimator  # noqa: F401
from backend.models.llm import TextFeatures
from backend.options import option
from backend.training.loop import Loop, seeded
from backend.training.loop import run as run_loop  # noqa: F401


@dataclass
class LengthTraining:
    steps: int = option(3000, "optimizer steps")
    batch: int = 256
    lr: float = 1e-3
    # Soft targets over neighbouring bins: a 3.0 s clip is nearly as right at 3.2 s, and
    # lengths are ordinal, which one-hot targets ignore.
    sigma_bins: float = 2.0
    wide_captions: int = 12       # the generator's own training captions (see train_generator)
    seed: int = option(0, "random seed")

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.lr <= 0 or self.sigma_bins <= 0 or self.wide_captions < 0:
            raise ValueError("steps and batch must be >= 1, lr and sigma_bins > 0, wide_captions >= 0")


def examples(ds: Dataset, split: str, wide_captions: int) -> list[tuple[str, int]]:
    """(caption, frames) for every captioned clip of a split, mirrors included: the texts the
    generator learns from, each with the length of the motion it describes."""
    from backend.data.captions import clip_texts

    out = []
    for c in ds.split(split):
        frames = int(c.length)
        for _, _, texts in clip_texts(c, mirror=True, wide_captions=wide_captions):
            out += [(t, frames) for t in texts if t]
    return out


def validate(model: LengthEstimator, tf: TextFeatures, pairs: list[tuple[str, int]]) -> dict:
    """Error of the predicted length against the clip's own, beside always guessing the
    training median."""
    if not pairs:
        return {}
    fps = model.config.fps
    truth = np.array([f for _, f in pairs]) / fps
    guess = model.seconds(tf([t for t, _ in pairs]))
    train_median = (model.training_record or {}).get("train_median_seconds", float(np.median(truth)))
    return {"captions": len(pairs), "mae_seconds": round(float(np.abs(guess - truth).mean()), 3),
            "within_25_percent": round(float(np.mean(np.abs(guess - truth) <= 0.25 * truth)), 3),
            "median_guess_mae_seconds": round(float(np.abs(train_median - truth).mean()), 3)}


def train(ds: Dataset, out: Path, training: LengthTraining | None = None, text_features: TextFeatures | None = None,
          progress: bool = True, resume: bool = True) -> tuple[LengthEstimator, dict]:
    training = training or LengthTraining()
    rng = seeded(training.seed)
    pairs = examples(ds, "train", training.wide_captions)
    if not pairs:
        raise ValueError("no captioned training clips to learn lengths from")
    tf = text_features or TextFeatures()
    model = LengthEstimator(LengthConfig(base=tf.base, text_size=tf.size))
    texts = sorted({t for t, _ in pairs})
    feats = torch.from_numpy(tf(texts))
    row = {t: i for i, t in enumerate(texts)}
    x_idx = torch.tensor([row[t] for t, _ in pairs])
    y = torch.from_numpy(model.bin_of(np.array([f for _, f in pairs])))
    centres = torch.arange(model.config.bins, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=1e-4)

    def step(_: int):
        pick = torch.tensor(rng.sample(range(len(pairs)), min(training.batch, len(pairs))))
        target = (-0.5 * ((centres[None] - y[pick, None].float()) / training.sigma_bins) ** 2).softmax(-1)
        loss = -(target * F.log_softmax(model.net(feats[x_idx[pick]]), -1)).sum(-1).mean()
        return loss, {"loss": loss.item()}

    loop = Loop("length", training.steps, training.seed, Path(out) / "checkpoint", resume, clip_grad=None,
                progress=progress)
    run = run_loop(loop, model, opt, step, rng=rng)
    record = {"steps": run.step, "train_seconds": round(run.seconds, 1), "resumed_from": run.resumed_from,
              "final_loss": round(run.running.get("loss", float("nan")), 4),
              "training": asdict(training), "train_captions": len(pairs),
              "train_median_seconds": round(float(np.median([f for _, f in pairs])) / model.config.fps, 3)}
    model.training_record = record  # validate() compares with its training median
    record["validation"] = validate(model, tf, examples(ds, "val", 0))
    model.save_pretrained(out, extra={"training": record})
    return model, record
