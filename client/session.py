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

from . import places
from .embedded import EmbeddedBackend
from .http import HTTPBackend
from .protocol import BackendError, Cancelled


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
        """The preferences, checked for the mode in use (client/places.py): BackendError says
        what to fix."""
        import bpy

        python = backend_dir = url = ""
        if prefs.mode == "PROCESS":
            python, backend_dir = places.backend_python(prefs.python), places.backend_folder(prefs.backend_dir)
        elif prefs.mode == "URL":
            url = places.loopback_url(prefs.url)
        else:
            backend_dir = places.backend_folder(prefs.backend_dir)
        return cls(prefs.mode, python, backend_dir, url, prefs.token.strip(), bpy.path.abspath(prefs.weights),
                   prefs.device)


_lock = threading.Lock()
_current: tuple[BackendConfig, Any] | None = None
_stopping = threading.Event()  # set by disconnect(): a start in progress gives up
_restarted: set[BackendConfig] = set()  # local processes already started again once after dying


def connect(config: BackendConfig, cancel: threading.Event | None = None):
    """The backend for this configuration, started once and reused (call from a worker thread:
    a start takes seconds; `cancel`, or disconnect(), stops it). A local process that died is
    started again once; a second death is reported with what it said."""
    global _current
    with _lock:
        _stopping.clear()
        if _current is not None and _current[0] == config:
            backend = _current[1]
            if getattr(backend, "alive", lambda: True)():
                return backend
            _current = None
            said = backend.last_words()
            backend.stop()
            if config in _restarted:
                raise BackendError(f"the backend stopped again (exit code {backend.process.returncode}): "
                                   f"{said or 'it said nothing'}")
            _restarted.add(config)
        if _current is not None:
            _current[1].stop()
            _current = None
        args = ["--device", config.device]
        if config.weights:
            args += ["--weights", config.weights]
        if config.mode == "PROCESS":
            backend = HTTPBackend.start(config.python, tuple(args), cwd=config.backend_dir,
                                        cancel=_either(cancel, _stopping))
        elif config.mode == "URL":
            backend = HTTPBackend(places.loopback_url(config.url), config.token)
            backend.info()  # fail now, with a readable reason, if it is not there
        else:
            backend = EmbeddedBackend(config.weights or None, device=config.device,
                                      backend_dir=config.backend_dir or None)
        if _stopping.is_set():  # Stop was pressed while it loaded
            backend.stop()
            raise Cancelled()
        _current = (config, backend)
        return backend


class _either:
    """An Event-like view that is set when either event is."""

    def __init__(self, *events):
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


def current():
    return None if _current is None else _current[1]


def is_connected(config: BackendConfig) -> bool:
    """Whether a backend for this configuration is up (connect() then returns at once)."""
    now = _current
    return now is not None and now[0] == config and getattr(now[1], "alive", lambda: True)()


def disconnect() -> None:
    """Stop the backend without waiting on a start in progress (that start gives up and ends
    its process itself): safe on Blender's main thread."""
    global _current
    _stopping.set()
    if not _lock.acquire(blocking=False):
        return
    try:
        if _current is not None:
            _current[1].stop()
            _current = None
        _restarted.clear()
    finally:
        _lock.release()


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
