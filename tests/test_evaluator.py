"""The text-to-motion evaluator and the eval protocol, on chunks of the real test clips with the
tiny text model (the shipped evaluator reads captions through SmolLM2 itself)."""
import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import DATA


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    """The committed clips cut into 12-frame chunks, alternately train and test."""
    from backend.data import dataset

    ds, _, _ = dataset.build([DATA / "bandai-1", DATA / "bandai-2"], tmp_path_factory.mktemp("cache"), workers=1,
                             progress=False)
    clips = []
    for c in ds.clips:
        for k, s in enumerate(range(0, c.length - 12 + 1, 12)):
            clips.append(replace(c, name=f"{c.name}_{k}", start=c.start + s, length=12,
                                 split="train" if len(clips) % 3 else "test"))
    return dataset.Dataset(ds.features, clips, ds.mean, ds.std)


@pytest.fixture(scope="module")
def trained(chunked, tiny_base, tmp_path_factory):
    from backend.training.evaluator import EvaluatorTraining, train
    from backend.models.llm import TextFeatures

    tf = TextFeatures(str(tiny_base))
    out = tmp_path_factory.mktemp("evaluator")
    model, result = train(chunked, out, EvaluatorTraining(steps=120, batch=16, min_frames=8, max_frames=12),
                          text_features=tf, progress=False)
    return model, tf, out, result


def test_evaluator_learns_contents_and_reloads(chunked, trained):
    from backend.models.evaluator import Evaluator, held_out_accuracy, labelled

    model, _, out, _ = trained
    train = labelled(chunked, "train")
    emb = model.embed_motions([chunked.clip_features(c) for c in train])
    content, _ = model.classify(emb)
    accuracy = np.mean([a == c.content for a, c in zip(content, train)])
    chance = max(np.mean([c.content == x for c in train]) for x in {c.content for c in train})
    assert accuracy > chance
    held = held_out_accuracy(model, chunked, "test")  # each held-out clip as recorded and mirrored
    assert held["mirrored"]["clips"] == held["as_recorded"]["clips"] == len(labelled(chunked, "test"))
    again = Evaluator.from_pretrained(out)
    assert again.training_record["steps"] == 120  # eval t2m reports its validation accuracy from here
    assert again.training_record["validation"] == trained[3]["validation"]
    assert np.allclose(again.embed_motions([chunked.clip_features(train[0])]), emb[:1], rtol=1e-4, atol=1e-3)


def test_protocol_rows_metrics_and_plot(chunked, trained, tiny_weights, tmp_path):
    from backend.evaluation import t2m as eval_t2m
    from backend.engine import Engine

    model, tf, _, _ = trained
    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    run = eval_t2m.Run(chunked, model, engine, text_features=tf)
    runs = [run.once(seed, clips=50, mm_texts=2, mm_variations=3) for seed in (0, 1)]
    result = eval_t2m.summarise(runs)
    for row in ("real", "retrieval", "model"):
        for m in ("fid", "r_precision_top1", "r_precision_top3", "mm_dist", "diversity", "content_accuracy",
                  "style_accuracy", "foot_skating"):
            assert np.isfinite(result[row][m]) and np.isfinite(result[row][m + "_ci95"])
    assert result["real"]["fid"] < 1e-6 < result["model"]["fid"]  # the real set against itself
    assert result["model"]["multimodality"] > 0
    # Per content and style: accuracies over the runs' clips that average to the overall figure.
    for key in ("content", "style"):
        per = result["model"][f"per_{key}"]
        assert sum(v["clips"] for v in per.values()) == pytest.approx(min(50, len(run.test)))
        overall = sum(v["accuracy"] * v["clips"] for v in per.values()) / sum(v["clips"] for v in per.values())
        assert overall == pytest.approx(result["model"][f"{key}_accuracy"], abs=1e-3)
    report = eval_t2m.label_report(result)
    for r in report["content"]:
        assert (r["holds"] is None) == (r["clips"] < eval_t2m.MIN_LABEL_CLIPS or not r["real"])
        if r["holds"] is not None:
            assert r["holds"] == (r["model"] >= 0.9 * r["real"])
    assert "content" in eval_t2m.label_table(report)
    ood = run.out_of_template(seeds=(0, 1))
    assert ood["prompts"] >= 30 and 0 <= ood["model"]["content_accuracy"] <= 1
    assert len(ood["model"]["per_seed"]) == 2 and ood["model"]["content_accuracy"] == pytest.approx(
        np.mean([r["content_accuracy"] for r in ood["model"]["per_seed"]]), abs=1e-4)
    # No recorded clip to take a length from: each prompt runs as long as the estimator reads it.
    assert ood["model"]["seconds"] == [round(min(round(engine.length_for(p) * 20), 200) / 20, 2)
                                       for p, _, _ in eval_t2m.OUT_OF_TEMPLATE]
    eval_t2m.plot(result, tmp_path / "t2m.png")
    assert (tmp_path / "t2m.png").stat().st_size > 5_000
    json.dumps(result)


def test_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift():
    from backend.evaluation.t2m import frechet

    a = np.random.default_rng(0).normal(size=(500, 8))
    assert 0.0 <= frechet(a, a) < 1e-6  # never the -0.001 round-off showed in a table
    wide = np.random.default_rng(1).normal(size=(64, 256)) * 30  # few samples, many dims: round-off
    assert frechet(wide, wide) >= 0.0
    assert frechet(a, a + 1.0) == pytest.approx(8.0, rel=0.05)
