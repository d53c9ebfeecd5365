"""Tiny random model weights for tests (a 2-layer Llama base, a small tokenizer, generator,
in-betweener, length estimator and evaluator): the real code paths at test speed.

Built in-process where torch is importable, or by the backend's own Python where it is not
(the add-on tests on Blender 5.1+, Python 3.13):

    python -m tests.tiny_models FOLDER      # FOLDER/base and FOLDER/weights
"""
from __future__ import annotations

import sys
from pathlib import Path


def make_base(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from backend.models.basemodel import GGUF_FILE, verify_gguf

    gguf = verify_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=GGUF_FILE)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_model(tiny_base, **kw):
    """A MotionLM on the tiny base (32 motion codes, LoRA r 4)."""
    import torch

    from backend.models.generator import GeneratorConfig, MotionLM
    from backend.models.llm import load_base

    config = GeneratorConfig(base=str(tiny_base), codebook_size=32, lora_r=4, **kw)
    base, tok = load_base(config.base)
    torch.manual_seed(1)
    return MotionLM(config, base, tok)


def make_weights(tiny_base: Path, folder: Path) -> Path:
    """A complete model folder (tokenizer, generator, in-betweener, length estimator) with tiny
    random weights."""
    import numpy as np
    import torch

    from backend.models.tokenizer import MotionTokenizer, TokenizerConfig
    from motioncore.features import LAYOUT

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(2)
    tok = MotionTokenizer(TokenizerConfig(quantizer="fsq", width=32, fsq_levels=[4, 4, 2])).eval()
    tok.set_statistics(np.zeros(LAYOUT.size), np.ones(LAYOUT.size))
    tok.save_pretrained(folder)
    tiny_model(tiny_base).save_pretrained(folder)
    from backend.models.inbetweener import Inbetweener, InbetweenerConfig

    torch.manual_seed(3)
    ib = Inbetweener(InbetweenerConfig(width=32, layers=1, heads=2))
    torch.nn.init.normal_(ib.out.weight, std=0.01)  # not plain interpolation: the residual path shows
    ib.save_pretrained(folder)
    from backend.models.length import LengthConfig, LengthEstimator

    torch.manual_seed(4)  # untrained: any length it reads is fine, as long as the engine keeps to it
    LengthEstimator(LengthConfig(base=str(tiny_base), text_size=64)).eval().save_pretrained(
        folder / "length", extra={"training": {"train_median_seconds": 2.0}})
    from backend.models.evaluator import Evaluator, EvaluatorConfig

    torch.manual_seed(5)  # untrained: a fixed embedding of motion is all the adapter report needs of it
    Evaluator(EvaluatorConfig(feature_size=LAYOUT.size, text_size=64, width=16, embed=8, contents=["walk"],
                              styles=["normal"])).eval().save_pretrained(folder / "evaluator")
    return folder


if __name__ == "__main__":
    out = Path(sys.argv[1])
    make_weights(make_base(out / "base"), out / "weights")
    print(out / "weights")
