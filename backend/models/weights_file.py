"""One small model on disk: `<stem>.safetensors` (tensors only, never pickle) beside
`<stem>.json` (format version, config, what training recorded). The tokenizer, in-betweener,
evaluator and length estimator are all stored this way."""
from __future__ import annotations

import json
from dataclasses import asdict
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


class Stored:
    """`save_pretrained` / `from_pretrained` for a small module built from a dataclass `config`.
    A subclass names its file stem, its config class, its format version and what to call it
    (and how to get one) when missing; `unstored` names tensors rebuilt from the config."""

    stem: str
    config_class: type
    format_version: int
    what: str
    hint: str = ""
    unstored: tuple[str, ...] = ()
    training_record: dict | None = None  # what training wrote in the JSON, once loaded

    def save_pretrained(self, directory: Path, extra: dict | None = None) -> None:
        save(directory, self.stem, {k: v for k, v in self.state_dict().items() if k not in self.unstored},
             {"format_version": self.format_version, "config": asdict(self.config), **(extra or {})})

    @classmethod
    def from_pretrained(cls, directory: Path):
        meta = read_meta(directory, cls.stem, cls.format_version, cls.what, cls.hint)
        model = cls(cls.config_class(**meta["config"]))
        state = model.state_dict()
        load_into(model, directory, cls.stem, keep={k: state[k] for k in cls.unstored})
        model.training_record = meta.get("training")  # what training measured, its validation included
        return model.eval()
