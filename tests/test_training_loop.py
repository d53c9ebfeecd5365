"""The one training loop: stopped part way and resumed from its checkpoint, a run ends with the
same weights as one that never stopped; every trainer runs on it and resumes."""
import numpy as np
import pytest
import torch

from backend.training.loop import Loop, run, seeded


class Stop(Exception):
    pass


def _toy(tmp, steps, stop_at=None, resume=True):
    seeded(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 3, 0.5)
    data = torch.Generator().manual_seed(1)
    xs, ys = torch.randn(steps, 16, 4, generator=data), torch.randn(steps, 16, 1, generator=data)

    def step(i):
        if i == stop_at:
            raise Stop()
        loss = ((model(xs[i]) - ys[i]) ** 2).mean()
        return loss, {"loss": loss.item()}

    loop = Loop("toy", steps, checkpoint_dir=tmp, resume=resume, save_every=4, history_every=2,
                history_names={"loss": "loss"}, progress=False)
    return model, run(loop, model, opt, step, sched)


def test_a_resumed_run_ends_where_an_unbroken_one_does(tmp_path):
    whole, whole_run = _toy(tmp_path / "a", 12)
    with pytest.raises(Stop):
        _toy(tmp_path / "b", 12, stop_at=6)  # the checkpoint of step 4 is left
    resumed, resumed_run = _toy(tmp_path / "b", 12)
    assert resumed_run.resumed_from == 4 and resumed_run.step == 12
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert [list(p) for p in resumed_run.history["loss"]] == [list(p) for p in whole_run.history["loss"]]
    fresh, fresh_run = _toy(tmp_path / "b", 12, resume=False)  # --restart: from scratch
    assert fresh_run.resumed_from == 0


def test_the_trainers_share_the_loop():
    """No trainer keeps a loop of its own: each builds a Loop and hands it its step."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "backend" / "training"
    for name in ("tokenizer", "generator", "inbetweener", "evaluator", "length"):
        text = (root / f"{name}.py").read_text()
        assert "Loop(" in text and "run_loop(" in text, name
        assert "loss.backward()" not in text and "optimizer.step()" not in text and "opt.step()" not in text, name


def test_length_and_evaluator_training_resume(tmp_path, tiny_base):
    """Two cheap trainers end to end: a second call with more steps goes on from the first."""
    from conftest import DATA
    from backend.data import dataset
    from backend.models.llm import TextFeatures
    from backend.training.evaluator import EvaluatorTraining
    from backend.training.evaluator import train as train_evaluator
    from backend.training.length import LengthTraining
    from backend.training.length import train as train_length

    ds, _, _ = dataset.build([DATA / "bandai-1", DATA / "bandai-2"], tmp_path / "cache", workers=1)
    tf = TextFeatures(str(tiny_base))
    _, first = train_length(ds, tmp_path / "length", LengthTraining(steps=4, batch=8, wide_captions=0),
                            text_features=tf, progress=False)
    _, second = train_length(ds, tmp_path / "length", LengthTraining(steps=8, batch=8, wide_captions=0),
                             text_features=tf, progress=False)
    assert first["resumed_from"] == 0 and second["resumed_from"] == 4 and second["steps"] == 8
    if not [c for c in ds.split("train") if c.captions and c.content != "unlabelled"]:
        pytest.skip("no labelled training clips in the committed data")
    short = EvaluatorTraining(steps=3, batch=4, min_frames=8, max_frames=12)
    _, a = train_evaluator(ds, tmp_path / "ev", short, text_features=tf, progress=False)
    _, b = train_evaluator(ds, tmp_path / "ev", EvaluatorTraining(steps=6, batch=4, min_frames=8, max_frames=12),
                           text_features=tf, progress=False)
    assert a["resumed_from"] == 0 and b["resumed_from"] == 3 and np.isfinite(b["final_loss"])
