"""Text-steered in-betweening (`dynamicpose bench steer`): an animator keys a walk on both sides
of a gap and asks for something else in it ("a person waves with the right hand"). Does the
shipped evaluator read the asked action in the gap, and does the walk still meet its keys?

Each walk of the test split (at the model's 20 fps) gives one window from its middle: CONTEXT
keyed frames, a gap of `gap` frames, CONTEXT keyed frames. The engine fills the gap with each
prompt, and without text; the evaluator classifies the gap's frames alone. Figures: per prompt,
the share of windows whose gap reads as the prompt's content (and as walking), beside the same
for the engine without text and for the capture's own gap."""
from __future__ import annotations

import numpy as np

from motioncore import canonical, features

CONTEXT = 10
GAP = 60  # 3 s at 20 fps: a whole wave fits, and it is past the in-betweener's 60 frames at 30 fps
PROMPTS = (("a person waves with the right hand", "wave-right-hand"),
           ("a person waves with the left hand", "wave-left-hand"),
           ("a person raises both hands", "raise-up-both-hands"))
WALKING = {"walk", "walk-back", "walk-left", "walk-right", "walk-turn-left", "walk-turn-right", "run", "dash"}


def walk_windows(ds, gap: int = GAP, content: str = "walk") -> list:
    """(name, Motion) windows of CONTEXT + gap + CONTEXT frames from the middle of each test clip
    of `content`, at the model's frame rate."""
    clips = [c for c in ds.split("test") if c.content == content and c.length >= 2 * CONTEXT + gap]
    return [(c.name, middle_window(features.from_features(ds.clip_features(c), canonical.MODEL_FPS), gap))
            for c in clips]


def middle_window(motion, gap: int = GAP):
    """CONTEXT + gap + CONTEXT frames from the middle of `motion`."""
    span = 2 * CONTEXT + gap
    if motion.num_frames < span:
        raise ValueError(f"a window of a {gap}-frame gap needs {span} frames, the clip has {motion.num_frames}")
    start = (motion.num_frames - span) // 2
    return motion.trim(start, start + span)


def keys_of(window) -> list[int]:
    T = window.num_frames
    return list(range(CONTEXT)) + list(range(T - CONTEXT, T))


def _reads(evaluator, gaps) -> list[str]:
    return evaluator.classify(evaluator.embed_motions([features.to_features(g) for g in gaps]))[0]


def run(engine, evaluator, windows, prompts=PROMPTS, seeds=(0,), progress=None) -> dict:
    """{capture, no_text, prompts: {prompt: {...}}}: what the evaluator reads in the gaps."""
    if not windows:
        raise ValueError("no test clip is long enough for a window of the asked gap")
    gap = slice(CONTEXT, windows[0][1].num_frames - CONTEXT)

    def share(reads: list[str], wanted: set[str]) -> float:
        return round(float(np.mean([r in wanted for r in reads])), 3)

    def summary(reads: list[str], asked: str | None = None) -> dict:
        out = {"windows": len(reads), "read_as_walking": share(reads, WALKING),
               "reads": {r: reads.count(r) for r in sorted(set(reads))}}
        if asked:
            out["read_as_asked"] = share(reads, {asked})
        return out

    capture = _reads(evaluator, [m.trim(gap.start, gap.stop) for _, m in windows])
    plain = _reads(evaluator, [engine.inbetween(m, keys_of(m)).trim(gap.start, gap.stop) for _, m in windows])
    result = {"gap_frames": gap.stop - gap.start, "fps": canonical.MODEL_FPS, "seeds": list(seeds),
              "capture": summary(capture), "no_text": summary(plain), "prompts": {}}
    for text, content in prompts:
        filled = [engine.inbetween(m, keys_of(m), text=text, seed=s) for s in seeds for _, m in windows]
        reads = _reads(evaluator, [f.trim(gap.start, gap.stop) for f in filled])
        result["prompts"][text] = {"content": content, **summary(reads, content),
                                   "no_text_read_as_asked": share(plain, {content})}
        if progress:
            progress()
    return result


def table(result: dict) -> str:
    lines = [f"gap of {result['gap_frames']} frames at {result['fps']:g} fps between keyed walks, "
             f"{result['capture']['windows']} windows; the shipped evaluator's reading of the gap",
             f"  capture: walking {result['capture']['read_as_walking']:.2f}",
             f"  engine without text: walking {result['no_text']['read_as_walking']:.2f}"]
    for text, r in result["prompts"].items():
        lines.append(f"  \"{text}\": read as {r['content']} {r['read_as_asked']:.2f} "
                     f"(without text {r['no_text_read_as_asked']:.2f}), walking {r['read_as_walking']:.2f}")
    return "\n".join(lines)
