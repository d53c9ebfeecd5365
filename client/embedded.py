# SPDX-License-Identifier: GPL-3.0-or-later
"""The backend in this process: the engine itself, where Blender's Python can import torch and
the backend package (Blender 4.2 to 5.0, Python 3.11)."""
from __future__ import annotations

import threading
from pathlib import Path

from ..motioncore.clip import Motion
from ..motioncore.wire import from_wire, to_wire
from .protocol import BackendError, Cancelled, Progress, TrainingReport

BACKEND_PYTHON = (3, 11)  # the Python the backend and its pinned stack are built for (pyproject.toml)


class EmbeddedBackend:
    """The engine in this process (needs torch and the backend package importable; `backend_dir`
    is put on the import path when given)."""

    def __init__(self, weights: str | None = None, device: str = "auto", backend_dir: str | None = None):
        import sys

        if sys.version_info[:2] != BACKEND_PYTHON:
            raise BackendError(
                f"Embedded runs the model in Blender's own Python {sys.version_info[0]}.{sys.version_info[1]}, but the "
                f"backend runs on Python {'.'.join(map(str, BACKEND_PYTHON))} (Blender 4.2 to 5.0); with this "
                "Blender pick Backend: Local process in the add-on's preferences, with a Python "
                f"{'.'.join(map(str, BACKEND_PYTHON))} environment that has the backend installed")
        if backend_dir and backend_dir not in sys.path:
            sys.path.append(backend_dir)
        try:
            from backend import cpu_threads
            from backend.engine import Engine
            from backend.jobs import JobQueue
        except ImportError as e:
            raise BackendError(f"the embedded backend needs torch and the DynamicPose backend here ({e}); "
                               "use a local backend process instead") from None
        # One worker thread loads the model and runs every call: torch runs a model slower on
        # threads other than the one that first ran it.
        # Each job runs on the cores other processes (Blender playing back, a render) leave free.
        self._jobs = JobQueue(before_each=cpu_threads.Chooser(user=cpu_threads.setting()).apply)
        self.last_adapter: str | None = None
        self.engine = self._jobs.call(lambda: Engine(Path(weights) if weights else None, device=device))

    def info(self) -> dict:
        return self.engine.info()

    def _run(self, call, progress: Progress, cancel: threading.Event | None):
        """Engine call with progress and cancel; answers through the wire form, so both modes
        give the same numbers, and turns the engine's refusals into BackendError."""
        def on_step(done: int, total: int) -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            if progress is not None:
                progress(done / max(total, 1))

        try:
            found = self._jobs.call(lambda: call(on_step))
        except ValueError as e:
            raise BackendError(str(e)) from None
        self.last_adapter = self.engine.adapter
        if isinstance(found, list):
            return [from_wire(to_wire(m)) for m in found]
        return from_wire(to_wire(found))

    def _sampling(self, steps: int | None):
        from backend.sampling import Sampling

        return Sampling() if steps is None else Sampling(steps=steps)

    def generate(self, text: str, seconds: float | None, seed: int = 0, variations: int = 1, fps: float = 30.0,
                 steps: int | None = None, progress: Progress = None, cancel: threading.Event | None = None) -> list[Motion]:
        return self._run(lambda cb: self.engine.generate(text, seconds, seed=seed, variations=variations, fps=fps,
                                                         sampling=self._sampling(steps), on_step=cb), progress, cancel)

    def edit(self, motion: Motion, start: int, stop: int, text: str = "", seed: int = 0, steps: int | None = None,
             progress: Progress = None, cancel: threading.Event | None = None, part: str = "body") -> Motion:
        m = from_wire(to_wire(motion))
        return self._run(lambda cb: self.engine.edit(m, start, stop, text, seed=seed, part=part,
                                                     sampling=self._sampling(steps), on_step=cb), progress, cancel)

    def continue_(self, motion: Motion, text: str, seconds: float | None = None, seed: int = 0, steps: int | None = None,
                  progress: Progress = None, cancel: threading.Event | None = None) -> Motion:
        m = from_wire(to_wire(motion))
        return self._run(lambda cb: self.engine.continue_(m, text, seconds, seed=seed,
                                                          sampling=self._sampling(steps), on_step=cb), progress, cancel)

    def inbetween(self, motion: Motion, keys: list[int], text: str = "", seed: int = 0, steps: int | None = None,
                  progress: Progress = None, cancel: threading.Event | None = None,
                  partial_keys: dict[int, list[str]] | None = None, loop: bool | None = None) -> Motion:
        m = from_wire(to_wire(motion))
        return self._run(lambda cb: self.engine.inbetween(m, keys, text, seed=seed, partial_keys=partial_keys, loop=loop,
                                                          sampling=self._sampling(steps), on_step=cb), progress, cancel)

    def caption(self, motion: Motion) -> str:
        m = from_wire(to_wire(motion))
        return self._jobs.call(lambda: self.engine.caption(m))

    # -- adapters ----------------------------------------------------------------------------
    def _call(self, fn):
        """fn() on the engine's thread; its refusals as BackendError."""
        try:
            return self._jobs.call(fn)
        except ValueError as e:
            raise BackendError(str(e)) from None

    def adapters(self) -> dict:
        return self._call(lambda: {"adapters": self.engine.adapters_list(), "in_use": self.engine.adapter})

    def use_adapter(self, name: str) -> str:
        return self._call(lambda: self.engine.use_adapter(name)["name"])

    def train_adapter(self, name: str, clips: list[tuple[Motion, str, str]], steps: int = 120, batch: int = 8,
                      progress: Progress = None, cancel: threading.Event | None = None,
                      report: TrainingReport = None) -> dict:
        from backend import studio

        motions = [from_wire(to_wire(m)) for m, _, _ in clips]

        def on_step(done: int, total: int) -> None:
            if progress is not None:
                progress(done / max(total, 1))
            if cancel is not None and cancel.is_set():
                raise Cancelled()

        return self._call(lambda: studio.train_adapter(self.engine, name, motions, [c for _, c, _ in clips], steps=steps,
                                                       batch=batch, on_step=on_step, on_progress=report,
                                                       sources=[s[:200] for _, _, s in clips]))

    def export_adapter(self, name: str, path: str) -> dict:
        from backend import adapters as store

        return self._call(lambda: store.export(name, Path(path), self.engine.adapters))

    def import_adapter(self, path: str, name: str | None = None) -> dict:
        from backend import adapters as store

        return self._call(lambda: store.import_file(Path(path), self.engine.identity, name=name,
                                                    root=self.engine.adapters))

    def remove_adapter(self, name: str) -> None:
        from backend import adapters as store

        if name == self.engine.adapter:
            raise BackendError(f"{name!r} is in use; select another adapter first")
        self._call(lambda: store.remove(name, self.engine.adapters))

    def stop(self) -> None:
        self._jobs.close()
