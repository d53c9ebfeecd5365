"""One small model on disk: `<stem>.safetensors` (tensors only, never pickle) beside
`<stem>.json` (format version, config, what training recorded). The tokenizer, in-betweener,
evaluator and length estimator are all stored this way."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save(directory: Path, stem: str, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(directory / f"{stem}.safetensors"))
    (directory / f"{stem}.json").write_text(json.dumps(meta, indent=1))


def read_meta(directory: Path, stem: str, format_version: int, what: str, hint: str = "") -> dict:
    """The JSON beside the weights, its format version checked; `hint` says how to get one."""
    meta_file = Path(directory) / f"{stem}.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"no {what} in {directory} ({meta_file.name} missing{'; ' + hint if hint else ''})")
    meta = json.loads(meta_file.read_text())
    if meta.get("format_version") != format_version:
        raise ValueError(f"{meta_file} has format_version {meta.get('format_version')}, "
                         f"this DynamicPose reads {format_version}")
    return meta


def load_into(model: torch.nn.Module, directory: Path, stem: str, keep: dict[str, torch.Tensor] | None = None) -> None:
    """Load `<stem>.safetensors` into `model`, naming any tensor that does not fit its config;
    `keep` supplies tensors that are not stored (rebuilt from the config)."""
    path = Path(directory) / f"{stem}.safetensors"
    state = {**load_file(str(path)), **(keep or {})}
    expected = model.state_dict()
    bad = [k for k in expected if k not in state or state[k].shape != expected[k].shape]
    extra = sorted(set(state) - set(expected))
    if bad or extra:
        raise ValueError(f"{path} does not match its config: mismatched {bad[:5]}, unexpected {extra[:5]}")
    model.load_state_dict(state)
