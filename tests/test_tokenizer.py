import json

import numpy as np
import pytest
import torch

from backend.data import dataset
from backend.models.tokenizer import FSQ, MotionTokenizer, TokenizerConfig
from backend.training.tokenizer import TokenizerTraining, evaluate, train
from conftest import DATA


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    ds, _, _ = dataset.build([DATA / "bandai-1", DATA / "bandai-2"], tmp_path_factory.mktemp("c"),
                             workers=1, progress=False)
    for c in ds.clips:  # five clips: train on all, evaluate on all
        c.split = "train"
    return ds


def test_fsq_indices_round_trip():
    fsq = FSQ([8, 5, 5, 5])
    z = torch.randn(3, 7, 4) * 3
    q, idx, _ = fsq(z)
    assert idx.min() >= 0 and idx.max() < 1000
    assert torch.equal(fsq.from_index(idx), q)
    assert set(torch.unique(q[..., 0]).tolist()) <= set(range(-4, 4))


def test_config_checks_name_the_bad_value():
    with pytest.raises(ValueError, match="quantizer must be 'fsq' or 'vq', got 'pq'"):
        TokenizerConfig(quantizer="pq")
    with pytest.raises(ValueError, match="power of two, got 3"):
        TokenizerConfig(down=3)


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_training_reduces_reconstruction_error(small_dataset, tmp_path, quantizer):
    ds = small_dataset
    untrained = MotionTokenizer(TokenizerConfig(quantizer=quantizer, width=48))
    untrained.set_statistics(ds.mean, ds.std)
    before = evaluate(untrained.eval(), ds, "train")["mpjpe_mm"]
    model, result = train(ds, TokenizerConfig(quantizer=quantizer, width=48),
                          TokenizerTraining(steps=150, batch=16, window=16, eval_every=150, lr=2e-3),
                          tmp_path, progress=False)
    after = evaluate(model, ds, "train")["mpjpe_mm"]
    assert after < 0.6 * before, (before, after)
    assert (tmp_path / "tokenizer_loss.png").stat().st_size > 5000


def test_save_load_round_trip_and_mismatch(small_dataset, tmp_path):
    ds = small_dataset
    model = MotionTokenizer(TokenizerConfig(width=32)).eval()
    model.set_statistics(ds.mean, ds.std)
    model.save_pretrained(tmp_path)
    again = MotionTokenizer.from_pretrained(tmp_path)
    f = ds.clip_features(ds.clips[0])
    tokens = model.encode(f)
    assert len(tokens) == -(-len(f) // 4)
    assert np.array_equal(again.encode(f), tokens)
    assert np.allclose(again.decode(tokens), model.decode(tokens))
    meta = json.loads((tmp_path / "tokenizer.json").read_text())
    meta["config"]["width"] = 64
    (tmp_path / "tokenizer.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match its config"):
        MotionTokenizer.from_pretrained(tmp_path)
    meta["format_version"] = 99
    (tmp_path / "tokenizer.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format_version 99"):
        MotionTokenizer.from_pretrained(tmp_path)
