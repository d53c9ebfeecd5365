# SPDX-License-Identifier: GPL-3.0-or-later
"""The backend over HTTP: `dynamicpose serve` on 127.0.0.1 (standard library only); it can start
that server with a Python interpreter the user configured, reading its one JSON line."""
from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..motioncore.clip import Motion
from ..motioncore.wire import from_wire, to_wire
from .protocol import BackendError, Cancelled, Progress

POLL_SECONDS = 0.1


class HTTPBackend:
    def __init__(self, url: str, token: str, timeout: float = 300.0, process: subprocess.Popen | None = None):
        self.url, self.token, self.timeout, self.process = url.rstrip("/"), token, timeout, process

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def start(cls, python: str, args: tuple[str, ...] = (), cwd: str | None = None,
              timeout: float = 180.0) -> "HTTPBackend":
        """Start `python -m backend serve` and connect once it prints its URL and token."""
        if not python or not Path(python).exists():
            raise BackendError(f"the backend Python {python!r} does not exist; set it in the add-on preferences")
        if cwd and not (Path(cwd) / "backend").is_dir():
            raise BackendError(f"{cwd!r} holds no DynamicPose backend (no backend/ folder); "
                               "set the backend folder in the add-on preferences")
        proc = subprocess.Popen([python, "-m", "backend", "serve", *args], cwd=cwd or None, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.strip().startswith("{"):
                break
            if proc.poll() is not None:
                err = proc.stderr.read()[-2000:]
                raise BackendError(f"the backend exited with code {proc.returncode}: {err.strip()}")
        try:
            hello = json.loads(line)
        except json.JSONDecodeError:
            proc.kill()
            raise BackendError("the backend did not report its address in time") from None
        # Nobody reads stderr from here on; drain it so a chatty server never blocks on a full pipe.
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        return cls(hello["url"], hello["token"], process=proc)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    # -- calls -------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            try:
                answer = json.loads(e.read())
                detail = answer.get("detail") or answer.get("error") or e.reason
            except (ValueError, AttributeError):
                detail = e.reason
            if isinstance(detail, list):  # field errors: "seconds: Input should be ..."
                detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])[1:]))}: {d.get('msg')}" for d in detail)
            raise BackendError(f"backend refused the request ({e.code}): {detail}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise BackendError(f"cannot reach the backend at {self.url}: {getattr(e, 'reason', e)}") from None

    def _job(self, path: str, body: dict, progress: Progress, cancel: threading.Event | None) -> dict:
        """Submit a job, follow its progress, cancel it when asked; the finished job's state."""
        # None means "the server's default": left out of the request.
        state = self._call("POST", path, {**{k: v for k, v in body.items() if v is not None}, "wait": False})
        while state["status"] in ("queued", "running"):
            if cancel is not None and cancel.is_set():
                self._call("POST", f"/v1/jobs/{state['job']}/cancel")
                raise Cancelled()
            if progress is not None:
                progress(state["progress"])
            time.sleep(POLL_SECONDS)
            state = self._call("GET", f"/v1/jobs/{state['job']}")
        if state["status"] == "cancelled":
            raise Cancelled()
        if state["status"] != "done":
            raise BackendError(f"{state['task']} failed: {state.get('error', 'unknown error')}")
        return state

    def info(self) -> dict:
        return self._call("GET", "/v1/info")

    def generate(self, text: str, seconds: float | None, seed: int = 0, variations: int = 1, fps: float = 30.0,
                 steps: int | None = None, progress: Progress = None, cancel: threading.Event | None = None) -> list[Motion]:
        state = self._job("/v1/generate", {"text": text, "seconds": seconds, "seed": seed, "variations": variations,
                                           "fps": fps, "steps": steps}, progress, cancel)
        return [from_wire(m) for m in state["motions"]]

    def edit(self, motion: Motion, start: int, stop: int, text: str = "", seed: int = 0, steps: int | None = None,
             progress: Progress = None, cancel: threading.Event | None = None) -> Motion:
        state = self._job("/v1/edit", {"motion": to_wire(motion), "start": start, "stop": stop, "text": text,
                                       "seed": seed, "steps": steps}, progress, cancel)
        return from_wire(state["motions"][0])

    def continue_(self, motion: Motion, text: str, seconds: float | None = None, seed: int = 0, steps: int | None = None,
                  progress: Progress = None, cancel: threading.Event | None = None) -> Motion:
        state = self._job("/v1/continue", {"motion": to_wire(motion), "text": text, "seconds": seconds,
                                           "seed": seed, "steps": steps}, progress, cancel)
        return from_wire(state["motions"][0])

    def inbetween(self, motion: Motion, keys: list[int], text: str = "", seed: int = 0, steps: int | None = None,
                  progress: Progress = None, cancel: threading.Event | None = None,
                  partial_keys: dict[int, list[str]] | None = None, loop: bool | None = None) -> Motion:
        state = self._job("/v1/inbetween", {"motion": to_wire(motion), "keys": [int(k) for k in keys],
                                            "partial_keys": {int(f): list(j) for f, j in (partial_keys or {}).items()},
                                            "loop": loop, "text": text, "seed": seed, "steps": steps}, progress, cancel)
        return from_wire(state["motions"][0])

    def caption(self, motion: Motion) -> str:
        return self._call("POST", "/v1/caption", {"motion": to_wire(motion)})["text"]
