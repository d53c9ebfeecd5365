"""Checks of the generator on the test split (`dynamicpose eval generator`): physical sanity of
generated clips beside real ones, and captioning accuracy."""
from __future__ import annotations

import random
import time

import numpy as np
from tqdm import tqdm

from backend.data import captions as cap
from backend.data.dataset import Dataset
from backend.engine import Engine
from motioncore import canonical, features, footlock, metrics


def physical(motions) -> dict:
    """Mean foot skating (m/s), ground penetration (m), bone-length spread (m), NaN count."""
    out = {"clips": len(motions),
           "nan_clips": int(sum(not np.all(np.isfinite(m.positions())) for m in motions))}
    finite = [m for m in motions if np.all(np.isfinite(m.positions()))]
    out["foot_skating_m_s"] = round(float(np.mean([metrics.foot_skating(m) for m in finite])), 4)
    out["ground_penetration_m"] = round(float(np.mean([metrics.ground_penetration(m) for m in finite])), 4)
    out["body_speed_m_s"] = round(float(np.mean([metrics.body_speed(m) for m in finite])), 4)
    out["bone_length_spread_m"] = float(max(metrics.bone_length_spread(m) for m in finite))
    out["lowest_foot_m"] = round(float(np.mean([m.positions()[:, [m.skeleton.index(n) for n in canonical.FEET], 2].min()
                                                for m in finite])), 4)
    return out


def evaluate(engine: Engine, ds: Dataset, clips: int = 64, seed: int = 0, progress: bool = True,
             sampling=None) -> dict:
    rng = random.Random(seed)
    test = [c for c in ds.split("test") if c.captions]
    rng.shuffle(test)
    test = test[:clips]
    real, generated, times = [], [], []
    right, captioned = 0, []
    for k, c in enumerate(tqdm(test, desc="evaluating", unit="clip", disable=not progress)):
        motion = features.from_features(ds.clip_features(c), canonical.MODEL_FPS)
        real.append(motion)
        seconds = min((c.length - 1) / canonical.MODEL_FPS, 10.0)
        t0 = time.perf_counter()
        generated.append(engine.generate(c.captions[0], seconds, seed=seed + k, fps=canonical.MODEL_FPS,
                                         sampling=sampling)[0])
        times.append(time.perf_counter() - t0)
        text = engine.caption(motion)
        guess = cap.content_from_text(text)
        right += guess == c.content
        if len(captioned) < 8:
            captioned.append({"clip": c.name, "content": c.content, "caption": text, "read_as": guess})
    # The add-on's Lock feet (on by default) on the same takes: what users get on their rig.
    return {"real": physical(real), "generated": physical(generated),
            "generated_feet_locked": physical([footlock.lock_feet(m) for m in generated]),
            "caption_content_accuracy": round(right / max(1, len(test)), 3),
            "caption_examples": captioned, "seconds_per_clip_median": round(float(np.median(times)), 3)}
