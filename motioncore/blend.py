"""Making generated motion meet the user's frames exactly.

The model's output is close to, but never exactly on, the poses it was given (tokens are
lossy). `pin_to_keys` measures the error at each key frame and spreads the correction
smoothly between keys, so keyed frames come out exact and the frames between them keep the
generated detail: the residual idea of the strongest in-betweeners, applied after the fact.
"""
from __future__ import annotations

import numpy as np

from . import rotations as rot
from .clip import Motion


def _smoothstep(t: np.ndarray) -> np.ndarray:
    # Zero slope at both keys: the correction adds no velocity jump where it starts and ends.
    return t * t * (3.0 - 2.0 * t)


def pin_to_keys(generated: Motion, reference: Motion, keys: np.ndarray) -> Motion:
    """`generated` corrected so that at every frame in `keys` it equals `reference` exactly.

    Both motions share skeleton, fps and frame count. Between consecutive keys the correction
    (a rotation per joint, an offset for the root) is interpolated; before the first key and
    after the last it is held. Frames listed in `keys` are copied from the reference verbatim.
    """
    if generated.num_frames != reference.num_frames or not generated.skeleton.same_shape(reference.skeleton):
        raise ValueError("pin_to_keys needs two motions of the same skeleton and length")
    keys = np.unique(np.asarray(keys, dtype=int))
    T = generated.num_frames
    if keys.size == 0:
        return generated
    if keys[0] < 0 or keys[-1] >= T:
        raise ValueError(f"key frames must lie in 0..{T - 1}")
    g_rot, r_rot = generated.local_rotations, reference.local_rotations
    off_rot = rot.multiply(r_rot[keys], rot.conjugate(g_rot[keys]))  # (K, J, 4)
    off_rot = rot.make_continuous(off_rot)
    off_pos = reference.root_position[keys] - generated.root_position[keys]  # (K, 3)

    frames = np.arange(T)
    seg = np.clip(np.searchsorted(keys, frames, side="right") - 1, 0, max(len(keys) - 2, 0))
    if len(keys) == 1:
        a = b = np.zeros(T, dtype=int)
        w = np.zeros(T)
    else:
        a, b = seg, seg + 1
        span = (keys[b] - keys[a]).astype(float)
        w = np.clip((frames - keys[a]) / span, 0.0, 1.0)
    w = _smoothstep(w)
    corr = rot.slerp(off_rot[a], off_rot[b], w[:, None])
    local = rot.multiply(corr, g_rot)
    root = generated.root_position + off_pos[a] + w[:, None] * (off_pos[b] - off_pos[a])
    local[keys], root[keys] = r_rot[keys], reference.root_position[keys]
    return Motion(reference.skeleton, reference.fps, root, rot.make_continuous(local))


def splice(inside: Motion, outside: Motion, start: int, stop: int) -> Motion:
    """`outside` with frames [start, stop) taken from `inside` (same length and skeleton);
    frames outside the range are the outside motion's own values, bit for bit."""
    root = outside.root_position.copy()
    local = outside.local_rotations.copy()
    root[start:stop] = inside.root_position[start:stop]
    q = inside.local_rotations[start:stop]
    # Keep the quaternion sign of the frame before, so fcurves see no sign flip at the seam.
    if start > 0:
        flip = np.sum(q[:1] * local[start - 1: start], axis=-1, keepdims=True) < 0
        q = np.where(flip, -q, q)
    local[start:stop] = rot.make_continuous(q)
    return Motion(outside.skeleton, outside.fps, root, local)


def interpolate_keys(motion: Motion, keys: np.ndarray) -> Motion:
    """The motion's key frames joined by slerp (rotations) and linear root motion; frames
    outside the first and last key hold those keys."""
    keys = np.unique(np.asarray(keys, dtype=int))
    T = motion.num_frames
    frames = np.arange(T)
    b = np.clip(np.searchsorted(keys, frames, side="right"), 1, len(keys) - 1)
    a = b - 1
    w = np.clip((frames - keys[a]) / (keys[b] - keys[a]), 0.0, 1.0)
    q = motion.local_rotations
    local = rot.slerp(q[keys[a]], q[keys[b]], w[:, None])
    p = motion.root_position
    root = p[keys[a]] + w[:, None] * (p[keys[b]] - p[keys[a]])
    return Motion(motion.skeleton, motion.fps, root, rot.make_continuous(local))
