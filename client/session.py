# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on's one backend connection and the background work running on it.

Preferences are read on the main thread into a plain BackendConfig; the backend itself is
created and used on a worker thread (starting a server or loading a model takes a while),
and nothing in a worker touches bpy.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from .embedded import EmbeddedBackend
from .http import HTTPBackend
from .protocol import BackendError


@dataclass(frozen=True)
class BackendConfig:
    mode: str = "PROCESS"
    python: str = ""
    backend_dir: str = ""
    url: str = ""
    token: str = ""
    weights: str = ""
    device: str = "auto"

    @classmethod
    def from_preferences(cls, prefs) -> "BackendConfig":
        import bpy

        path = bpy.path.abspath
        return cls(prefs.mode, path(prefs.python), path(prefs.backend_dir), prefs.url.strip(), prefs.token.strip(),
                   path(prefs.weights), prefs.device)


_lock = threading.Lock()
_current: tuple[BackendConfig, Any] | None = None


def connect(config: BackendConfig):
    """The backend for this configuration, started once and reused (call from any thread)."""
    global _current
    with _lock:
        if _current is not None and _current[0] == config:
            return _current[1]
        if _current is not None:
            _current[1].stop()
            _current = None
        args = ["--device", config.device]
        if config.weights:
            args += ["--weights", config.weights]
        if config.mode == "PROCESS":
            backend = HTTPBackend.start(config.python, tuple(args), cwd=config.backend_dir or None)
        elif config.mode == "URL":
            if not config.url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
                raise BackendError(f"the backend URL must be on this computer (http://127.0.0.1:PORT), got {config.url!r}")
            backend = HTTPBackend(config.url, config.token)
            backend.info()  # fail now, with a readable reason, if it is not there
        else:
            backend = EmbeddedBackend(config.weights or None, device=config.device,
                                      backend_dir=config.backend_dir or None)
        _current = (config, backend)
        return backend


def current():
    return None if _current is None else _current[1]


def disconnect() -> None:
    global _current
    with _lock:
        if _current is not None:
            _current[1].stop()
            _current = None


class Task:
    """fn(progress, cancel) on a worker thread; the main thread polls done/result/error."""

    def __init__(self, fn: Callable[[Callable[[float], None], threading.Event], Any]):
        self.progress = 0.0
        self.result: Any = None
        self.error: Exception | None = None
        self.cancel = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(fn,), name="dynamicpose-task", daemon=True)
        self._thread.start()

    def _set_progress(self, value: float) -> None:
        self.progress = value

    def _run(self, fn) -> None:
        try:
            self.result = fn(self._set_progress, self.cancel)
        except Exception as e:  # reported by the operator on the main thread
            self.error = e
        finally:
            self.done.set()
