"""DynamicPoseNet's stochastic batch contrastive loss as the generator's training uses it
(backend/training/contrastive.py): which examples make pairs, what the loss rewards, and a
training run with it on."""
import math
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backend.models.generator import CAPTION, MOT, T2M  # noqa: E402
from backend.training import contrastive  # noqa: E402
from backend.training.contrastive import BatchContrast, Pairs  # noqa: E402
from backend.training.generator import GeneratorTraining, TokenClip, batch_pairs, make_example  # noqa: E402
from conftest import tiny_model  # noqa: E402


def test_pairs_are_the_text_to_motion_examples_with_text_and_read_back_their_codes(tiny_base):
    model = tiny_model(tiny_base)
    rng = random.Random(0)
    codes = np.arange(12) % 32
    clip = TokenClip(codes, ["a person walks forward"], "walk", "normal")
    # caption_share 0 and next_share 0: every example masked text-to-motion or infill
    training = GeneratorTraining(caption_share=0, next_share=0, span_share=0.5, text_dropout=0, word_noise=0)
    examples = [make_example(model, clip, training, rng, length=12) for _ in range(4)]
    silent = model.sequence(T2M, "", [-1] * 5)  # text dropped: no pair
    examples.append((silent[0], silent[1], 5, [-100] * len(silent[0]), -1))
    captioned = model.sequence(CAPTION, "", [1, 2, 3], caption="walks")  # text after motion: no pair
    examples.append((captioned[0], captioned[1], 3, [-100] * len(captioned[0]), captioned[1] + 4))
    pairs = batch_pairs(model, examples, [clip] * len(examples))
    assert pairs.rows.tolist() == [0, 1, 2, 3]
    for row, at in zip(pairs.rows.tolist(), pairs.text_at.tolist()):
        assert examples[row][0][at] == model.special(MOT)
    # the whole window, masked or shown, as it was before masking
    assert (pairs.codes == torch.as_tensor(codes)).all()
    assert pairs.labels == ["walk/normal"] * 4


def _batch(P: int, D: int, seed: int = 0):
    """Hidden states whose text rows and motion codes say the same thing per pair."""
    g = torch.Generator().manual_seed(seed)
    code_rows = torch.randn(P * 3, D, generator=g)
    codes = torch.arange(P * 3).view(P, 3)
    hidden = torch.zeros(P, 5, D)
    hidden[:, 4] = code_rows[codes].mean(1) + 0.1 * torch.randn(P, D, generator=g)
    return hidden, code_rows, codes


def test_the_loss_learns_to_tell_pairs_apart_and_spares_same_label_negatives():
    torch.manual_seed(0)
    P, D = 8, 32
    hidden, code_rows, codes = _batch(P, D)
    pairs = Pairs(torch.arange(P), torch.full((P,), 4), codes, [f"c{i}" for i in range(P)])
    head = BatchContrast(D)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = head(hidden, code_rows, pairs).item()
    for _ in range(60):
        loss = head(hidden, code_rows, pairs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 0.5 * math.log(P)
    assert head(hidden, code_rows, pairs).item() < 0.2 * first
    # Shuffled pairs are what it learnt to score low: the loss is far higher.
    wrong = Pairs(pairs.rows, pairs.text_at, codes[torch.roll(torch.arange(P), 1)], pairs.labels)
    assert head(hidden, code_rows, wrong).item() > 3 * head(hidden, code_rows, pairs).item()

    # Two pairs showing the same thing (rows 0 and 1 identical) are not each other's negatives.
    hidden[1], codes[1] = hidden[0], codes[0]
    apart = head(hidden, code_rows, Pairs(pairs.rows, pairs.text_at, codes, ["a", "b"] + pairs.labels[2:]))
    alike = head(hidden, code_rows, Pairs(pairs.rows, pairs.text_at, codes, ["a", "a"] + pairs.labels[2:]))
    assert alike.item() < apart.item() - 0.1
    # Nothing to contrast: one pair, or one label throughout.
    assert head(hidden, code_rows, Pairs(pairs.rows[:1], pairs.text_at[:1], codes[:1], ["a"])) is None
    assert head(hidden, code_rows, Pairs(pairs.rows, pairs.text_at, codes, ["a"] * P)) is None


def test_pairs_of_an_empty_batch_make_no_loss():
    pairs = contrastive.pairs_of([], [], [], lambda i: i)
    assert len(pairs) == 0 and pairs.codes.shape == (0, 0)
    assert BatchContrast(8)(torch.zeros(0, 1, 8), torch.zeros(4, 8), pairs) is None


def test_training_with_the_contrastive_term_records_it_and_changes_the_lm(tiny_base, tmp_path):
    """Real training steps on a tiny Llama: the term is logged, the weights differ from a run
    without it from the same seed, and both runs' motion losses stay finite."""
    from backend.training.generator import _Objective

    results = {}
    for weight in (0.0, 1.0):
        model = tiny_model(tiny_base)
        model.train()
        rng = random.Random(0)
        clips = [TokenClip(np.array([(i * 7 + k) % 32 for k in range(10)]), [f"a person does thing {i}"],
                       f"c{i}", "s") for i in range(6)]
        training = GeneratorTraining(caption_share=0, next_share=0, span_share=0.5, text_dropout=0, word_noise=0)
        head = BatchContrast(model.new_tokens.embedding_dim) if weight else None
        objective = _Objective(model, head, weight)
        params = [p for p in objective.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-2)
        logged = []
        for _ in range(5):
            drawn = [rng.choice(clips) for _ in range(6)]
            examples = [make_example(model, c, training, rng, 10) for c in drawn]
            batch = model.collate(examples)
            loss, logs = objective(batch, None, batch_pairs(model, examples, drawn) if head else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
            logged.append(logs)
        results[weight] = (logged, model.new_tokens.weight.detach().clone())
    off, on = results[0.0], results[1.0]
    assert all("contrast" not in logs for logs in off[0])
    assert all(math.isfinite(logs["contrast"]) and math.isfinite(logs["motion"]) for logs in on[0])
    assert not torch.allclose(off[1], on[1])
