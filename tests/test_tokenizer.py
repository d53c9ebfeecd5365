import json

import numpy as np
import pytest
import torch

from backend.data import dataset
from backend.models.tokenizer import FSQ, LFQ, MotionTokenizer, TokenizerConfig, joint_channels
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
    with pytest.raises(ValueError, match="quantizer must be one of vq, fsq, lfq, got 'pq'"):
        TokenizerConfig(quantizer="pq")
    with pytest.raises(ValueError, match="power of two, got 3"):
        TokenizerConfig(down=3)
    with pytest.raises(ValueError, match="2d token map is built with lfq"):
        TokenizerConfig(layout="2d", quantizer="vq")


def test_lfq_tokens_are_the_signs_as_bits():
    lfq = LFQ(9).train()
    z = torch.randn(4, 6, 9, requires_grad=True)
    q, idx, aux = lfq(z)
    assert set(q.unique().tolist()) == {-1.0, 1.0} and idx.min() >= 0 and idx.max() < 512
    assert torch.equal(lfq.from_index(idx), q)
    assert int(idx[0, 0]) == sum(1 << b for b in range(9) if z[0, 0, b] > 0)
    aux.backward()  # the entropy term reaches the encoder's outputs
    assert z.grad.abs().sum() > 0


def test_the_2d_map_lays_every_feature_out_once():
    from motioncore.features import LAYOUT

    table = joint_channels()
    used = np.sort(table[table >= 0])
    assert np.array_equal(used, np.arange(LAYOUT.size))  # each feature in exactly one cell


@pytest.mark.parametrize("kind", [dict(quantizer="lfq"), dict(quantizer="lfq", layout="2d"),
                                  dict(encoder="dual")])
def test_the_seeds_variants_encode_decode_and_refuse_what_they_cannot_feed(small_dataset, tmp_path, kind):
    ds = small_dataset
    model = MotionTokenizer(TokenizerConfig(width=16, **kind)).eval()
    model.set_statistics(ds.mean, ds.std)
    f = ds.clip_features(ds.clips[0])
    tokens = model.encode(f)
    rows = model.config.tokens_per_step
    assert tokens.shape == ((-(-len(f) // 4),) if rows == 1 else (-(-len(f) // 4), rows))
    assert model.decode(tokens).shape == (4 * len(tokens), f.shape[1])
    model.save_pretrained(tmp_path)
    assert np.array_equal(MotionTokenizer.from_pretrained(tmp_path).encode(f), tokens)
    if rows == 1:
        MotionTokenizer.for_generation(tmp_path)
    else:
        with pytest.raises(ValueError, match="needs a 1d one"):
            MotionTokenizer.for_generation(tmp_path)


@pytest.mark.parametrize("kind", [dict(quantizer="fsq"), dict(quantizer="vq"), dict(quantizer="lfq"),
                                  dict(quantizer="lfq", layout="2d"), dict(encoder="dual")],
                         ids=["fsq", "vq", "lfq", "lfq-2d", "dual"])
def test_training_reduces_reconstruction_error(small_dataset, tmp_path, kind):
    ds = small_dataset
    untrained = MotionTokenizer(TokenizerConfig(width=48, **kind))
    untrained.set_statistics(ds.mean, ds.std)
    before = evaluate(untrained.eval(), ds, "train")["mpjpe_mm"]
    model, result = train(ds, TokenizerConfig(width=48, **kind),
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
