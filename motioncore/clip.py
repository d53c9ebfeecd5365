"""The motion container shared by the add-on, the backend and the file formats."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import rotations as rot
from .skeleton import Skeleton, forward_kinematics


@dataclass(frozen=True)
class Motion:
    """A clip on one skeleton.

    root_position: (T, 3) world position of joint 0, skeleton units (metres for canonical).
    local_rotations: (T, J, 4) wxyz, each joint relative to its parent (joint 0: to world).
    local_translations: optional (T, J, 3) per-frame joint offsets; None means the skeleton's
        rest offsets (the usual case; BVH files that animate every joint's position keep theirs
        here so they round-trip exactly).
    fps: frames per second.
    """

    skeleton: Skeleton
    fps: float
    root_position: np.ndarray
    local_rotations: np.ndarray
    local_translations: np.ndarray | None = None

    def __post_init__(self) -> None:
        J = len(self.skeleton)
        pos = np.asarray(self.root_position, dtype=float)
        q = np.asarray(self.local_rotations, dtype=float)
        object.__setattr__(self, "root_position", pos)
        object.__setattr__(self, "local_rotations", q)
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {self.fps!r}")
        if q.ndim != 3 or q.shape[1:] != (J, 4):
            raise ValueError(f"local_rotations must be (T, {J}, 4), got {q.shape}")
        if pos.shape != (q.shape[0], 3):
            raise ValueError(f"root_position must be ({q.shape[0]}, 3), got {pos.shape}")
        if q.shape[0] == 0:
            raise ValueError("a motion needs at least one frame")
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(q))):
            raise ValueError("motion contains NaN or inf values")
        if self.local_translations is not None:
            t = np.asarray(self.local_translations, dtype=float)
            object.__setattr__(self, "local_translations", t)
            if t.shape != (q.shape[0], J, 3):
                raise ValueError(f"local_translations must be ({q.shape[0]}, {J}, 3), got {t.shape}")
            if not np.all(np.isfinite(t)):
                raise ValueError("motion translations contain NaN or inf values")

    # -- basic facts -------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self.local_rotations.shape[0]

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps

    def world(self) -> tuple[np.ndarray, np.ndarray]:
        """(world rotations (T, J, 4), world positions (T, J, 3))."""
        return forward_kinematics(self.skeleton, self.local_rotations, self.root_position,
                                  self.local_translations)

    def positions(self) -> np.ndarray:
        """(T, J, 3) world joint positions."""
        return self.world()[1]

    # -- editing -----------------------------------------------------------------------------
    def fit(self, frames: int) -> "Motion":
        """Exactly `frames` frames: cut, or held on the last pose (resampling between frame
        rates can come a frame short of a length)."""
        if frames < 1:
            raise ValueError(f"a motion needs at least 1 frame, got {frames}")
        pad = frames - self.num_frames
        if pad <= 0:
            return self.trim(0, frames)

        def held(a):
            return None if a is None else np.concatenate([a, np.repeat(a[-1:], pad, axis=0)])

        return replace(self, root_position=held(self.root_position), local_rotations=held(self.local_rotations),
                       local_translations=held(self.local_translations))

    def raised(self, height: float) -> "Motion":
        """The same motion `height` higher (skeleton units)."""
        return replace(self, root_position=self.root_position + [0.0, 0.0, height])

    def trim(self, start: int, stop: int | None = None) -> "Motion":
        """Frames [start, stop) as a new motion."""
        stop = self.num_frames if stop is None else stop
        if not 0 <= start < stop <= self.num_frames:
            raise ValueError(f"cannot trim frames [{start}, {stop}) from a {self.num_frames}-frame motion")
        sl = slice(start, stop)
        return replace(self, root_position=self.root_position[sl],
                       local_rotations=self.local_rotations[sl],
                       local_translations=None if self.local_translations is None
                       else self.local_translations[sl])

    def resample(self, fps: float) -> "Motion":
        """Same motion at another frame rate, by Catmull-Rom interpolation of the root and of
        sign-continuous quaternions (renormalised): smooth, and exact at shared frames.

        Frame 0 stays at time 0; the last output frame is the last one at or before the
        original's end.
        """
        if not (np.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if fps == self.fps:
            return self
        n = int(np.floor(self.duration * fps + 1e-6)) + 1
        src = np.arange(n) * (self.fps / fps)  # fractional source frame of each output frame
        q = rot.make_continuous(self.local_rotations)
        t = None if self.local_translations is None else _catmull_rom(self.local_translations, src)
        return Motion(self.skeleton, float(fps), _catmull_rom(self.root_position, src),
                      rot.normalize(_catmull_rom(q, src)), t)

    def mirror(self) -> "Motion":
        """Swap left and right (reflection through the X = 0 plane; X is the character's
        left-right axis). Needs a skeleton whose rest pose is itself mirror-symmetric with
        world-aligned joint frames, as the canonical skeleton is."""
        sk = self.skeleton
        pair = sk.mirror_indices()
        reflect = np.array([-1.0, 1.0, 1.0])
        if not np.allclose(sk.offsets[pair] * reflect, sk.offsets, atol=1e-6):
            raise ValueError("mirror needs a left/right symmetric rest pose; "
                             "convert the motion to the canonical skeleton first")
        # M R M with M = diag(-1, 1, 1) keeps w and x and negates y and z.
        q = self.local_rotations[:, pair] * np.array([1.0, 1.0, -1.0, -1.0])
        t = None if self.local_translations is None else self.local_translations[:, pair] * reflect
        return Motion(sk, self.fps, self.root_position * reflect, q, t)

def _catmull_rom(a: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Sample a (T, ...) at fractional frames src (n,) with a Catmull-Rom spline.

    The ends are padded by linear extrapolation, so the first and last intervals keep their
    velocity instead of easing out.
    """
    if a.shape[0] == 1:
        return np.repeat(a, len(src), axis=0)
    padded = np.concatenate([2 * a[:1] - a[1:2], a, 2 * a[-1:] - a[-2:-1]])
    last = a.shape[0] - 1
    lo = np.clip(np.floor(src).astype(int), 0, last)
    w = (src - lo).reshape(-1, *([1] * (a.ndim - 1)))
    p0, p1, p2, p3 = (padded[np.clip(lo + k, 0, last + 2)] for k in range(4))
    return p1 + 0.5 * w * ((p2 - p0) + w * ((2 * p0 - 5 * p1 + 4 * p2 - p3)
                                            + w * (3 * (p1 - p2) + p3 - p0)))


def concatenate(motions: list[Motion]) -> Motion:
    """Join clips end to end; they must share skeleton and fps."""
    if not motions:
        raise ValueError("nothing to concatenate")
    first = motions[0]
    for m in motions[1:]:
        if not m.skeleton.same_shape(first.skeleton) or m.fps != first.fps:
            raise ValueError("concatenated motions must share skeleton and fps")
    has_t = [m.local_translations is not None for m in motions]
    if any(has_t) and not all(has_t):
        raise ValueError("either all or none of the motions may carry local translations")
    return Motion(
        first.skeleton, first.fps,
        np.concatenate([m.root_position for m in motions]),
        np.concatenate([m.local_rotations for m in motions]),
        np.concatenate([m.local_translations for m in motions]) if all(has_t) else None,
    )
