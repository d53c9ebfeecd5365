"""What an adapter learnt, beside the default model, on the clips it was trained on:

- reconstruction: each clip's middle half regenerated from its caption and the frames around
  it (the engine's edit), mean joint position error there against the clip (cm);
- generation: a take from each caption at the clip's length, and its distance to the nearest
  of the user's clips in the evaluator's motion embedding space (where the weights have one);
- a picture: per caption, the user's clip, the default's take and the adapter's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from motioncore import features
from motioncore.canonical import MODEL_FPS
from motioncore.metrics import mpjpe

MAX_CLIPS = 8      # clips the report looks at (each costs two edits and two takes)
PICTURE_ROWS = 3   # captions drawn


def _embedder(weights: Path):
    """The evaluator of these weights, else the shipped one's (the same motion features)."""
    from backend.models.evaluator import Evaluator
    from backend.paths import default_weights_dir

    folder = next((f for f in (Path(weights) / "evaluator", default_weights_dir() / "evaluator") if f.is_dir()), None)
    if folder is None:
        return None
    ev = Evaluator.from_pretrained(folder)
    return lambda motions: ev.embed_motions([features.to_features(m.resample(MODEL_FPS)) for m in motions])


def _nearest(emb: np.ndarray, clips: np.ndarray) -> np.ndarray:
    return np.linalg.norm(emb[:, None] - clips[None], axis=-1).min(1)


def measure(engine, name: str, motions: list, captions: list, picture: Path | None = None,
            seed: int = 0, seeds: int = 1) -> dict:
    """The report's figures (and picture) for adapter `name` against the default, takes from
    `seeds` seeds per caption (from `seed` on); the engine is left on the adapter it was using."""
    from backend import adapters as store

    was = engine.adapter
    firsts = [c if isinstance(c, str) else next(iter(c), "") for c in captions]  # a clip may have several
    pairs = [(m, c) for m, c in zip(motions, firsts) if c.strip()][:MAX_CLIPS]
    takes: dict[str, list] = {}
    recon: dict[str, list[float]] = {}
    try:
        for which in (store.DEFAULT, name):
            engine.use_adapter(which)
            takes[which], recon[which] = [], []
            for m, text in pairs:
                for k in range(seeds):  # caption-major: takes[which][i * seeds] is caption i's first
                    takes[which].append(engine.generate(text, min(m.duration, 20.0), seed=seed + k, fps=m.fps)[0])
                a, b = m.num_frames // 4, max(m.num_frames // 4 + 1, 3 * m.num_frames // 4)
                edited = engine.edit(m, a, b, text, seed=seed)
                recon[which].append(100 * mpjpe(edited.trim(a, b), m.trim(a, b)))
    finally:
        engine.use_adapter(was)
    out = {"clips": len(pairs), "takes": len(takes[name]),
           "reconstruction_cm": {k: round(float(np.mean(v)), 3) for k, v in recon.items()}}
    embed = _embedder(engine.weights)
    if embed is not None:
        own = embed([m for m, _ in pairs])
        out["nearest_distance"] = {k: round(float(_nearest(embed(v), own).mean()), 4) for k, v in takes.items()}
        out["nearest_distance_ratio"] = round(out["nearest_distance"][name] /
                                              max(out["nearest_distance"][store.DEFAULT], 1e-9), 4)
    else:
        out["nearest_distance"] = None
        out["note"] = "no evaluator found (these weights' or the shipped one): no embedding distances"
    if picture is not None:
        from backend.evaluation.preview import save_rows

        rows = []
        for i, (m, text) in enumerate(pairs[:PICTURE_ROWS]):
            rows += [(f"yours:\n{text[:40]}", m), ("default", takes[store.DEFAULT][i * seeds]),
                     (name, takes[name][i * seeds])]
        out["picture"] = str(save_rows(rows, picture, title=f"adapter {name!r}: your clips, the default model, "
                                                           f"the adapter"))
    return out
