"""The in-betweener: a small transformer that predicts the residual over interpolation.

Given context frames and a target key, interpolation (slerp on local rotations, lerp on the
root) is a strong start; the network only adds what interpolation misses (the dip of a step, the
swing of an arm), as the Delta-interpolator and two-stage transformer do. Known frames pass
through untouched, so keys stay exact. Windows are seen from the last context frame (re-centred,
facing -Y), so the network learns one way round. Trained on the dataset's train split at 30 fps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from backend.models import weights_file
from backend.models.kinematics import positions
from motioncore import blend, canonical
from motioncore import rotations as rot
from motioncore.clip import Motion
from motioncore.windows import face_forward, restore

FORMAT_VERSION = 1
# Gaps up to this many times max_gap are filled on a sped-up clock (the gap squeezed to max_gap
# frames, then stretched back): on held-out clips, two keys 90 and 120 frames apart, 9.0 and
# 8.1 cm off the capture against the motion LM's 18.5 and 14.7 and slerp's 14.1 and 9.0.
STRETCH = 2
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
    # Keys after the gap's end that the network was trained to see (0: the end key only). With
    # them it reads the velocity through that key from where the motion goes next, as Blender's
    # auto handles read it from the neighbouring keys.
    lookahead: int = 0

    def __post_init__(self) -> None:
        if self.context < 1 or self.max_gap < 1 or self.width % self.heads or self.lookahead < 0:
            raise ValueError("context and max_gap must be >= 1, lookahead >= 0, width a multiple of heads")


def encode(motion: Motion) -> np.ndarray:
    """(T, FRAME) float32: 6D local rotations and root position."""
    T = motion.num_frames
    return np.concatenate([rot.to_6d(motion.local_rotations).reshape(T, -1), motion.root_position],
                          axis=1).astype(np.float32)


def decode(x: np.ndarray, fps: float) -> Motion:
    T = x.shape[0]
    q = rot.from_6d(x[:, : J * 6].reshape(T, J, 6).astype(float))
    return Motion(canonical.canonical_skeleton(), fps, x[:, J * 6:].astype(float), rot.make_continuous(q))


def known_frames(length: int, context: int, later: tuple[int, ...] = ()) -> np.ndarray:
    """(length,) bool: the context frames, the keys at `later` (window frames past the context)
    and the window's last frame."""
    known = np.zeros(length, dtype=bool)
    known[:context] = known[-1] = True
    known[list(later)] = True
    return known


def window_input(window: Motion, context: int, later: tuple[int, ...] = ()) -> tuple[Motion, np.ndarray, float, np.ndarray]:
    """A window [context frames, gap, key, (gap, key)...] seen from its last context frame ->
    (turned window, xy, yaw, interpolation baseline (L, FRAME) with the known frames in place).
    `later`: the window frames of the keys before its last one."""
    turned, xy, yaw = face_forward(window, context - 1)
    known = known_frames(window.num_frames, context, later)
    base = encode(blend.interpolate_keys(turned, np.flatnonzero(known)[context - 1:]))
    # interpolate_keys holds the frames before its first key at it: the context goes back in.
    base[known] = encode(turned)[known]
    return turned, xy, yaw, base


class Inbetweener(weights_file.Stored, nn.Module):
    stem, config_class, format_version, what = "inbetweener", InbetweenerConfig, FORMAT_VERSION, "in-betweener"
    unstored = ('offsets',)  # the skeleton offsets come from the config, not from training

    def __init__(self, config: InbetweenerConfig):
        super().__init__()
        self.config = config
        d = config.width
        self.max_len = self.max_len_of(config)
        # frame, known flag, position within the gap (and with lookahead: past the gap's end key)
        self.inp = nn.Linear(FRAME + 2 + bool(config.lookahead), d)
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

    @staticmethod
    def max_len_of(config: InbetweenerConfig) -> int:
        """Frames in the longest window: the context and a gap with its key, and with lookahead
        one more gap of up to max_gap frames with its key."""
        return config.context + (2 if config.lookahead else 1) * (config.max_gap + 1)

    def load_trained(self, other: "Inbetweener") -> None:
        """Take the weights of a trained in-betweener of the same width and depth; positions past
        its windows (a lookahead added) start as its last one."""
        state = dict(other.state_dict())
        pos = state["pos"]
        if pos.shape[0] < self.max_len:
            state["pos"] = torch.cat([pos, pos[-1:].expand(self.max_len - pos.shape[0], -1)])
        w = state["inp.weight"]
        if w.shape[1] < self.inp.in_features:  # the past-the-key flag starts unread
            state["inp.weight"] = torch.cat([w, w.new_zeros(w.shape[0], self.inp.in_features - w.shape[1])], 1)
        self.load_state_dict(state)

    def forward(self, base: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """base (B, L, FRAME) interpolation with known frames in place, known (B, L) bool ->
        (B, L, FRAME): known frames unchanged, the rest base + predicted residual."""
        B, L, _ = base.shape
        flags = [known.float(), gap_position(known)]
        if self.config.lookahead:
            past = past_first_key(known)
            flags.append((past & torch.roll(past, 1, dims=1)).float())  # after the gap's end key
        h = self.inp(torch.cat([base, torch.stack(flags, dim=-1)], dim=-1)) + self.pos[:L]
        residual = self.out(self.trunk(h))
        return torch.where(known[..., None], base, base + residual)

    def joint_positions(self, x: torch.Tensor) -> torch.Tensor:
        return positions(x[..., : J * 6].reshape(*x.shape[:-1], J, 6), x[..., J * 6:], self.offsets)

    # -- use -------------------------------------------------------------------------------
    @torch.no_grad()
    def fill_window(self, window: Motion, later: tuple[int, ...] = ()) -> Motion:
        """The window's unknown frames predicted from its context, its last frame and the keys
        at `later` (window frames)."""
        c = self.config.context
        turned, xy, yaw, base = window_input(window, c, later)
        known = torch.from_numpy(known_frames(window.num_frames, c, later))[None]
        out = self(torch.from_numpy(base)[None], known)[0].numpy()
        return restore(decode(out, window.fps), xy, yaw)

    def later_keys(self, keys: np.ndarray, i: int, start: int) -> list[int]:
        """The keys after keys[i + 1] that a window starting at frame `start` also shows: up to
        `lookahead`, each gap at most max_gap, the window at most max_len frames."""
        later = []
        for k in keys[i + 2: i + 2 + self.config.lookahead]:
            prev = later[-1] if later else keys[i + 1]
            if k - prev - 1 > self.config.max_gap or k - start + 1 > self.max_len:
                break
            later.append(int(k))
        return later

    def fills(self, a: int, b: int, fps: float) -> bool:
        """Whether the network fills the gap between key frames a < b of a motion at `fps`:
        at most STRETCH x max_gap frames at its own rate, measured as `inbetween` resamples
        the keys."""
        scale = self.config.fps / fps
        return round(b * scale) - round(a * scale) - 1 <= STRETCH * self.config.max_gap

    @torch.no_grad()
    def inbetween(self, motion: Motion, keys: np.ndarray) -> Motion:
        """Every frame of `motion` not in `keys` filled gap by gap (each gap sees up to `context`
        frames before it, already filled ones included); keyed frames exact. A gap longer than
        max_gap is filled squeezed to max_gap frames and stretched back, up to STRETCH times;
        longer ones are interpolated. Frames outside the first and last key hold those keys."""
        keys = np.unique(np.asarray(keys, dtype=int))
        if abs(motion.fps - self.config.fps) > 1e-6:
            return _resampled(self, motion, keys)
        out = blend.interpolate_keys(motion, keys)
        root, local = out.root_position.copy(), out.local_rotations.copy()
        c = self.config.context
        for i, (a, b) in enumerate(zip(keys[:-1], keys[1:])):
            n = b - a - 1
            if n < 1 or n > STRETCH * self.config.max_gap:
                continue
            m = min(n, self.config.max_gap)  # frames the network fills
            have = min(c, a + 1)
            # The context, then the gap (its frames only placeholders: the network sees the
            # keys), the key, and the keys after it that fit (only for a gap at its own rate).
            idx = np.concatenate([np.full(c - have, a - have + 1), np.arange(a - have + 1, a + 1), np.full(m, a), [b]])
            later = self.later_keys(keys, i, a - c + 1) if m == n else []
            shown = [b]
            for k in later:
                idx = np.concatenate([idx, np.full(k - shown[-1] - 1, shown[-1]), [k]])
                shown.append(k)
            window = Motion(out.skeleton, motion.fps, root[idx], local[idx])
            filled = self.fill_window(window, tuple(int(k - a + c - 1) for k in shown[:-1]))
            gap = filled.trim(c - 1, c + m + 1)  # key a, the m filled frames, key b
            if m < n:  # back on the motion's clock: m + 2 frames become n + 2
                gap = Motion(gap.skeleton, motion.fps, gap.root_position, gap.local_rotations).resample(
                    motion.fps * (n + 1) / (m + 1)).fit(n + 2)
            root[a + 1: b], local[a + 1: b] = gap.root_position[1: n + 1], gap.local_rotations[1: n + 1]
        result = Motion(out.skeleton, motion.fps, root, rot.make_continuous(local))
        return blend.pin_to_keys(result, motion, keys)


def gap_position(known: torch.Tensor) -> torch.Tensor:
    """(B, L) bool -> (B, L): each unknown frame's place in its own gap, 1/n ... 1 for a gap of
    n frames; 0 on known frames."""
    L = known.shape[1]
    frame = torch.arange(L, device=known.device).expand_as(known)
    before = torch.cummax(torch.where(known, frame, torch.full_like(frame, -1)), dim=1).values
    after = torch.flip(torch.cummin(torch.flip(torch.where(known, frame, torch.full_like(frame, L)), [1]), dim=1).values, [1])
    t = (frame - before).float() / (after - before - 1).clamp(min=1).float()
    return torch.where(known, torch.zeros_like(t), t)


def past_first_key(known: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: the frames from the first key after the context on (the first gap's end)."""
    return torch.cummax((known & (torch.cumsum((~known).int(), 1) > 0)).int(), 1).values.bool()


def _resampled(model: Inbetweener, motion: Motion, keys: np.ndarray) -> Motion:
    """In-between at the model's fps, back at the motion's own; keys exact at the original frames."""
    fps = model.config.fps
    m = motion.resample(fps)
    scaled = np.unique(np.clip(np.round(keys * fps / motion.fps).astype(int), 0, m.num_frames - 1))
    filled = model.inbetween(m, scaled).resample(motion.fps)
    return blend.pin_to_keys(filled.fit(motion.num_frames), motion, keys)
