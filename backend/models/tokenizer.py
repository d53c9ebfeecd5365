"""The motion tokenizer: canonical features -> discrete motion tokens -> features.

A 1D convolutional autoencoder that downsamples time by `down` (4: 20 fps features become
5 tokens per second) with a quantizer in the bottleneck: a vector-quantized codebook with EMA
updates (VQ-VAE, shipped), finite scalar quantization (FSQ, Mentzer et al. 2023) or lookup-free
quantization (LFQ, Yu et al. 2023: each code channel's sign is one bit of the token).

Two of the seeds' designs are kept beside it so they can be measured on the same budget
(MODEL_CARD.md, "The seeds' parts"):
- `layout="2d"`, MotionBase's 2D token map: the features laid out as joints x time, 2D
  convolutions, and one LFQ token per (joint group, time step) cell;
- `encoder="dual"`, DynamicPoseNet's dual-pathway encoder: each block two depthwise-separable
  streams with different kernels, fused by a pointwise convolution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from backend.models import weights_file
from backend.options import option
from motioncore.canonical import CANONICAL_JOINTS, FEET
from motioncore.features import LAYOUT, NUM_JOINTS

FORMAT_VERSION = 1
QUANTIZERS = ("vq", "fsq", "lfq")
DECODER_FILE = "decoder.safetensors"  # a user's adapter's own decoder weights (training/adapter.py)


@dataclass
class TokenizerConfig:
    """Shape of the tokenizer. Defaults are the shipped model's."""

    feature_size: int = LAYOUT.size  # per-frame features in (motioncore.features)
    width: int = option(192, "channels of the convolutional trunk")
    blocks: int = 1                  # residual blocks per resolution
    down: int = 4                    # frames per token (a power of two)
    quantizer: str = option("vq", "vq, fsq or lfq (vq is shipped; MODEL_CARD.md has the comparison)",
                            choices=QUANTIZERS)
    layout: str = option("1d", "1d: features x time; 2d: MotionBase's joints x time token map (lfq only)",
                         choices=("1d", "2d"))
    encoder: str = option("residual", "residual trunk, or DynamicPoseNet's dual-pathway depthwise-separable one",
                          choices=("residual", "dual"))
    fsq_levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # 1000 codes
    vq_codes: int = 512
    vq_dim: int = 64
    vq_decay: float = 0.99
    lfq_bits: int = 9                # 512 codes, as many as the VQ's
    map_rows: int = 6                # 2d: joint groups after two stride-2 steps over the 21 joints

    def __post_init__(self) -> None:
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {', '.join(QUANTIZERS)}, got {self.quantizer!r}")
        if self.layout not in ("1d", "2d") or self.encoder not in ("residual", "dual"):
            raise ValueError(f"layout must be 1d or 2d and encoder residual or dual, got {self.layout!r}, "
                             f"{self.encoder!r}")
        if self.layout == "2d" and (self.quantizer != "lfq" or self.encoder != "residual"):
            raise ValueError("the 2d token map is built with lfq and the residual trunk only")
        if not 1 <= self.lfq_bits <= 16:
            raise ValueError(f"lfq_bits must be 1-16, got {self.lfq_bits}")
        if self.down < 1 or self.down & (self.down - 1):
            raise ValueError(f"down must be a power of two, got {self.down}")
        if self.quantizer == "fsq" and (not self.fsq_levels or min(self.fsq_levels) < 2):
            raise ValueError(f"fsq_levels need at least one level of 2 or more, got {self.fsq_levels}")
        if self.width < 8 or self.blocks < 0 or self.feature_size < 1:
            raise ValueError("width must be >= 8, blocks >= 0, feature_size >= 1")

    @property
    def codebook_size(self) -> int:
        return {"fsq": math.prod(self.fsq_levels), "vq": self.vq_codes, "lfq": 2 ** self.lfq_bits}[self.quantizer]

    @property
    def code_dim(self) -> int:
        return {"fsq": len(self.fsq_levels), "vq": self.vq_dim, "lfq": self.lfq_bits}[self.quantizer]

    @property
    def tokens_per_step(self) -> int:
        """Tokens per `down` frames: 1, or a 2d map's column of joint groups."""
        return self.map_rows if self.layout == "2d" else 1


class ResBlock(nn.Module):
    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.SiLU(), nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation),
            nn.SiLU(), nn.Conv1d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class SeparableConv(nn.Sequential):
    """A depthwise convolution over time, then a pointwise one across channels."""

    def __init__(self, width: int, kernel: int, dilation: int):
        super().__init__(nn.Conv1d(width, width, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                                   groups=width),
                         nn.Conv1d(width, width, 1))


class DualPathBlock(nn.Module):
    """DynamicPoseNet's two streams: short (3) and long (7) kernels, depthwise-separable, their
    outputs joined by a pointwise convolution and added to the input."""

    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.short = nn.Sequential(nn.SiLU(), SeparableConv(width, 3, dilation))
        self.long = nn.Sequential(nn.SiLU(), SeparableConv(width, 7, dilation))
        self.fuse = nn.Sequential(nn.SiLU(), nn.Conv1d(2 * width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fuse(torch.cat([self.short(x), self.long(x)], 1))


def _trunk(width: int, blocks: int, block: type[nn.Module] = ResBlock) -> list[nn.Module]:
    return [block(width, 3 ** (i % 3)) for i in range(blocks)]


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


class LFQ(nn.Module):
    """Lookup-free quantization: each of `bits` channels rounds to -1 or +1 and is one bit of the
    token, so there is no codebook to look up or keep alive. An entropy term (confident per
    position, spread over the batch) keeps the codes in use, as in MAGVIT-v2."""

    def __init__(self, bits: int, entropy_weight: float = 0.1, temperature: float = 0.1):
        super().__init__()
        self.entropy_weight, self.temperature = entropy_weight, temperature
        self.register_buffer("basis", 2 ** torch.arange(bits), persistent=False)
        codes = torch.arange(2 ** bits)[:, None].bitwise_and(self.basis).ne(0).float() * 2 - 1
        self.register_buffer("codes", codes, persistent=False)  # (2^bits, bits), code k's signs

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (..., bits) -> (quantized (..., bits) of +-1, indices (...), aux loss)."""
        signs = torch.where(z > 0, 1.0, -1.0)
        q = z + (signs - z).detach()
        idx = ((signs > 0).long() * self.basis).sum(-1)
        aux = 0.25 * F.mse_loss(z, signs)
        if self.training and self.entropy_weight:
            p = torch.softmax(2 * z.reshape(-1, z.shape[-1]) @ self.codes.T / self.temperature, -1)
            per_position = -(p * torch.log(p + 1e-8)).sum(-1).mean()
            mean = p.mean(0)
            aux = aux + self.entropy_weight * (per_position + (mean * torch.log(mean + 1e-8)).sum())
        return q, idx, aux

    def from_index(self, idx: torch.Tensor) -> torch.Tensor:
        return self.codes[idx]


def _quantizer(c: TokenizerConfig) -> nn.Module:
    if c.quantizer == "fsq":
        return FSQ(c.fsq_levels)
    if c.quantizer == "lfq":
        return LFQ(c.lfq_bits)
    return VQ(c.vq_codes, c.vq_dim, c.vq_decay)


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
        self.map = JointMap(c) if c.layout == "2d" else None
        if self.map is None:
            stages = int(math.log2(c.down))
            block = DualPathBlock if c.encoder == "dual" else ResBlock
            enc: list[nn.Module] = [nn.Conv1d(c.feature_size, c.width, 3, padding=1)]
            for _ in range(stages):
                enc += _trunk(c.width, c.blocks, block) + [nn.Conv1d(c.width, c.width, 4, stride=2, padding=1)]
            enc += _trunk(c.width, c.blocks, block) + [nn.SiLU(), nn.Conv1d(c.width, c.code_dim, 1)]
            dec: list[nn.Module] = [nn.Conv1d(c.code_dim, c.width, 3, padding=1)]
            for _ in range(stages):
                dec += _trunk(c.width, c.blocks) + [nn.Upsample(scale_factor=2, mode="nearest"),
                                                      nn.Conv1d(c.width, c.width, 3, padding=1)]
            dec += _trunk(c.width, c.blocks) + [nn.SiLU(), nn.Conv1d(c.width, c.feature_size, 3, padding=1)]
            self.encoder = nn.Sequential(*enc)
            self.decoder = nn.Sequential(*dec)
        self.quantizer = _quantizer(c)
        self.register_buffer("mean", torch.zeros(c.feature_size))
        self.register_buffer("std", torch.ones(c.feature_size))

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> code vectors (B, N, d), or (B, N, rows, d) for the 2d map."""
        if self.map is not None:
            return self.map.encode(x)
        return self.encoder(x.transpose(1, 2)).transpose(1, 2)

    def _decode(self, q: torch.Tensor) -> torch.Tensor:
        if self.map is not None:
            return self.map.decode(q)
        return self.decoder(q.transpose(1, 2)).transpose(1, 2)

    @classmethod
    def for_generation(cls, folder: Path) -> "MotionTokenizer":
        """The tokenizer in `folder`, refused where it makes 2d token maps: the generator reads
        one token per step (the 2d map was built to be measured, MODEL_CARD.md)."""
        tokenizer = cls.from_pretrained(folder)
        if tokenizer.config.tokens_per_step != 1:
            raise ValueError(f"the tokenizer in {folder} makes a 2d token map; the generator needs a 1d one")
        return tokenizer

    def set_statistics(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised (B, T, F), T a multiple of down -> (reconstruction, indices, aux loss)."""
        q, idx, aux = self.quantizer(self._encode(x))
        return self._decode(q), idx, aux

    @torch.no_grad()
    def encode(self, feats: np.ndarray) -> np.ndarray:
        """Raw features (T, F) -> tokens (ceil(T / down),), or (ceil(T / down), rows) for the 2d
        map. The clip is padded by repeating its last frame to a multiple of down."""
        x = torch.as_tensor(np.asarray(feats, dtype=np.float32))
        pad = (-len(x)) % self.config.down
        if pad:
            x = torch.cat([x, x[-1:].expand(pad, -1)])
        return self.quantizer(self._encode(self.normalize(x)[None]))[1][0].numpy()

    @torch.no_grad()
    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens (N,) (or (N, rows)) -> raw features (N * down, F)."""
        idx = torch.as_tensor(np.asarray(tokens, dtype=np.int64))[None]
        return self.denormalize(self._decode(self.quantizer.from_index(idx)))[0].numpy()



def joint_channels() -> np.ndarray:
    """(channels, joints) indices into a frame's features, -1 for padding: the root's 10 numbers
    in column 0, and per joint its 6D rotation, position, velocity and (feet) contact."""
    table = -np.ones((13, NUM_JOINTS), dtype=np.int64)
    root = np.r_[LAYOUT.root_yaw_velocity, LAYOUT.root_velocity, LAYOUT.root_height, LAYOUT.root_rotation]
    table[: len(root), 0] = root
    for j in range(1, NUM_JOINTS):
        table[0:6, j] = np.arange(LAYOUT.local_rotations.start + 6 * (j - 1), LAYOUT.local_rotations.start + 6 * j)
        table[6:9, j] = np.arange(LAYOUT.local_positions.start + 3 * (j - 1), LAYOUT.local_positions.start + 3 * j)
        table[9:12, j] = np.arange(LAYOUT.joint_velocities.start + 3 * (j - 1), LAYOUT.joint_velocities.start + 3 * j)
    for k, name in enumerate(FEET):
        table[12, CANONICAL_JOINTS.index(name)] = LAYOUT.foot_contacts.start + k
    return table


class ResBlock2d(nn.Module):
    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.SiLU(), nn.Conv2d(width, width, 3, padding=(1, dilation), dilation=(1, dilation)),
            nn.SiLU(), nn.Conv2d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class Resize2d(nn.Module):
    """Nearest upsampling to a fixed number of joint rows and twice the time steps."""

    def __init__(self, rows: int):
        super().__init__()
        self.rows = rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(self.rows, 2 * x.shape[-1]), mode="nearest")


class JointMap(nn.Module):
    """MotionBase's 2D layout: features as (channels, joints, time), 2D convolutions that halve
    joints and time at each stage, and a (rows x steps) map of code vectors."""

    def __init__(self, c: TokenizerConfig):
        super().__init__()
        table = joint_channels()
        self.register_buffer("table", torch.as_tensor(np.where(table < 0, c.feature_size, table)), persistent=False)
        self.register_buffer("valid", torch.as_tensor(table >= 0), persistent=False)
        stages, channels, w = int(math.log2(c.down)), table.shape[0], c.width
        rows = [NUM_JOINTS]
        for _ in range(stages):
            rows.append((rows[-1] + 1) // 2)
        if rows[-1] != c.map_rows:
            raise ValueError(f"map_rows must be {rows[-1]} for down={c.down}, got {c.map_rows}")
        enc: list[nn.Module] = [nn.Conv2d(channels, w, 3, padding=1)]
        for _ in range(stages):
            enc += [ResBlock2d(w, 1) for _ in range(c.blocks)] + [nn.Conv2d(w, w, (3, 4), stride=2, padding=1)]
        enc += [ResBlock2d(w, 1) for _ in range(c.blocks)] + [nn.SiLU(), nn.Conv2d(w, c.code_dim, 1)]
        dec: list[nn.Module] = [nn.Conv2d(c.code_dim, w, 3, padding=1)]
        for r in reversed(rows[:-1]):
            dec += [ResBlock2d(w, 1) for _ in range(c.blocks)] + [Resize2d(r), nn.Conv2d(w, w, 3, padding=1)]
        dec += [ResBlock2d(w, 1) for _ in range(c.blocks)] + [nn.SiLU(), nn.Conv2d(w, channels, 3, padding=1)]
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        self.feature_size = c.feature_size

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, T / down, rows, d)."""
        padded = torch.cat([x, x.new_zeros(*x.shape[:-1], 1)], -1)
        grid = padded[..., self.table].permute(0, 2, 3, 1)  # (B, C, J, T)
        return self.encoder(grid).permute(0, 3, 2, 1)

    def decode(self, q: torch.Tensor) -> torch.Tensor:
        """(B, N, rows, d) -> (B, N * down, F)."""
        grid = self.decoder(q.permute(0, 3, 2, 1)).permute(0, 3, 1, 2)  # (B, T, C, J)
        out = grid.new_zeros(*grid.shape[:2], self.feature_size)
        out[..., self.table[self.valid]] = grid[..., self.valid]
        return out
