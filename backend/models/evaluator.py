"""The text-to-motion evaluator: a motion encoder and a text encoder aligned contrastively (as
Guo et al. 2022 and TMR do), with content and style classifiers on the motion side.

HumanML3D's evaluator cannot be had here, so this one is trained on our train split only. The
text side reads captions through the frozen SmolLM2 (mean of its last hidden states), so
wordings never seen in training still land near their meaning; a small projection is trained.
The motion side is a 1D convolutional encoder over the normalised model features.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from backend.data.dataset import Dataset
from backend.models import weights_file

FORMAT_VERSION = 1


@dataclass
class EvaluatorConfig:
    feature_size: int = 254
    text_size: int = 576          # SmolLM2-135M hidden size
    width: int = 256
    embed: int = 256
    contents: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    max_frames: int = 200         # 10 s at the model's 20 fps


class MotionEncoder(nn.Module):
    def __init__(self, c: EvaluatorConfig):
        super().__init__()
        w = c.width
        self.conv = nn.Sequential(
            nn.Conv1d(c.feature_size, w, 5, padding=2), nn.GELU(),
            nn.Conv1d(w, w, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv1d(w, w, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv1d(w, w, 3, padding=1), nn.GELU())
        self.proj = nn.Linear(2 * w, c.embed)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F) normalised features, (B,) valid lengths -> (B, embed)."""
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, T/4, w)
        valid = torch.arange(h.shape[1])[None] < (-(-lengths // 4))[:, None]
        mean = (h * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
        peak = h.masked_fill(~valid[..., None], -1e4).max(1).values
        return self.proj(torch.cat([mean, peak], dim=-1))


class Evaluator(weights_file.Stored, nn.Module):
    stem, config_class, format_version, what = "evaluator", EvaluatorConfig, FORMAT_VERSION, "evaluator"
    hint = "train one: dynamicpose train evaluator"

    def __init__(self, config: EvaluatorConfig):
        super().__init__()
        self.config = config
        self.motion = MotionEncoder(config)
        self.text = nn.Sequential(nn.Linear(config.text_size, config.width), nn.GELU(),
                                  nn.Linear(config.width, config.embed))
        self.content = nn.Linear(config.embed, len(config.contents))
        self.style = nn.Linear(config.embed, len(config.styles))
        self.register_buffer("mean", torch.zeros(config.feature_size))
        self.register_buffer("std", torch.ones(config.feature_size))
        self.logit_scale = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))

    def motion_batch(self, feats: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        T = min(max(len(f) for f in feats), self.config.max_frames)
        x = torch.zeros(len(feats), T, self.config.feature_size)
        lengths = torch.zeros(len(feats), dtype=torch.long)
        for i, f in enumerate(feats):
            f = torch.from_numpy(np.asarray(f[:T], dtype=np.float32))
            x[i, : len(f)] = (f - self.mean) / self.std
            lengths[i] = len(f)
        return x, lengths

    @torch.no_grad()
    def embed_motions(self, feats: list[np.ndarray], batch: int = 64) -> np.ndarray:
        out = [self.motion(*self.motion_batch(feats[i: i + batch])) for i in range(0, len(feats), batch)]
        return torch.cat(out).numpy()

    @torch.no_grad()
    def embed_texts(self, text_features: np.ndarray) -> np.ndarray:
        return self.text(torch.from_numpy(np.asarray(text_features, dtype=np.float32))).numpy()

    @torch.no_grad()
    def classify(self, motion_embeddings: np.ndarray) -> tuple[list[str], list[str]]:
        e = torch.from_numpy(motion_embeddings)
        c = self.content(e).argmax(-1).tolist()
        s = self.style(e).argmax(-1).tolist()
        return [self.config.contents[i] for i in c], [self.config.styles[i] for i in s]


def labelled(ds: Dataset, split: str):
    return [c for c in ds.split(split) if c.captions and c.content != "unlabelled"]


Example = tuple[np.ndarray, str, str, list[str]]  # features, content, style, captions


def _as_recorded(ds: Dataset, clip) -> Example:
    return ds.clip_features(clip), clip.content, clip.style, clip.captions


def _mirrored(ds: Dataset, clip) -> Example:
    """The clip's left/right mirror, labelled and captioned for its side."""
    from backend.data import captions as cap
    from backend.data.dataset import mirrored_features

    content, texts = cap.mirror_labels(clip.content, clip.style, clip.captions, clip.name)
    return mirrored_features(ds.clip_features(clip)), content, clip.style, texts


def held_out_accuracy(model: Evaluator, ds: Dataset, split: str = "val") -> dict:
    """Content and style accuracy on a held-out split, as recorded and mirrored."""
    clips = labelled(ds, split)
    result = {}
    for name, examples in (("as_recorded", [_as_recorded(ds, c) for c in clips]),
                           ("mirrored", [_mirrored(ds, c) for c in clips])):
        if not examples:
            continue
        content, style = model.classify(model.embed_motions([e[0][: model.config.max_frames] for e in examples]))
        result[name] = {"clips": len(examples),
                        "content_accuracy": round(float(np.mean([p == e[1] for p, e in zip(content, examples)])), 4),
                        "style_accuracy": round(float(np.mean([p == e[2] for p, e in zip(style, examples)])), 4)}
    return result
