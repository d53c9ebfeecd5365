"""Shared fixtures: the committed real clips and a freshly reset Blender."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
if str(ROOT) not in sys.path:  # tests run from a checkout, installed or not
    sys.path.insert(0, str(ROOT))

CLIPS = sorted(DATA.glob("bandai-*/*.bvh"))


@pytest.fixture(params=CLIPS, ids=[p.stem for p in CLIPS])
def clip_path(request) -> Path:
    return request.param


@pytest.fixture
def walk_path() -> Path:
    return DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh"


@pytest.fixture
def blender():
    """The real Blender module, reset to factory settings around the test."""
    bpy = pytest.importorskip("bpy")
    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("io_anim_bvh", default_set=True)
    yield bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from backend.basemodel import GGUF_FILE, verify_gguf

    gguf = verify_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=GGUF_FILE)
    folder = tmp_path_factory.mktemp("tiny_llama")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_model(tiny_base, **kw):
    """A MotionLM on the tiny base (32 motion codes, LoRA r 4)."""
    from backend.generator import GeneratorConfig, MotionLM
    from backend.llm import load_base

    config = GeneratorConfig(base=str(tiny_base), codebook_size=32, lora_r=4, **kw)
    base, tok = load_base(config.base)
    torch.manual_seed(1)
    return MotionLM(config, base, tok)


@pytest.fixture(scope="session")
def tiny_weights(tiny_base, tmp_path_factory):
    """A complete model folder (tokenizer, generator, in-betweener, length estimator) with tiny
    random weights."""
    import numpy as np

    from backend.tokenizer import MotionTokenizer, TokenizerConfig
    from motioncore.features import LAYOUT

    folder = tmp_path_factory.mktemp("tiny_weights")
    torch.manual_seed(2)
    tok = MotionTokenizer(TokenizerConfig(quantizer="fsq", width=32, fsq_levels=[4, 4, 2])).eval()
    tok.set_statistics(np.zeros(LAYOUT.size), np.ones(LAYOUT.size))
    tok.save_pretrained(folder)
    tiny_model(tiny_base).save_pretrained(folder)
    from backend.inbetweener import Inbetweener, InbetweenerConfig

    torch.manual_seed(3)
    ib = Inbetweener(InbetweenerConfig(width=32, layers=1, heads=2))
    torch.nn.init.normal_(ib.out.weight, std=0.01)  # not plain interpolation: the residual path shows
    ib.save_pretrained(folder)
    from backend.length import LengthConfig, LengthEstimator

    torch.manual_seed(4)  # untrained: any length it reads is fine, as long as the engine keeps to it
    LengthEstimator(LengthConfig(base=str(tiny_base), text_size=64)).eval().save_pretrained(
        folder / "length", extra={"training": {"train_median_seconds": 2.0}})
    return folder


def fcurves_of(action):
    """An action's fcurves on Blender 4.4+ (slotted: the first slot's channelbag) and 4.2/4.3."""
    if not hasattr(action, "slots"):
        return action.fcurves
    from bpy_extras import anim_utils

    return anim_utils.action_get_channelbag_for_slot(action, action.slots[0]).fcurves


@pytest.fixture
def dp(blender, tiny_weights):
    """The add-on enabled from this checkout, its backend embedded with tiny weights."""
    import addon_utils

    from tools.addon_import import import_addon

    import_addon()
    enable_addon(blender, tiny_weights)
    yield blender
    addon_utils.disable("dynamic_pose", default_set=True)


def enable_addon(bpy, weights) -> None:
    """Enable the add-on with its backend embedded on `weights` (again after a scene was read
    with factory settings, which resets add-ons and preferences)."""
    import addon_utils

    addon_utils.enable("dynamic_pose", default_set=True)
    prefs = bpy.context.preferences.addons["dynamic_pose"].preferences
    prefs.mode, prefs.weights, prefs.device, prefs.backend_dir = "EMBEDDED", str(weights), "cpu", str(ROOT)
