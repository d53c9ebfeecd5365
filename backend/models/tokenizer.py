"""The motion tokenizer: canonical features -> discrete motion tokens -> features.

A 1D convolutional autoencoder that downsamples time by `down` (4: 20 fps features become
5 tokens per second) with a quantizer in the bottleneck: finite scalar quantization (FSQ,
Mentzer et al. 2023) or a vector-quantized codebook with EMA updates (VQ-VAE). Both are kept
so they can be compared on the same data; the shipped default is whichever reconstructs best.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from backend.models import weights_file
from backend.options import option
from motioncore.features import LAYOUT

FORMAT_VERSION = 1
DECODER_FILE = "decoder.safetensors"  # a user's adapter's own decoder weights (training/adapter.py)


@dataclass
class TokenizerConfig:
    """Shape of the tokenizer. Defaults are the shipped model's."""

    feature_size: int = LAYOUT.size  # per-frame features in (motioncore.features)
    width: int = option(192, "channels of the convolutional trunk")
    blocks: int = 1                  # residual blocks per resolution
    down: int = 4                    # frames per token (a power of two)
    quantizer: str = option("vq", "vq or fsq (tied on reconstruction; vq is shipped)", choices=("vq", "fsq"))
    fsq_levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # 1000 codes
    vq_codes: int = 512
    vq_dim: int = 64
    vq_decay: float = 0.99

    def __post_init__(self) -> None:
        if self.quantizer not in ("fsq", "vq"):
            raise ValueError(f"quantizer must be 'fsq' or 'vq', got {self.quantizer!r}")
        if self.down < 1 or self.down & (self.down - 1):
            raise ValueError(f"down must be a power of two, got {self.down}")
        if self.quantizer == "fsq" and (not self.fsq_levels or min(self.fsq_levels) < 2):
            raise ValueError(f"fsq_levels need at least one level of 2 or more, got {self.fsq_levels}")
        if self.width < 8 or self.blocks < 0 or self.feature_size < 1:
            raise ValueError("width must be >= 8, blocks >= 0, feature_size >= 1")

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels) if self.quantizer == "fsq" else self.vq_codes

    @property
    def code_dim(self) -> int:
        return len(self.fsq_levels) if self.quantizer == "fsq" else self.vq_dim


class ResBlock(nn.Module):
    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.SiLU(), nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation),
            nn.SiLU(), nn.Conv1d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def _trunk(width: int, blocks: int) -> list[nn.Module]:
    return [ResBlock(width, 3 ** (i % 3)) for i in range(blocks)]


class FSQ(nn.Module):
    """Round each of d bounded channels to its own number of levels; no codebook to learn."""

    def __init__(self, levels: list[int]):
        super().__init__()
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.float32), persistent=False)
        basis = np.cumprod([1] + list(levels[:-1]))
        self.register_buffer("basis", torch.tensor(basis, dtype=torch.long), persistent=False)

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        half = (self.levels - 1) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, N, d) -> (quantized (B, N, d), indices (B, N), aux loss 0)."""
        bounded = self._bound(z)
        q = bounded + (torch.round(bounded) - bounded).detach()  # straight-through
        return q, self.to_index(q), z.new_zeros(())

    def to_index(self, q: torch.Tensor) -> torch.Tensor:
        half = torch.div(self.levels, 2, rounding_mode="floor")
        return ((torch.round(q) + half).long() * self.basis).sum(-1)

    def from_index(self, idx: torch.Tensor) -> torch.Tensor:
        half = torch.div(self.levels, 2, rounding_mode="floor")
        digits = torch.remainder(torch.div(idx[..., None], self.basis, rounding_mode="floor"),
                                 self.levels.long())
        return digits.float() - half


class VQ(nn.Module):
    """Nearest-codeword quantizer with EMA codebook updates and dead-code restarts."""

    def __init__(self, codes: int, dim: int, decay: float):
        super().__init__()
        self.decay = decay
        self.register_buffer("codebook", torch.randn(codes, dim) * 0.1)
        self.register_buffer("ema_count", torch.ones(codes))
        self.register_buffer("ema_sum", self.codebook.clone())
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = z.reshape(-1, z.shape[-1])
        dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T
                + self.codebook.pow(2).sum(1)[None])
        idx = dist.argmin(1)
        q = self.codebook[idx].view_as(z)
        if self.training:
            self._update(flat.detach(), idx)
        commit = F.mse_loss(z, q.detach())
        return z + (q - z).detach(), idx.view(z.shape[:-1]), 0.25 * commit

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        if not self.initialized:  # start from encoder outputs, not noise: no code is born dead
            pick = flat[torch.randint(0, len(flat), (self.codebook.shape[0],))]
            self.codebook.copy_(pick)
            self.ema_sum.copy_(pick)
            self.initialized.fill_(True)
            return
        onehot = F.one_hot(idx, self.codebook.shape[0]).type(flat.dtype)
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(onehot.T @ flat, alpha=1 - self.decay)
        n = self.ema_count.sum()
        count = (self.ema_count + 1e-5) / (n + 1e-5 * len(self.ema_count)) * n
        self.codebook.copy_(self.ema_sum / count[:, None])
        dead = self.ema_count < 1e-2
        if dead.any():  # restart unused codes on random encoder outputs
            pick = flat[torch.randint(0, len(flat), (int(dead.sum()),))]
            self.codebook[dead] = pick
            self.ema_sum[dead] = pick
            self.ema_count[dead] = 1.0

    def from_index(self, idx: torch.Tensor) -> torch.Tensor:
        return self.codebook[idx]


class MotionTokenizer(weights_file.Stored, nn.Module):
    """Normalised features (B, T, F) <-> tokens (B, T / down). Also holds the feature
    statistics, so it alone turns raw features into tokens and back."""
    stem, config_class, format_version, what = "tokenizer", TokenizerConfig, FORMAT_VERSION, "tokenizer"

    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = c = config
        stages = int(math.log2(c.down))
        enc: list[nn.Module] = [nn.Conv1d(c.feature_size, c.width, 3, padding=1)]
        for _ in range(stages):
            enc += _trunk(c.width, c.blocks) + [nn.Conv1d(c.width, c.width, 4, stride=2, padding=1)]
        enc += _trunk(c.width, c.blocks) + [nn.SiLU(), nn.Conv1d(c.width, c.code_dim, 1)]
        dec: list[nn.Module] = [nn.Conv1d(c.code_dim, c.width, 3, padding=1)]
        for _ in range(stages):
            dec += _trunk(c.width, c.blocks) + [nn.Upsample(scale_factor=2, mode="nearest"),
                                                  nn.Conv1d(c.width, c.width, 3, padding=1)]
        dec += _trunk(c.width, c.blocks) + [nn.SiLU(), nn.Conv1d(c.width, c.feature_size, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.quantizer = FSQ(c.fsq_levels) if c.quantizer == "fsq" else VQ(c.vq_codes, c.vq_dim, c.vq_decay)
        self.register_buffer("mean", torch.zeros(c.feature_size))
        self.register_buffer("std", torch.ones(c.feature_size))

    def set_statistics(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised (B, T, F), T a multiple of down -> (reconstruction, indices, aux loss)."""
        z = self.encoder(x.transpose(1, 2)).transpose(1, 2)  # (B, N, d)
        q, idx, aux = self.quantizer(z)
        return self.decoder(q.transpose(1, 2)).transpose(1, 2), idx, aux

    @torch.no_grad()
    def encode(self, feats: np.ndarray) -> np.ndarray:
        """Raw features (T, F) -> tokens (ceil(T / down),). The clip is padded by repeating its
        last frame to a multiple of down."""
        x = torch.as_tensor(np.asarray(feats, dtype=np.float32))
        pad = (-len(x)) % self.config.down
        if pad:
            x = torch.cat([x, x[-1:].expand(pad, -1)])
        z = self.encoder(self.normalize(x)[None].transpose(1, 2)).transpose(1, 2)
        return self.quantizer(z)[1][0].numpy()

    @torch.no_grad()
    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens (N,) -> raw features (N * down, F)."""
        idx = torch.as_tensor(np.asarray(tokens, dtype=np.int64))[None]
        q = self.quantizer.from_index(idx)
        return self.denormalize(self.decoder(q.transpose(1, 2)).transpose(1, 2))[0].numpy()

