"""The one training loop every trainer runs: seeds and threads, the optimizer step (gradient
clipping, learning-rate schedule), smoothed losses on a progress bar and in a history for the
loss curve, a time budget, and checkpoints it resumes from (backend/training/checkpoint.py).

A trainer supplies what is its own: a step function that draws a batch and returns its loss and
the numbers to log, and, optionally, something to do every so many steps (a validation pass)."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from backend.training import checkpoint
from backend.training.distributed import World

StepFn = Callable[[int], tuple[torch.Tensor, dict[str, float]]]


def seeded(seed: int, threads: int = 0) -> random.Random:
    """Torch seeded (and its thread count set, when given); a Python RNG for the trainer's draws."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    return random.Random(seed)


@dataclass
class Loop:
    """How to run: `steps` in all, a checkpoint in `checkpoint_dir` every `save_every` steps (and
    at the end), resumed from when `resume` and one is there; stop early after `minutes`."""

    name: str
    steps: int
    seed: int = 0
    checkpoint_dir: Path | None = None
    resume: bool = True
    save_every: int = 250
    minutes: float = 0.0
    clip_grad: float | None = 1.0
    smoothing: float = 0.98          # of the running losses shown and recorded
    history_every: int = 25
    history_names: dict[str, str] = field(default_factory=dict)  # log key -> curve name
    progress: bool = True


@dataclass
class Outcome:
    step: int
    seconds: float
    history: dict[str, list]
    running: dict[str, float]
    resumed_from: int = 0
    stopped: bool = False  # by `stop`, before loop.steps


def run(loop: Loop, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step_fn: StepFn,
        scheduler=None, rng: random.Random | None = None,
        every: tuple[int, Callable[[int, Outcome], None]] | None = None,
        stop: Callable[[int, Outcome], bool] | None = None, world: World = World()) -> Outcome:
    """Train `model` (what the checkpoint holds) until `loop.steps`. `every`: (n, fn) calls
    fn(step, outcome so far) every n steps and at the last one, before that step's checkpoint.
    `stop(step, outcome)` runs after every step (progress reports, a cancel): True ends the
    run there, with a checkpoint, as a spent time budget does. Among several processes
    (`world`), rank 0 shows progress and saves, and all ranks stop at the same step."""
    out = Outcome(0, 0.0, {name: [] for name in loop.history_names.values()}, {})
    ckpt = Path(loop.checkpoint_dir) if loop.checkpoint_dir else None
    if ckpt is not None and loop.resume and (ckpt / "checkpoint.json").is_file():
        meta = checkpoint.load(ckpt, model, optimizer, scheduler)
        out.step = out.resumed_from = meta["step"]
        out.history = {**out.history, **meta.get("history", {})}
        out.running = meta.get("running", {})
        if rng is not None and meta.get("rng_state"):  # it draws on exactly where it stopped
            version, state, gauss = meta["rng_state"]
            rng.setstate((version, tuple(state), gauss))
        elif rng is not None:  # a checkpoint from before the state was kept: on from its own point
            rng.seed(loop.seed + out.step)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    t0 = time.perf_counter()
    bar = tqdm(total=loop.steps, initial=out.step, unit="step", desc=loop.name,
               disable=not (loop.progress and world.main))
    model.train()
    while out.step < loop.steps:
        if world.any(bool(loop.minutes) and time.perf_counter() - t0 > 60 * loop.minutes):
            bar.write(f"stopping at step {out.step}: the {loop.minutes} minute budget is spent")
            break
        loss, logs = step_fn(out.step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if loop.clip_grad:
            torch.nn.utils.clip_grad_norm_(params, loop.clip_grad)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        out.step += 1
        for key, value in logs.items():
            old = out.running.get(key)
            out.running[key] = value if old is None else loop.smoothing * old + (1 - loop.smoothing) * value
        bar.update()
        bar.set_postfix({k: f"{v:.4g}" for k, v in out.running.items()})
        if out.step % loop.history_every == 0:
            for key, name in loop.history_names.items():
                if key in out.running:
                    out.history[name].append((out.step, out.running[key]))
        last = out.step == loop.steps
        if every is not None and (out.step % every[0] == 0 or last):
            every[1](out.step, out)
        if ckpt is not None and world.main and (out.step % loop.save_every == 0 or last):
            _save(ckpt, model, optimizer, scheduler, out, rng)
        if world.any(stop is not None and stop(out.step, out)) and not last:
            bar.write(f"stopping at step {out.step}: asked to")
            out.stopped = True
            break
    bar.close()
    if ckpt is not None and world.main and out.step < loop.steps:  # stopped early: resume from here
        _save(ckpt, model, optimizer, scheduler, out, rng)
    world.barrier()  # no rank goes on (to load or overwrite what rank 0 writes) before it is written
    model.eval()
    out.seconds = time.perf_counter() - t0
    return out


def _save(ckpt: Path, model, optimizer, scheduler, out: Outcome, rng: random.Random | None) -> None:
    extra = {"history": out.history, "running": out.running}
    if rng is not None:  # the trainer's draws, so a resumed run sees the batches an unbroken one would
        extra["rng_state"] = rng.getstate()
    checkpoint.save(ckpt, model, optimizer, scheduler, out.step, extra)
