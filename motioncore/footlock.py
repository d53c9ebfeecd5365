"""Feet that stick: on canonical motion, find where each foot joint is planted and hold it
there, by turning the leg (two-bone IK from the hip, the knee kept in its own plane) and the
foot, with blends in and out so nothing pops.

Generated motion lets planted feet drift (0.18 m/s against real capture's 0.08 in
`dynamicpose eval generator`; 0.077 once locked); the body, the hips and the upper body are
left as they are, so only the legs change, and only near contacts."""
from __future__ import annotations

import numpy as np

from . import rotations as rot
from .blend import smoothstep
from .canonical import FEET
from .clip import Motion

LEGS = (("UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L"), ("UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R"))
# Planted: within this of the joint's lowest point in the clip (m, as features.CONTACT_HEIGHT),
# slower than CONTACT_SPEED (m/s) at some frame and slower than HOLD_SPEED throughout: a foot
# that lands and then drifts (what generated feet do) is held all the way, a foot that starts
# a swing slowly is not caught by it. On 64 generated test takes (eval generator; unlocked
# 0.182 m/s, real clips 0.082): 0.25/0.6 left 0.095, 0.4/1.0 0.081, 0.6/1.0 0.077.
CONTACT_HEIGHT = 0.06
CONTACT_SPEED = 0.6
HOLD_SPEED = 1.0
SOFT = 0.97                  # of the leg's length: where reaching further starts to give
MIN_CONTACT_SECONDS = 0.1    # shorter runs are touches, not steps
BLEND_SECONDS = 0.15         # the hold fades in before a contact and out after it
KEY_STILL = 0.02             # m: a foot joint this close at two keys, low at both, stayed planted
KEY_GAP_SECONDS = 1.0        # between keys further apart it may have stepped away and back


def contacts(motion: Motion, height: float | None = None, speed: float | None = None) -> np.ndarray:
    """(T, 4) bool: each of FEET planted at each frame (low and slow, in runs of at least
    MIN_CONTACT_SECONDS); height and speed default to CONTACT_HEIGHT and CONTACT_SPEED."""
    height = CONTACT_HEIGHT if height is None else height
    speed = CONTACT_SPEED if speed is None else speed
    sk = motion.skeleton
    feet = motion.positions()[:, [sk.index(n) for n in FEET]]
    v = np.zeros(feet.shape[:2])
    if len(feet) > 1:
        step = np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1) * motion.fps
        v[1:], v[0] = step, step[0]
        v[1:-1] = np.minimum(step[:-1], step[1:])  # a frame between a slow and a fast step is planted
    low = feet[..., 2] - feet[..., 2].min(axis=0) < height  # each joint over its own lowest point
    planted = low & (v < HOLD_SPEED)
    shortest = max(1, int(round(MIN_CONTACT_SECONDS * motion.fps)))
    for j in range(planted.shape[1]):
        for a, b in _runs(planted[:, j]):
            if b - a < shortest or not np.any(v[a:b, j] < speed):
                planted[a:b, j] = False
    return planted


def key_contacts(motion: Motion, keys) -> np.ndarray:
    """(T, 4) bool: each of FEET planted from one key to the next where the keys show it low
    and still (within KEY_STILL at both, over a gap of at most KEY_GAP_SECONDS): what the
    animator's own keys say about contacts the filled frames may have lost."""
    sk = motion.skeleton
    feet = motion.positions()[:, [sk.index(n) for n in FEET]]
    low = feet[..., 2] - feet[..., 2].min(axis=0) < CONTACT_HEIGHT
    out = np.zeros(feet.shape[:2], dtype=bool)
    keys = np.unique(np.asarray(keys, dtype=int))
    for a, b in zip(keys[:-1], keys[1:]):
        if b - a < 2 or b - a > KEY_GAP_SECONDS * motion.fps:
            continue
        still = low[a] & low[b] & (np.linalg.norm(feet[b, :, :2] - feet[a, :, :2], axis=-1) < KEY_STILL)
        out[a: b + 1, still] = True
    return out


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _hold_offsets(xy: np.ndarray, planted: np.ndarray, blend: int, anchors=()) -> tuple[np.ndarray, np.ndarray]:
    """((T, 2) horizontal offsets that hold a joint at its mean place over each planted run
    (at the places of the `anchors` inside the run, where there are any: keys stay put),
    fading to nothing over `blend` frames on either side (shared where two runs are near),
    (T,) how much of each frame is held)."""
    T = len(xy)
    runs = _runs(planted)
    if not runs:
        return np.zeros((T, 2)), np.zeros(T)
    offsets = np.zeros((T, 2))
    weights = np.zeros(T)
    t = np.arange(T)
    anchors = np.asarray(sorted(anchors), dtype=int)
    for a, b in runs:
        inside = anchors[(anchors >= a) & (anchors < b)]
        edge = np.clip(t, a, b - 1)
        # Held at the keys' own places inside the run (gliding straight from one to the next,
        # so every key stays exact), else at the run's mean place.
        held = (np.stack([np.interp(edge, inside, xy[inside, i]) for i in range(2)], axis=-1) if inside.size
                else xy[a:b].mean(axis=0))
        # Inside the run: what it takes to be there; outside: the offset at its nearer edge,
        # fading (not a pull toward the spot, which grows as the foot swings away).
        off = held - xy[edge]
        dist = np.where(t < a, a - t, np.where(t >= b, t - b + 1, 0))
        w = smoothstep(np.clip(1.0 - dist / (blend + 1), 0.0, 1.0))  # no kink where the hold starts fading
        offsets += w[:, None] * off
        weights += w
    share = np.where(weights > 1.0, weights, 1.0)
    return offsets / share[:, None], np.minimum(weights, 1.0)


def _two_bone(hip, knee, ankle, target):
    """Knee and ankle positions for the ankle at `target` (as near as the leg reaches), the
    hip fixed, the bone lengths kept and the knee in the plane it bent in."""
    l1 = np.linalg.norm(knee - hip, axis=-1, keepdims=True)
    l2 = np.linalg.norm(ankle - knee, axis=-1, keepdims=True)
    to = target - hip
    d = np.linalg.norm(to, axis=-1, keepdims=True)
    u = to / np.maximum(d, 1e-9)
    # Soft reach: past SOFT of the leg's length the ankle falls short of the target smoothly
    # instead of the knee locking straight and snapping back when the target comes near.
    full, soft = l1 + l2, SOFT * (l1 + l2)
    over = np.maximum(d - soft, 0.0)
    d = np.where(d > soft, soft + (full - soft) * (1.0 - np.exp(-over / (full - soft))), d)
    d = np.clip(d, np.abs(l1 - l2) + 1e-6, full - 1e-6)
    pole = (knee - hip) - np.sum((knee - hip) * u, axis=-1, keepdims=True) * u
    pole = pole / np.maximum(np.linalg.norm(pole, axis=-1, keepdims=True), 1e-9)
    along = (l1 ** 2 - l2 ** 2 + d ** 2) / (2 * d)
    up = np.sqrt(np.clip(l1 ** 2 - along ** 2, 0.0, None))
    return hip + along * u + up * pole, hip + d * u


def lock_feet(motion: Motion, blend_seconds: float = BLEND_SECONDS, fixed=None) -> Motion:
    """`motion` with each planted foot held where it is planted: the ankle by the leg's IK,
    the toes by turning the foot about the ankle. Only leg and foot rotations change; frames
    far from any contact, and the `fixed` frames (the user's keys: the hold fades out toward
    them), come back bit-identical. Where the keys show a foot planted (`key_contacts`), it is
    held between them even if the filled frames lifted it."""
    sk = motion.skeleton
    fixed = np.asarray([] if fixed is None else sorted(fixed), dtype=int)
    planted = contacts(motion)
    if fixed.size:
        planted |= key_contacts(motion, fixed)
    if not planted.any():
        return motion
    world_r, world_p = motion.world()
    blend = max(1, int(round(blend_seconds * motion.fps)))
    frame = np.arange(motion.num_frames)
    local = motion.local_rotations.copy()
    for thigh, shin, foot, toes in LEGS:
        h, k, a, t = (sk.index(n) for n in (thigh, shin, foot, toes))
        a_off, a_held = _hold_offsets(world_p[:, a, :2], planted[:, FEET.index(foot)], blend, fixed)
        t_off, _ = _hold_offsets(world_p[:, t, :2], planted[:, FEET.index(toes)], blend, fixed)
        # A fixed frame the hold would move (one outside a planted run, or a second key in a
        # run that slid) keeps its pose: the hold fades out toward it.
        for off in (a_off, t_off):
            moving = fixed[np.any(off[fixed] != 0, axis=1)] if fixed.size else fixed
            if moving.size:
                away = np.abs(frame[:, None] - moving[None]).min(axis=1)
                off *= smoothstep(np.clip(away / (blend + 1), 0.0, 1.0))[:, None]
        # Heel up, toes down: the ankle goes where the held toes put it (the foot keeps its turn).
        a_off = a_off + (1.0 - a_held)[:, None] * t_off
        moved = np.flatnonzero(np.any(a_off != 0, axis=1) | np.any(t_off != 0, axis=1))
        if moved.size == 0:
            continue
        hip, knee, ankle, toe = (world_p[moved, j] for j in (h, k, a, t))
        target = ankle + np.pad(a_off[moved], ((0, 0), (0, 1)))
        knee2, ankle2 = _two_bone(hip, knee, ankle, target)
        turn_thigh = rot.shortest_arc(knee - hip, knee2 - hip)
        thigh_r = rot.multiply(turn_thigh, world_r[moved, h])
        shin_before = rot.multiply(turn_thigh, world_r[moved, k])  # the shin as the turned thigh carries it
        turn_shin = rot.shortest_arc(rot.rotate(turn_thigh, ankle - knee), ankle2 - knee2)
        shin_r = rot.multiply(turn_shin, shin_before)
        # The foot keeps its world turn, then turns about the ankle toward where the toes are held
        # (they are off it only where the leg could not reach, or ankle and toes hold apart).
        toe_now = ankle2 + (toe - ankle)
        toe_goal = toe + np.pad(t_off[moved], ((0, 0), (0, 1)))
        foot_r = rot.multiply(rot.shortest_arc(toe_now - ankle2, toe_goal - ankle2), world_r[moved, a])
        toes_r = world_r[moved, t]
        parent = world_r[moved, sk.parents[h]]
        local[moved, h] = rot.multiply(rot.conjugate(parent), thigh_r)
        local[moved, k] = rot.multiply(rot.conjugate(thigh_r), shin_r)
        local[moved, a] = rot.multiply(rot.conjugate(shin_r), foot_r)
        local[moved, t] = rot.multiply(rot.conjugate(foot_r), toes_r)
    # Each changed rotation on the original's side of the double cover: curves see no flip.
    flip = np.sum(local * motion.local_rotations, axis=-1, keepdims=True) < 0
    return Motion(sk, motion.fps, motion.root_position.copy(), np.where(flip, -local, local),
                  motion.local_translations)
