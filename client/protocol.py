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


class BackendError(RuntimeError):
    """A readable reason the backend could not do what was asked."""


class Cancelled(BackendError):
    def __init__(self) -> None:
        super().__init__("cancelled")


class Backend(Protocol):
    def info(self) -> dict: ...

    def generate(self, text: str, seconds: float | None, seed: int = 0, variations: int = 1, fps: float = 30.0,
                 steps: int | None = None, progress: Progress = None,
                 cancel: threading.Event | None = None) -> list[Motion]: ...

    def edit(self, motion: Motion, start: int, stop: int, text: str = "", seed: int = 0, steps: int | None = None,
             progress: Progress = None, cancel: threading.Event | None = None) -> Motion: ...

    def continue_(self, motion: Motion, text: str, seconds: float | None = None, seed: int = 0,
                  steps: int | None = None, progress: Progress = None,
                  cancel: threading.Event | None = None) -> Motion: ...

    def inbetween(self, motion: Motion, keys: list[int], text: str = "", seed: int = 0, steps: int | None = None,
                  progress: Progress = None, cancel: threading.Event | None = None,
                  partial_keys: dict[int, list[str]] | None = None, loop: bool | None = None) -> Motion: ...

    def caption(self, motion: Motion) -> str: ...

    def stop(self) -> None: ...
