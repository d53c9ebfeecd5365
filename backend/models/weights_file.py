"""One small model on disk: `<stem>.safetensors` (tensors only, never pickle) beside
`<stem>.json` (format version, config, what training recorded). The tokenizer, in-betweener,
evaluator and length estimator are all stored this way."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from backend.models.basemodel import sha256

SUMS = "SHA256SUMS"  # beside a model folder's files (`sha256sum -c` reads it); checked on load
RESTORE = "restore the folder (git checkout weights/default, or copy it again) or train it again"


class WeightsError(ValueError):
    """A weights file that is damaged: says which file and what to do."""


def _sums_of(folder: Path) -> dict[str, str]:
    sums = {}
    for line in (folder / SUMS).read_text().splitlines():
        digest, _, name = line.partition("  ")
        if name:
            sums[name] = digest
    return sums


CONFIGS = ("generator.json", "adapter_config.json")  # configs read on load that sit beside no namesake


def write_sums(folder: Path) -> Path:
    """SHA256SUMS for what loading reads under `folder`: every .safetensors, the JSON of the
    same name beside it, and the generator's and adapter's configs (not figures or plots,
    which evaluations rewrite)."""
    folder = Path(folder)
    weights = [f for f in folder.rglob("*.safetensors") if f.is_file()]
    configs = [w.with_suffix(".json") for w in weights] + [f for f in folder.rglob("*.json") if f.name in CONFIGS]
    files = sorted({f for f in weights + configs if f.is_file()})
    lines = [f"{sha256(f)}  {f.relative_to(folder).as_posix()}" for f in files]
    (folder / SUMS).write_text("\n".join(lines) + "\n")
    return folder / SUMS


def check_sums(folder: Path) -> int:
    """Every file SHA256SUMS lists has its recorded hash (a folder without one passes); the
    number checked. WeightsError names the first file that differs or is missing."""
    folder = Path(folder)
    if not (folder / SUMS).is_file():
        return 0
    sums = _sums_of(folder)
    for name, digest in sums.items():
        path = folder / name
        if not path.is_file():
            raise WeightsError(f"{path} is missing ({SUMS} lists it); {RESTORE}")
        if sha256(path) != digest:
            raise WeightsError(f"{path} is damaged (its sha256 differs from {folder / SUMS}); {RESTORE}")
    return len(sums)


def record(path: Path) -> None:
    """After a save: update the entry of `path` in the SHA256SUMS of its folder or the folder
    above (a model folder keeps its sums true as it is retrained)."""
    path = Path(path)
    for folder in (path.parent, path.parent.parent):
        if (folder / SUMS).is_file():
            sums = _sums_of(folder)
            sums[path.relative_to(folder).as_posix()] = sha256(path)
            (folder / SUMS).write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
            return


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; a truncated or garbled file, or one holding NaN or
    infinite values, is a WeightsError that names it."""
    path = Path(path)
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise WeightsError(f"{path} is missing; {RESTORE}") from None
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise WeightsError(f"{path} cannot be read ({type(e).__name__}: {e}); {RESTORE}") from None
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{path} holds NaN or infinite values (in {bad[:3]}); {RESTORE}")
    return tensors


def save(directory: Path, stem: str, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(directory / f"{stem}.safetensors"))
    (directory / f"{stem}.json").write_text(json.dumps(meta, indent=1))
    record(directory / f"{stem}.safetensors")
    record(directory / f"{stem}.json")


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
    state = {**read_tensors(path), **(keep or {})}
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
