"""Composed clips: two recorded clips done one after the other, so that a model learns sentences
that chain actions ("walks forward, then waves") and infill that follows its text rather than
its context (a wave asked for between two keyed walks). Every Bandai clip holds one action, so
neither is in the data as recorded.

The second clip is moved to carry on where the first ends (its root over the first's last root,
facing the same way) and the frames between are filled by `fill` (the in-betweener), as the
engine joins an animator's keys."""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from motioncore.clip import Motion, concatenate
from motioncore.windows import face_forward, restore

FIRST_SECONDS, SECOND_SECONDS = 3.0, 4.0  # the end of the first action, the start of the second
JOIN_SECONDS = 0.5


@dataclass
class Composed:
    motion: Motion
    second_start: int  # first frame of the second action (after the join)
    parts: list[tuple[str, str]]  # (content, style) of each action, in order


def join(first: Motion, second: Motion, join_frames: int, fill: Callable[[Motion, np.ndarray], Motion]) -> Motion:
    """`first`, then `second` carried on from where `first` ends, `join_frames` frames between
    filled by fill(motion, key frames)."""
    end = face_forward(first, first.num_frames - 1)
    start = face_forward(second, 0)[0]
    placed = restore(start, end[1], end[2])
    hold = first.trim(first.num_frames - 1).fit(join_frames) if join_frames else None
    whole = concatenate([first] + ([hold] if hold is not None else []) + [placed])
    keys = np.concatenate([np.arange(first.num_frames), first.num_frames + join_frames + np.arange(second.num_frames)])
    return fill(whole, keys) if join_frames else whole


def compose(clips: list[tuple[Motion, str, str]], count: int, fill, rng: random.Random) -> Iterator[Composed]:
    """`count` pairs of clips ((motion, content, style), all at one fps) of different contents,
    each content first drawn alike (so the rarer contents are chained as often as the rest):
    the first's last FIRST_SECONDS, a JOIN_SECONDS join, the second's first SECOND_SECONDS.
    Made one at a time, as they are asked for (a progress bar can follow)."""
    by_content: dict[str, list[tuple[Motion, str, str]]] = {}
    for c in clips:
        by_content.setdefault(c[1], []).append(c)
    contents = sorted(by_content)
    if len(contents) < 2:
        raise ValueError("composing needs clips of at least two contents")

    def made() -> Iterator[Composed]:
        for _ in range(count):
            a, b = rng.sample(contents, 2)
            (ma, ca, sa), (mb, cb, sb) = rng.choice(by_content[a]), rng.choice(by_content[b])
            fps = ma.fps
            first = ma.trim(max(0, ma.num_frames - round(FIRST_SECONDS * fps)))
            second = mb.trim(0, min(mb.num_frames, round(SECOND_SECONDS * fps)))
            gap = round(JOIN_SECONDS * fps)
            yield Composed(join(first, second, gap, fill), first.num_frames + gap, [(ca, sa), (cb, sb)])

    return made()
