"""Your own adapter in one call, for the server, the CLI and the add-on's embedded mode: trained
on the model the engine runs (training/adapter.py), then measured against the default
(evaluation/adapter_report.py), the report kept in the adapter's folder."""
from __future__ import annotations

from typing import Callable

from backend import adapters as store
from backend.evaluation.adapter_report import measure
from backend.jobs import Cancelled
from backend.training.adapter import AdapterTraining, check_clips
from backend.training.adapter import train_adapter as train

OnProgress = Callable[[dict], None]  # {"step", "steps", "loss", "seconds_left"} after each step


def train_adapter(engine, name: str, motions: list, captions: list, steps: int = AdapterTraining.steps,
                  batch: int = AdapterTraining.batch, lr: float = AdapterTraining.lr, seed: int = 0, on_step=None,
                  on_progress: OnProgress | None = None, report: bool = True, sources: list[str] | None = None,
                  decoder_steps: int = AdapterTraining.decoder_steps) -> dict:
    """Train adapter `name` on `motions` (canonical, a caption or a list of them each) from the
    engine's model into its adapters folder, then measure it; its info. on_step(done, total)
    runs after each step and may raise to stop: what was learnt by then is saved as the
    adapter (its info says "stopped"), then the stop is raised again. The adapter in use
    stays in use."""
    for m in motions:
        engine.check_motion(m)
    check_clips(motions, captions)
    training = AdapterTraining(steps=steps, batch=batch, lr=lr, seed=seed, decoder_steps=decoder_steps)
    stopped: list[BaseException] = []

    def progress(step: int, total: int, loss: float | None, left: float | None) -> bool:
        if on_progress is not None:
            on_progress({"step": step, "steps": total, "loss": None if loss is None else round(loss, 4),
                         "seconds_left": None if left is None else round(left, 1)})
        if on_step is None:
            return False
        try:
            on_step(step, total)
        except Exception as e:  # a cancel: stop after this step and keep what was learnt
            stopped.append(e)
            return True
        return False

    if on_step is not None:
        on_step(0, steps)
    info = train(engine.weights, name, motions, captions, training, root=engine.adapters, device=str(engine.device),
                 progress=progress, cache_dir=engine.cache_dir, sources=sources)
    if stopped:
        raise stopped[0] if not isinstance(stopped[0], Cancelled) else Cancelled()
    if report:
        folder = store.folder_of(name, engine.adapters)
        info["report"] = measure(engine, name, motions, captions, picture=folder / "report.png", seed=seed)
        store.write_info(folder, info)
    return info
