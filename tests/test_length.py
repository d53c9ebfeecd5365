"""The text-to-length estimator: it learns the lengths of the committed real clips from their
captions (tiny text model), reloads, refuses bad settings, and the engine and server keep to
the length it reads when a request gives none."""
import json

import numpy as np
import pytest

from conftest import DATA
from test_server import call, server  # noqa: F401  (the real server process, shared)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from backend.data import dataset

    ds, _, _ = dataset.build([DATA / "bandai-1", DATA / "bandai-2"], tmp_path_factory.mktemp("cache"), workers=1,
                             progress=False)
    return ds


def test_estimator_learns_clip_lengths_from_captions_and_reloads(real, tiny_base, tmp_path):
    from backend.models.length import LengthEstimator
    from backend.training.length import LengthTraining, examples, train, validate
    from backend.models.llm import TextFeatures

    tf = TextFeatures(str(tiny_base))
    lengths = sorted(c.length for c in real.clips)
    assert lengths[0] * 3 < lengths[-1]  # the committed clips differ in length: there is something to learn
    model, record = train(real, tmp_path / "length", LengthTraining(steps=400, batch=64, wide_captions=2),
                          text_features=tf, progress=False)
    own = validate(model, tf, examples(real, "train", 0))  # each clip's template captions, mirrors too
    assert own["captions"] >= 2 * 6 * len(real.clips) - 12
    # Better than always guessing the median clip, by a wide margin.
    assert own["mae_seconds"] < 0.5 * own["median_guess_mae_seconds"]
    by_clip = {c.name: model.seconds(tf(c.captions)).mean() for c in real.clips}
    short, long_ = min(real.clips, key=lambda c: c.length), max(real.clips, key=lambda c: c.length)
    assert by_clip[short.name] < by_clip[long_.name]
    again = LengthEstimator.from_pretrained(tmp_path / "length")
    text = real.clips[0].captions[0]
    assert again.seconds(tf([text]))[0] == model.seconds(tf([text]))[0]
    assert again.training_record["train_median_seconds"] == record["train_median_seconds"] > 0
    assert again.config.base == str(tiny_base)
    with pytest.raises(ValueError, match="wide_captions"):
        LengthTraining(wide_captions=-1)
    with pytest.raises(FileNotFoundError, match="dynamicpose train length"):
        LengthEstimator.from_pretrained(tmp_path)


def test_engine_and_server_keep_to_the_estimated_length(tiny_weights, server):
    from backend.engine import Engine

    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    text = "a person waves"
    seconds = engine.length_for(text)
    assert 0 < seconds <= 20
    [m] = engine.generate(text, seed=1, fps=30)  # no length given
    assert abs(m.duration - seconds) < 0.1
    [same] = engine.generate(text, seconds, seed=1, fps=30)
    assert np.array_equal(m.local_rotations, same.local_rotations)
    # Nothing to read a length from: the typical training clip's length.
    assert engine.length_for("  ") == 2.0
    status, answer = call(server, "POST", "/v1/generate", {"text": text, "seed": 1, "fps": 30})
    assert status == 200, answer
    assert len(answer["motions"][0]["local_rotations"]) == m.num_frames
    status, answer = call(server, "POST", "/v1/generate", {"text": text, "seconds": None, "fps": 30})
    assert status == 200 and len(answer["motions"][0]["local_rotations"]) == m.num_frames
    status, answer = call(server, "POST", "/v1/generate", {"text": text, "seconds": 0})
    assert status == 422 and "seconds" in json.dumps(answer["detail"])
    # Continuing takes the estimate too, as far as a motion may run.
    from motioncore.limits import MAX_SECONDS
    from motioncore.clip import Motion
    from motioncore.wire import to_wire

    short = m.trim(0, 30)
    longer = engine.continue_(short, text, seed=2)
    assert abs(longer.duration - short.duration - seconds) < 0.1
    assert np.array_equal(longer.local_rotations[:30], short.local_rotations)
    frames = int(round((MAX_SECONDS - 0.5) * m.fps))
    full = Motion(m.skeleton, m.fps, np.resize(m.root_position, (frames, 3)),
                  np.resize(m.local_rotations, (frames, *m.local_rotations.shape[1:])))
    assert engine.continue_(full, text, seed=2).duration <= MAX_SECONDS + 1e-6
    status, answer = call(server, "POST", "/v1/continue", {"motion": to_wire(short), "text": text, "seed": 2})
    assert status == 200, answer
    assert len(answer["motions"][0]["local_rotations"]) == longer.num_frames


def test_commands_refuse_bad_settings_before_loading_anything(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for args, message in ((["train", "length", "--steps", "0", "--out", str(tmp_path / "new")], "steps and batch"),
                          (["eval", "t2m", "--oot-seeds", "0", "--cache", str(tmp_path / "none")], "--oot-seeds"),
                          (["eval", "t2m", "--runs", "0", "--cache", str(tmp_path / "none")], "--runs")):
        run = subprocess.run([sys.executable, "-m", "backend", *args], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=120)
        assert run.returncode == 2 and message in run.stderr, run.stderr
    assert not (tmp_path / "new").exists()
