"""Training the text-to-motion evaluator (backend/models/evaluator.py): contrastive text/motion
alignment with content and style heads, on the train split (with mirrors)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from backend.data.dataset import Dataset
from backend.models.evaluator import (
    Evaluator,
    EvaluatorConfig,
    _as_recorded,
    _mirrored,
    held_out_accuracy,
    labelled,
)
from backend.models.llm import TextFeatures
from backend.options import option
from backend.training.loop import Loop, seeded
from backend.training.loop import run as run_loop


# -- training ------------------------------------------------------------------------------
@dataclass
class EvaluatorTraining:
    steps: int = option(1500, "optimizer steps")
    batch: int = 64
    lr: float = 1e-3
    min_frames: int = 40          # random crops of 2 s ...
    max_frames: int = 160         # ... to 8 s
    # Half the examples are left/right mirrors (sided contents relabelled): a style or an action
    # does not change with the side it is done on, and the generator learns from mirrors too.
    # Without them the classifiers read the actors' asymmetries: on mirrored validation clips
    # content accuracy fell 0.95 -> 0.43 and style 0.95 -> 0.41.
    mirror: bool = option(True, "also train on left/right mirrors (--no-mirror: the clips as recorded only)")
    seed: int = option(0, "random seed")
    threads: int = option(0, "torch threads (0: torch's choice)")


def train(ds: Dataset, out: Path, training: EvaluatorTraining | None = None, text_features: TextFeatures | None = None,
          progress: bool = True, resume: bool = True) -> tuple[Evaluator, dict]:
    training = training or EvaluatorTraining()
    rng = seeded(training.seed, training.threads)
    clips = labelled(ds, "train")
    if not clips:
        raise ValueError("no labelled, captioned training clips")
    tf = text_features or TextFeatures()
    examples = [_as_recorded(ds, c) for c in clips]
    mirrors = [_mirrored(ds, c) for c in clips] if training.mirror else [None] * len(clips)
    every = examples + [e for e in mirrors if e is not None]
    config = EvaluatorConfig(feature_size=ds.features.shape[1], text_size=tf.size,
                             contents=sorted({e[1] for e in every}), styles=sorted({e[2] for e in every}))
    model = Evaluator(config)
    model.mean.copy_(torch.from_numpy(ds.mean.astype(np.float32)))
    model.std.copy_(torch.from_numpy(np.maximum(ds.std, 1e-6).astype(np.float32)))
    tf([t for e in every for t in e[3]])  # all training captions at once
    opt = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=1e-4)
    cidx = {n: i for i, n in enumerate(config.contents)}
    sidx = {n: i for i, n in enumerate(config.styles)}

    def step(_: int):
        picked = rng.sample(range(len(clips)), min(training.batch, len(clips)))
        batch = [mirrors[i] if mirrors[i] is not None and rng.random() < 0.5 else examples[i] for i in picked]
        feats = []
        for f, *_ in batch:
            n = min(len(f), rng.randint(training.min_frames, training.max_frames))
            s = rng.randint(0, len(f) - n)
            feats.append(f[s: s + n])
        m = model.motion(*model.motion_batch(feats))
        t = model.text(torch.from_numpy(tf([rng.choice(e[3]) for e in batch])))
        logits = model.logit_scale.exp().clamp(max=100) * F.normalize(m, dim=-1) @ F.normalize(t, dim=-1).T
        # Clips with the same content and style are not negatives of each other.
        key = [(e[1], e[2]) for e in batch]
        same = torch.tensor([[a == b for b in key] for a in key])
        logits = logits.masked_fill(same & ~torch.eye(len(batch), dtype=torch.bool), -1e4)
        target = torch.arange(len(batch))
        contrast = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        lc = F.cross_entropy(model.content(m), torch.tensor([cidx[e[1]] for e in batch]))
        ls = F.cross_entropy(model.style(m), torch.tensor([sidx[e[2]] for e in batch]))
        loss = contrast + lc + ls
        return loss, {"loss": loss.item()}

    loop = Loop("evaluator", training.steps, training.seed, Path(out) / "checkpoint", resume, clip_grad=None,
                progress=progress)
    run = run_loop(loop, model, opt, step, rng=rng)
    result = {"steps": run.step, "train_seconds": round(run.seconds, 1), "resumed_from": run.resumed_from,
              "final_loss": round(run.running.get("loss", float("nan")), 4), "training": asdict(training),
              "validation": held_out_accuracy(model, ds, "val")}
    model.save_pretrained(out, extra={"training": result})
    return model, result
