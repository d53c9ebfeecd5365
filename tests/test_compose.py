"""Composed clips (two recorded actions joined by the in-betweener), their chained captions, the
training examples made of them, and `eval chained`'s reading, on real clips."""
import random

import numpy as np
import pytest

from conftest import DATA, ROOT
from motioncore import canonical, read_bvh
from motioncore import rotations as rot

WALK = DATA / "styles" / "dataset-1_walk_giant_001.bvh"
BYE = DATA / "bandai-1" / "dataset-1_bye_normal_001.bvh"


def at20(path):
    return canonical.to_canonical(read_bvh(path)).resample(canonical.MODEL_FPS)


@pytest.fixture(scope="module")
def shipped_inbetweener():
    from backend.models.inbetweener import Inbetweener

    return Inbetweener.from_pretrained(ROOT / "weights" / "default")


def test_the_second_action_carries_on_where_the_first_ends(shipped_inbetweener):
    from backend.data import compose
    from motioncore.canonical import heading_yaw

    walk, bye = at20(WALK), at20(BYE)
    joined = compose.join(walk, bye, 10, shipped_inbetweener.inbetween)
    assert joined.num_frames == walk.num_frames + 10 + bye.num_frames
    s = walk.num_frames + 10
    # The walk's frames and the bye's poses are kept; the bye stands where the walk stopped.
    assert rot.angle_between(joined.local_rotations[1:walk.num_frames], walk.local_rotations[1:]).max() < 1e-5
    assert rot.angle_between(joined.local_rotations[s + 1:, 1:], bye.local_rotations[1:, 1:]).max() < 1e-5
    assert np.linalg.norm(joined.root_position[s, :2] - walk.root_position[-1, :2]) < 1e-6
    yaw = heading_yaw(joined.positions()[[walk.num_frames - 1, s]])
    assert abs(np.angle(np.exp(1j * (yaw[1] - yaw[0])))) < 1e-6
    # The join moves: it is not the walk's last pose held.
    held = joined.local_rotations[walk.num_frames - 1]
    assert rot.angle_between(joined.local_rotations[walk.num_frames + 5], held).max() > 1e-2
    with pytest.raises(ValueError, match="two contents"):
        compose.compose([(walk, "walk", "giant")], 1, shipped_inbetweener.inbetween, random.Random(0))


def test_chained_captions_name_the_actions_in_order():
    from backend.data import captions as cap

    rng = random.Random(0)
    for _ in range(20):
        text = cap.chained_caption([("bow", "elderly"), ("kick", "normal")], rng)
        assert text[0].isupper() and text.endswith(".") and any(w in text for w in cap.CHAIN_WORDS)
        first, second = text.split(next(w for w in cap.CHAIN_WORDS if w in text), 1)
        assert cap.content_from_text(first) == "bow" and cap.content_from_text(second) == "kick", text
    with pytest.raises(ValueError):
        cap.chained_caption([], rng)


def test_a_composed_example_masks_the_second_action_under_its_own_caption(tiny_weights):
    from backend.models.generator import INFILL, MotionLM
    from backend.training.generator import GeneratorTraining, TokenClip, make_example

    model = MotionLM.from_pretrained(tiny_weights)
    clip = TokenClip(np.arange(30) % 7, ["A man bows, then kicks."], "bow", "normal", second=12,
                     second_captions=["A man kicks."])
    training = GeneratorTraining()
    seen_infill = seen_chained = 0
    rng = random.Random(0)
    second_masked = [i >= 12 for i in range(30)]
    infill = model.sequence(INFILL, "A man kicks.", [-1 if m else int(c) for c, m in zip(clip.codes, second_masked)])[0]
    chained_text = model.text_tokenizer("A man bows, then kicks.")["input_ids"]
    for _ in range(40):
        seq, mstart, n, targets, _ = make_example(model, clip, training, rng, length=8)
        assert n == 30  # a composed clip is taken whole, whatever the batch's length
        masked = [t != -100 for t in targets[mstart: mstart + n]]
        if masked == second_masked and seq == infill:
            seen_infill += 1
        else:  # the chained caption, the clip masked anywhere
            assert any(seq[i: i + len(chained_text)] == chained_text for i in range(mstart))
            seen_chained += 1
    assert seen_infill > 10 and seen_chained > 10


def test_eval_chained_reads_a_real_composed_clip_in_order(shipped_inbetweener):
    from backend.data import compose
    from backend.evaluation import chained
    from backend.models.evaluator import Evaluator

    evaluator = Evaluator.from_pretrained(ROOT / "weights" / "default" / "evaluator")
    walk, bye = at20(WALK), at20(BYE)
    walk = walk.trim(walk.num_frames - round(compose.FIRST_SECONDS * walk.fps))
    joined = compose.join(walk, bye, 10, shipped_inbetweener.inbetween)
    right = chained._score(evaluator, [joined], [("p", "walk", "bye")])
    assert right["in_order"] == 1.0 and right["swapped"] == 0.0
    backwards = chained._score(evaluator, [joined], [("p", "bye", "walk")])
    assert backwards["in_order"] == 0.0 and backwards["swapped"] == 1.0
