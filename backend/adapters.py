"""The user's own adapters: one folder each under paths.adapters_dir(), listed, exported as one
file and imported back.

An adapter folder holds what MotionLM.save_pretrained writes (generator.json, adapter/,
new_tokens.safetensors, SHA256SUMS), the motion decoder tuned on its clips
(decoder.safetensors) and adapter_info.json: what it was trained from and on which model it
sits. It carries no base and no encoder: it is applied onto the model the engine has loaded,
and only onto the one it was trained on (same base, same motion codes).

The export is one safetensors file: the LoRA tensors, new token rows and decoder, with the
configs, the info and a sha256 of all of it in the file's metadata (text, never pickle)."""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from backend.models import weights_file
from backend.models.basemodel import sha256
from backend.models.tokenizer import DECODER_FILE
from backend.paths import adapters_dir
from motioncore.limits import DEFAULT_ADAPTER, adapter_name_problem

DEFAULT = DEFAULT_ADAPTER      # the shipped model's own adapter; always there, never a folder
INFO = "adapter_info.json"
FILE_FORMAT = 1                # of the exported file's metadata
MAX_FILE_BYTES = 512 << 20     # an exported adapter of the default base is 21 MB
_META_KEY = "dynamicpose_adapter"


class AdapterError(ValueError):
    """An adapter that cannot be used, found, written or read: says which and why."""


def check_name(name: object) -> str:
    """A name that is safe as a folder name on every system, and is not the default's."""
    if problem := adapter_name_problem(name):
        raise AdapterError(problem)
    return name


def identity(weights: Path) -> dict:
    """What an adapter must match to sit on the model in `weights`: its generator's shape and
    the tokenizer whose motion codes it speaks."""
    meta = json.loads((Path(weights) / "generator.json").read_text())
    return {"config": meta["config"], "base_vocab": meta["base_vocab"],
            "tokenizer_sha256": sha256(Path(weights) / "tokenizer.safetensors")}


def mismatch(info: dict, generator: dict, model: dict) -> str | None:
    """Why an adapter with `info` and `generator` (its generator.json) cannot sit on the model
    `model` (identity()), or None."""
    if info.get("tokenizer_sha256") != model["tokenizer_sha256"]:
        return "it was trained on another model's motion tokenizer (its motion codes mean other things)"
    theirs, ours = generator.get("config", {}), model["config"]
    if theirs.get("base") != ours["base"]:
        return f"it needs the base {theirs.get('base')!r}; this backend runs {ours['base']!r}"
    for key in ("codebook_size", "lora_r", "lora_alpha", "target_modules"):
        if theirs.get(key) != ours[key]:
            return f"its {key} is {theirs.get(key)!r}, the model's {ours[key]!r}"
    if generator.get("base_vocab") != model["base_vocab"]:
        return f"it was made for a base of {generator.get('base_vocab')} text tokens, not {model['base_vocab']}"
    return None


def folder_of(name: str, root: Path | None = None) -> Path:
    folder = (root or adapters_dir()) / check_name(name)
    if not (folder / INFO).is_file():
        raise AdapterError(f"no adapter named {name!r} in {root or adapters_dir()}")
    return folder


def read_info(folder: Path) -> dict:
    try:
        info = json.loads((Path(folder) / INFO).read_text())
    except (OSError, ValueError) as e:
        raise AdapterError(f"{Path(folder) / INFO} cannot be read ({e})") from None
    if not isinstance(info, dict):
        raise AdapterError(f"{Path(folder) / INFO} is not an adapter's info")
    return info


SUMMARY = ("name", "clips", "steps", "steps_asked", "created", "stopped", "imported")


def list_adapters(root: Path | None = None) -> list[dict]:
    """Every adapter in the folder, newest first, as {name, clips, steps, created, ...}; folders
    that are not adapters (or a training in progress) are left out."""
    root = root or adapters_dir()
    found = []
    for folder in sorted(root.glob("*/")) if root.is_dir() else ():
        if not (folder / INFO).is_file() or folder.name.startswith("."):
            continue
        try:
            info = read_info(folder)
        except AdapterError:
            continue
        found.append({k: info.get(k) for k in SUMMARY} | {"name": folder.name})
    return sorted(found, key=lambda a: str(a.get("created") or ""), reverse=True)


def write_info(folder: Path, info: dict) -> None:
    (Path(folder) / INFO).write_text(json.dumps(info, indent=1))


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


# -- one file ------------------------------------------------------------------------------

def _digest(tensors: dict[str, torch.Tensor], texts: dict[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(texts):
        h.update(f"{key}\0{texts[key]}\0".encode())
    for key in sorted(tensors):
        t = tensors[key].contiguous()
        h.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def export(name: str, path: Path, root: Path | None = None) -> dict:
    """Write the adapter `name` as one .safetensors file at `path` (never over an existing
    file); returns {path, bytes, sha256}."""
    from safetensors.torch import save_file

    folder = folder_of(name, root)
    path = Path(path)
    if path.suffix != ".safetensors":
        raise AdapterError(f"an adapter file ends in .safetensors, got {path.name!r}")
    if path.exists():
        raise AdapterError(f"{path} exists; pick a new file name (nothing is overwritten)")
    if not path.parent.is_dir():
        raise AdapterError(f"the folder {path.parent} does not exist")
    weights_file.check_sums(folder)
    tensors = {f"lora.{k}": v for k, v in weights_file.read_tensors(folder / "adapter" / "adapter_model.safetensors").items()}
    tensors["new_tokens"] = weights_file.read_tensors(folder / "new_tokens.safetensors")["new_tokens"]
    if (folder / DECODER_FILE).is_file():
        tensors |= {f"decoder.{k}": v for k, v in weights_file.read_tensors(folder / DECODER_FILE).items()}
    texts = {"generator": (folder / "generator.json").read_text(),
             "adapter_config": (folder / "adapter" / "adapter_config.json").read_text(),
             "info": (folder / INFO).read_text()}
    meta = {_META_KEY: str(FILE_FORMAT), **texts, "sha256": _digest(tensors, texts)}
    partial = path.with_name(path.name + ".partial")
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(partial), metadata=meta)
        partial.replace(path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise AdapterError(f"cannot write {path}: {e.strerror or e}") from None
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": meta["sha256"]}


def import_file(path: Path, model: dict, name: str | None = None, root: Path | None = None) -> dict:
    """Read an exported adapter file into the adapters folder (as `name`, else the name it was
    exported with), after checking it is whole and fits `model` (identity()); returns its info.
    An existing adapter is never replaced."""
    from safetensors import safe_open

    path, root = Path(path), root or adapters_dir()
    if not path.is_file():
        raise AdapterError(f"{path} is not a file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise AdapterError(f"{path} is {path.stat().st_size >> 20} MB; an adapter file is at most "
                           f"{MAX_FILE_BYTES >> 20} MB")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safe_open handle, not a dict)
    except Exception as e:  # safetensors raises its own types for a garbled or cut file
        raise AdapterError(f"{path} is not a readable safetensors file ({type(e).__name__}: {e})") from None
    if meta.get(_META_KEY) != str(FILE_FORMAT):
        raise AdapterError(f"{path} is not a DynamicPose adapter file (format {FILE_FORMAT})")
    texts = {k: meta.get(k, "") for k in ("generator", "adapter_config", "info")}
    if _digest(tensors, texts) != meta.get("sha256"):
        raise AdapterError(f"{path} is damaged: its contents do not hash to the sha256 it was exported with")
    try:
        generator, info = json.loads(texts["generator"]), json.loads(texts["info"])
        json.loads(texts["adapter_config"])
    except ValueError:
        raise AdapterError(f"{path} holds unreadable configs") from None
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad or "new_tokens" not in tensors:
        raise AdapterError(f"{path} holds NaN or infinite values, or no new token rows")
    why = mismatch(info, generator, model)
    if why:
        raise AdapterError(f"{path} does not fit this backend's model: {why}")
    name = check_name(name or info.get("name"))
    target = root / name
    if target.exists():
        raise AdapterError(f"an adapter named {name!r} exists; import under another name or remove that one")
    root.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=root))
    try:
        (tmp / "adapter").mkdir()
        save_file({k[5:]: v for k, v in tensors.items() if k.startswith("lora.")},
                  str(tmp / "adapter" / "adapter_model.safetensors"))
        (tmp / "adapter" / "adapter_config.json").write_text(texts["adapter_config"])
        save_file({"new_tokens": tensors["new_tokens"]}, str(tmp / "new_tokens.safetensors"))
        decoder = {k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")}
        if decoder:
            save_file(decoder, str(tmp / DECODER_FILE))
        (tmp / "generator.json").write_text(texts["generator"])
        weights_file.write_sums(tmp)
        info = {**info, "name": name, "imported": {"from": str(path), "sha256": meta["sha256"], "when": now()}}
        write_info(tmp, info)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return info


def remove(name: str, root: Path | None = None) -> None:
    shutil.rmtree(folder_of(name, root))
