"""Sentences that chain actions (`dynamicpose eval chained`): each prompt of
backend.data.prompts.CHAINED generated as one clip of SECONDS; the shipped evaluator reads its
first and its second part (the middle tenth, where one action turns into the next, is left
out). A prompt is right when both parts read as its two actions, in order.

Beside the model, the same reading of real clips composed the way training composes them (two
test clips of the prompt's contents, joined by the in-betweener): how well the reading itself
can do."""
from __future__ import annotations

import random

import numpy as np

from backend.data import compose
from backend.data.prompts import CHAINED
from motioncore import canonical, features

SECONDS = 7.0
MIDDLE = 0.1  # share of the clip around its middle that belongs to neither action


def halves(motion):
    T = motion.num_frames
    a, b = int(T * (0.5 - MIDDLE / 2)), int(T * (0.5 + MIDDLE / 2))
    return motion.trim(0, a), motion.trim(b, T)


def _score(evaluator, motions, prompts) -> dict:
    parts = [p for m in motions for p in halves(m)]
    reads = evaluator.classify(evaluator.embed_motions([features.to_features(p) for p in parts]))[0]
    rows = []
    for k, (prompt, c1, c2) in enumerate(prompts):
        r1, r2 = reads[2 * k], reads[2 * k + 1]
        rows.append({"prompt": prompt, "asked": [c1, c2], "read": [r1, r2]})
    share = lambda ok: round(float(np.mean([ok(r) for r in rows])), 3)  # noqa: E731
    return {"in_order": share(lambda r: r["read"] == r["asked"]),
            "first_right": share(lambda r: r["read"][0] == r["asked"][0]),
            "second_right": share(lambda r: r["read"][1] == r["asked"][1]),
            "swapped": share(lambda r: r["read"] == r["asked"][::-1]),
            "rows": rows}


def real_composed(ds, inbetweener, prompts=CHAINED, seed: int = 0) -> list:
    """For each prompt, two test clips of its contents joined as training joins them (None where
    the test split lacks one)."""
    rng = random.Random(seed)
    by_content: dict[str, list] = {}
    for c in ds.split("test"):
        by_content.setdefault(c.content, []).append(c)
    out = []
    for _, c1, c2 in prompts:
        if c1 not in by_content or c2 not in by_content:
            out.append(None)
            continue
        recorded = [(features.from_features(ds.clip_features(rng.choice(by_content[c])), canonical.MODEL_FPS), c, "")
                    for c in (c1, c2)]
        first, second = recorded[0][0], recorded[1][0]
        fps = first.fps
        first = first.trim(max(0, first.num_frames - round(compose.FIRST_SECONDS * fps)))
        second = second.trim(0, min(second.num_frames, round(compose.SECOND_SECONDS * fps)))
        out.append(compose.join(first, second, round(compose.JOIN_SECONDS * fps), inbetweener.inbetween))
    return out


def run(engine, evaluator, ds=None, prompts=CHAINED, seeds=(0,), progress=None) -> dict:
    result: dict = {"prompts": len(prompts), "seconds": SECONDS, "seeds": list(seeds)}
    if ds is not None and engine.inbetweener is not None:
        real = real_composed(ds, engine.inbetweener, prompts)
        kept = [(m, p) for m, p in zip(real, prompts) if m is not None]
        if kept:
            result["real_composed"] = {**_score(evaluator, [m for m, _ in kept], [p for _, p in kept]),
                                       "prompts": len(kept)}
    per_seed = []
    for seed in seeds:
        made = [engine.generate(p, SECONDS, seed=seed * 1000 + k, fps=canonical.MODEL_FPS)[0]
                for k, (p, _, _) in enumerate(prompts)]
        per_seed.append(_score(evaluator, made, prompts))
        if progress:
            progress()
    result["model"] = {m: round(float(np.mean([s[m] for s in per_seed])), 3)
                       for m in ("in_order", "first_right", "second_right", "swapped")}
    result["model"]["per_seed"] = per_seed
    return result


def table(result: dict) -> str:
    lines = [f"{result['prompts']} chained prompts, {result['seconds']:g} s each, seeds {result['seeds']}; "
             "share read right in both parts, in order (first part right / second part right / read swapped)"]
    for name in ("real_composed", "model"):
        if name in result:
            r = result[name]
            lines.append(f"  {name:14s} {r['in_order']:.2f}  ({r['first_right']:.2f} / {r['second_right']:.2f} / "
                         f"{r['swapped']:.2f})")
    return "\n".join(lines)
