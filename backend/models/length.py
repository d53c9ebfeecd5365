"""How long a prompt's motion should last, from its text alone.

Text-to-motion models are asked for a length; when the user gives none, T2M (Guo et al. 2022)
and MoMask predict it from the text with a small classifier over length bins. This is that
estimator, read through the same frozen base-LLM sentence features as the evaluator and trained
on the generator's own training captions (train split only). It matters: our clips' lengths
follow their action (a raised hand lasts about 2.5 s, a wave about 7 s), and the generator,
asked for 6 s of "lifts the right arm", drifts into the longer action (out-of-template content
0.66 at a fixed 6 s, 0.72 at each action's median length, 0.73 at this estimator's; 10 seeds).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from backend.models import weights_file
from backend.models.llm import DEFAULT_BASE
from motioncore import canonical

FORMAT_VERSION = 1


@dataclass
class LengthConfig:
    base: str = DEFAULT_BASE      # the LLM whose sentence features it reads
    text_size: int = 576          # SmolLM2-135M hidden size
    width: int = 256
    bin_frames: int = 4           # 0.2 s bins at the model's 20 fps, as MoMask's 4-frame bins
    bins: int = 100               # up to 20 s, the longest motion the engine makes

    @property
    def fps(self) -> float:
        return float(canonical.MODEL_FPS)


class LengthEstimator(weights_file.Stored, nn.Module):
    stem, config_class, format_version, what = "length", LengthConfig, FORMAT_VERSION, "length estimator"
    hint = "train one: dynamicpose train length"

    def __init__(self, config: LengthConfig):
        super().__init__()
        self.config = config
        self.net = nn.Sequential(nn.Linear(config.text_size, config.width), nn.GELU(), nn.Dropout(0.1),
                                 nn.Linear(config.width, config.bins))

    def bin_of(self, frames: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(frames) // self.config.bin_frames, 0, self.config.bins - 1).astype(np.int64)

    @torch.no_grad()
    def frames(self, text_features: np.ndarray) -> np.ndarray:
        """The median of the predicted length distribution, in frames at the model's fps: a
        prompt gets one length, not a draw, so the same prompt and seed give the same motion."""
        p = self.net(torch.from_numpy(np.asarray(text_features, dtype=np.float32))).softmax(-1)
        median_bin = (p.cumsum(-1) < 0.5).sum(-1).clamp(max=self.config.bins - 1)
        return ((median_bin.numpy() + 0.5) * self.config.bin_frames).astype(np.int64)

    def seconds(self, text_features: np.ndarray) -> np.ndarray:
        return self.frames(text_features) / self.config.fps


# -- training ------------------------------------------------------------------------------
