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


def smoothstep(t: np.ndarray) -> np.ndarray:
    # Zero slope at both keys: the correction adds no velocity jump where it starts and ends.
    return t * t * (3.0 - 2.0 * t)


def pin_to_keys(generated: Motion, reference: Motion, keys: np.ndarray) -> Motion:
    """`generated` corrected so that at every frame in `keys` it equals `reference` exactly.

    Both motions share skeleton, fps and frame count. Between consecutive keys the correction
    (a rotation per joint, an offset for the root) is interpolated; before the first key and
    after the last it is held. Frames listed in `keys` are copied from the reference verbatim.
    """
    keys = np.unique(np.asarray(keys, dtype=int))
    keyed = np.zeros((generated.num_frames, len(generated.skeleton)), dtype=bool)
    if keys.size and (keys[0] < 0 or keys[-1] >= generated.num_frames):
        raise ValueError(f"key frames must lie in 0..{generated.num_frames - 1}")
    keyed[keys] = True
    return pin_joint_keys(generated, reference, keyed)


def pin_joint_keys(generated: Motion, reference: Motion, keyed: np.ndarray) -> Motion:
    """pin_to_keys with keys per joint: keyed (T, J) bool says which joints are keyed at which
    frames (an animator's key on an arm alone). Each joint is pinned at its own keys; the root
    position follows the root joint's keys."""
    if generated.num_frames != reference.num_frames or not generated.skeleton.same_shape(reference.skeleton):
        raise ValueError("pinning needs two motions of the same skeleton and length")
    T, J = generated.num_frames, len(generated.skeleton)
    if keyed.shape != (T, J):
        raise ValueError(f"keyed must be (frames, joints) = ({T}, {J}), got {keyed.shape}")
    local = generated.local_rotations.copy()
    root = generated.root_position.copy()
    by_keys: dict[tuple[int, ...], list[int]] = {}  # joints sharing key frames are pinned together
    for j in range(J):
        by_keys.setdefault(tuple(np.flatnonzero(keyed[:, j])), []).append(j)
    for frames, joints in by_keys.items():
        if not frames:
            continue
        keys, js = np.array(frames), np.array(joints)
        a, b, w = _segments(keys, T)
        g, r = generated.local_rotations[:, js], reference.local_rotations[:, js]
        off = rot.make_continuous(rot.multiply(r[keys], rot.conjugate(g[keys])))  # (K, j, 4)
        pinned = rot.multiply(rot.slerp(off[a], off[b], w[:, None]), g)
        pinned[keys] = r[keys]
        local[:, js] = pinned
        if 0 in joints:
            off_pos = reference.root_position[keys] - generated.root_position[keys]
            root = generated.root_position + off_pos[a] + w[:, None] * (off_pos[b] - off_pos[a])
            root[keys] = reference.root_position[keys]
    return Motion(reference.skeleton, reference.fps, root, rot.make_continuous(local))


def _segments(keys: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every frame: the keys before and after it (indices into keys) and the smoothstep
    weight between them; held (weight 0 or 1) before the first key and after the last."""
    if len(keys) == 1:
        zero = np.zeros(T, dtype=int)
        return zero, zero, np.zeros(T)
    frames = np.arange(T)
    a = np.clip(np.searchsorted(keys, frames, side="right") - 1, 0, len(keys) - 2)
    b = a + 1
    w = np.clip((frames - keys[a]) / (keys[b] - keys[a]).astype(float), 0.0, 1.0)
    return a, b, smoothstep(w)


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


def keep_part(changed: Motion, original: Motion, joints: tuple[str, ...]) -> Motion:
    """`changed` on the named canonical joints only: every other joint's local rotation, and
    the root's travel unless Hips is named, are `original`'s, bit for bit."""
    names = changed.skeleton.names
    unknown = sorted(set(joints) - set(names))
    if unknown:
        raise ValueError(f"unknown joints {unknown}")
    local = original.local_rotations.copy()
    idx = [names.index(j) for j in joints]
    q = changed.local_rotations[:, idx]
    flip = np.sum(q * local[:, idx], axis=-1, keepdims=True) < 0  # each frame's sign as the original's
    local[:, idx] = np.where(flip, -q, q)
    root = changed.root_position.copy() if "Hips" in joints else original.root_position.copy()
    return Motion(original.skeleton, original.fps, root, local)


def cycle_keys(motion: Motion, frames: int) -> tuple[Motion, list[int]]:
    """What making `motion` a seamless cycle asks of an in-between (with loop=True): the
    motion with its last frame set to its first pose, carried on by the clip's own horizontal
    travel (a cycle repeated with offset walks on), and the key frames: every frame but the
    last `frames` - 1 before it. Raises ValueError if the clip is too short for that."""
    T = motion.num_frames
    if not 2 <= frames <= T - 3:
        raise ValueError(f"a loop regenerates 2 to {T - 3} frames at the end of this {T}-frame clip, got {frames}")
    root, local = motion.root_position.copy(), motion.local_rotations.copy()
    root[-1] = root[0] + np.append(root[-1, :2] - root[0, :2], 0.0)
    local[-1] = local[0]
    return Motion(motion.skeleton, motion.fps, root, local), [*range(T - frames), T - 1]


def interpolate_keys(motion: Motion, keys: np.ndarray) -> Motion:
    """The motion's key frames joined by slerp (rotations) and linear root motion; frames
    outside the first and last key hold those keys."""
    keys = np.unique(np.asarray(keys, dtype=int))
    T = motion.num_frames
    if keys.size == 1:
        keys = np.array([keys[0], keys[0] + 1]) if keys[0] + 1 < T else np.array([keys[0] - 1, keys[0]])
    frames = np.arange(T)
    b = np.clip(np.searchsorted(keys, frames, side="right"), 1, len(keys) - 1)
    a = b - 1
    w = np.clip((frames - keys[a]) / (keys[b] - keys[a]), 0.0, 1.0)
    q = motion.local_rotations
    local = rot.slerp(q[keys[a]], q[keys[b]], w[:, None])
    p = motion.root_position
    root = p[keys[a]] + w[:, None] * (p[keys[b]] - p[keys[a]])
    return Motion(motion.skeleton, motion.fps, root, rot.make_continuous(local))


# How far from a key match_velocities bends the frames, at most. The bend moves frames by up to
# 0.15 x its length x the speed difference, so a long one adds error where it removes the pop:
# on 60 held-out clips with keys every 10-45 frames (bench keys), 0.5 s left the frames 1-8%
# further from the capture than no bend at all; 0.2 s leaves them as near or up to 2% nearer,
# and the acceleration at keys stays below the capture's (2.65 mm/frame^2 against 8.4).
BEND_SECONDS = 0.2


def _bump(u: np.ndarray) -> np.ndarray:
    # u (1 - u)^2: zero at the key (u = 0) with slope 1, zero with zero slope at the far key.
    return u * (1.0 - u) ** 2


def match_velocities(motion: Motion, keys: np.ndarray, loop: bool = False) -> Motion:
    """Remove the velocity jump ("pop") at each key between two filled gaps.

    A gap is filled knowing the poses around it, not how the next gap will leave the key, so
    arrival and departure speeds differ. At each key the frames on both sides are bent (a
    rotation per joint, an offset for the root, fading to nothing at the neighbouring keys or
    BEND_SECONDS away, whichever is nearer) so
    that both speeds become their mean; where one side is keyed frame by frame (context), the
    other side takes that side's speed. Key frames themselves never move. With loop=True the
    last key and the first are one pose, and the cycle is made seamless across the wrap.
    """
    keys = np.unique(np.asarray(keys, dtype=int))
    q, p = motion.local_rotations, motion.root_position
    turn = np.zeros(q.shape[:-1] + (3,))  # rotation vectors to apply, per frame and joint
    shift = np.zeros_like(p)

    def velocity(i: int) -> tuple[np.ndarray, np.ndarray]:  # from frame i to i + 1
        return rot.to_axis_angle(rot.multiply(q[i + 1], rot.conjugate(q[i]))), p[i + 1] - p[i]

    # A bend peaks at about 0.15 x its length times the velocity difference, so over a long gap
    # it must not run the whole way: a 60-frame one turned a swinging arm 9 times its step per
    # frame, raising it overhead (an infilled walk then read as a raised hand or a bow).
    reach = max(2, int(round(BEND_SECONDS * motion.fps)))
    seams = [(keys[i - 1], keys[i], keys[i], keys[i + 1]) for i in range(1, len(keys) - 1)]
    if loop and len(keys) >= 2:
        seams.append((keys[-2], keys[-1], keys[0], keys[1]))  # arrive at the last key, leave the first
    for before, arrive, leave, after in seams:
        free_in, free_out = arrive - before - 1, after - leave - 1
        if free_in <= 0 and free_out <= 0:
            continue
        (w_in, v_in), (w_out, v_out) = velocity(arrive - 1), velocity(leave)
        if free_in > 0 and free_out > 0:
            w_goal, v_goal = (w_in + w_out) / 2, (v_in + v_out) / 2
        elif free_out > 0:
            w_goal, v_goal = w_in, v_in
        else:
            w_goal, v_goal = w_out, v_out
        if free_in > 0:
            span = min(arrive - before, reach)
            t = np.arange(arrive - span + 1, arrive)
            weight = _bump((arrive - t) / span) / _bump(1.0 / span)
            turn[t] -= weight[:, None, None] * (w_goal - w_in)
            shift[t] -= weight[:, None] * (v_goal - v_in)
        if free_out > 0:
            span = min(after - leave, reach)
            t = np.arange(leave + 1, leave + span)
            weight = _bump((t - leave) / span) / _bump(1.0 / span)
            turn[t] += weight[:, None, None] * (w_goal - w_out)
            shift[t] += weight[:, None] * (v_goal - v_out)
    local = rot.multiply(rot.from_axis_angle(turn), q)
    local[keys] = q[keys]
    root = p + shift
    root[keys] = p[keys]
    return Motion(motion.skeleton, motion.fps, root, rot.make_continuous(local))
