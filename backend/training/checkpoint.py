"""Training checkpoints without pickle: model, optimiser and scheduler tensors in safetensors,
everything else in JSON, so a run resumes where it stopped."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def _trained_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Everything that training changes: all buffers, and the parameters that need grads
    (a LoRA model's frozen base is left out: it is reloaded from the base checkpoint)."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in trainable or k not in frozen}


def save(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
         scheduler, step: int, extra: dict | None = None) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in _trained_state(model).items()}
    opt = optimizer.state_dict()
    scalars: dict[str, dict] = {}
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    tmp = directory / "checkpoint.safetensors.partial"
    save_file(tensors, str(tmp))
    meta = {"step": step, "param_groups": opt["param_groups"], "optim_scalars": scalars,
            "scheduler": scheduler.state_dict() if scheduler is not None else None, **(extra or {})}
    (directory / "checkpoint.json.partial").write_text(json.dumps(meta))
    tmp.replace(directory / "checkpoint.safetensors")
    (directory / "checkpoint.json.partial").replace(directory / "checkpoint.json")


def load(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
         scheduler) -> dict:
    """Restore in place; returns the JSON metadata (with "step")."""
    directory = Path(directory)
    tensors = load_file(str(directory / "checkpoint.safetensors"))
    meta = json.loads((directory / "checkpoint.json").read_text())
    saved = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    missing = set(_trained_state(model)) - set(saved)
    if missing:
        raise ValueError(f"checkpoint in {directory} lacks {sorted(missing)[:3]}; restart training")
    model.load_state_dict(saved, strict=False)
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, key = k.split(".", 2)
            state.setdefault(int(pid), {})[key] = v
    for pid, extra in meta["optim_scalars"].items():
        state.setdefault(int(pid), {}).update(extra)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    if scheduler is not None and meta.get("scheduler"):
        scheduler.load_state_dict(meta["scheduler"])
    return meta


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup: int, steps: int, floor: float = 0.1):
    """Linear warm-up over `warmup` steps, then cosine decay to `floor` of the base rate at `steps`."""
    import math

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min((step - warmup) / max(1, steps - warmup), 1.0)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
