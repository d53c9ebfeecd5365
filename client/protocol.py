# SPDX-License-Identifier: GPL-3.0-or-later
"""What every backend offers the operators: the same calls on canonical motion (motioncore:
metres, Z up, the canonical skeleton), progress through a callback, a stop through a
threading.Event. HTTPBackend (client/http.py) and EmbeddedBackend (client/embedded.py) both
provide it, so the operators cannot tell them apart."""
from __future__ import annotations

import threading
from typing import Callable, Protocol

from ..motioncore.clip import Motion

Progress = Callable[[float], None] | None
# A training's step, loss and time left ({"step", "steps", "loss", "seconds_left"}), as it goes.
TrainingReport = Callable[[dict], None] | None


class BackendError(RuntimeError):
    """A readable reason the backend could not do what was asked."""


class Cancelled(BackendError):
    def __init__(self) -> None:
        super().__init__("cancelled")


class Backend(Protocol):
    last_adapter: str | None  # the adapter that made the last result ("default": the shipped model)

    def info(self) -> dict: ...

    def generate(self, text: str, seconds: float | None, seed: int = 0, variations: int = 1, fps: float = 30.0,
                 steps: int | None = None, progress: Progress = None,
                 cancel: threading.Event | None = None) -> list[Motion]: ...

    def edit(self, motion: Motion, start: int, stop: int, text: str = "", seed: int = 0, steps: int | None = None,
             progress: Progress = None, cancel: threading.Event | None = None, part: str = "body") -> Motion: ...

    def continue_(self, motion: Motion, text: str, seconds: float | None = None, seed: int = 0,
                  steps: int | None = None, progress: Progress = None,
                  cancel: threading.Event | None = None) -> Motion: ...

    def inbetween(self, motion: Motion, keys: list[int], text: str = "", seed: int = 0, steps: int | None = None,
                  progress: Progress = None, cancel: threading.Event | None = None,
                  partial_keys: dict[int, list[str]] | None = None, loop: bool | None = None) -> Motion: ...

    def caption(self, motion: Motion) -> str: ...

    # The user's own adapters (backend/adapters.py): "default" is the shipped model's.
    def adapters(self) -> dict: ...  # {"adapters": [{"name", "clips", "steps", "created", ...}], "in_use": name}

    def use_adapter(self, name: str) -> str: ...

    def train_adapter(self, name: str, clips: list[tuple[Motion, str, str]], steps: int = 120, batch: int = 8,
                      progress: Progress = None, cancel: threading.Event | None = None,
                      report: TrainingReport = None) -> dict: ...  # clips: (motion, caption, source)

    def export_adapter(self, name: str, path: str) -> dict: ...

    def import_adapter(self, path: str, name: str | None = None) -> dict: ...

    def remove_adapter(self, name: str) -> None: ...

    def stop(self) -> None: ...
