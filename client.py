# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on's side of the backend: one interface, two modes.

- HTTPBackend talks to `dynamicpose serve` on 127.0.0.1 (standard library only), and can start
  that server with a Python interpreter the user configured, reading its one JSON line.
- EmbeddedBackend runs the engine in this process when torch and the backend package import.

Both return motioncore Motions on the canonical skeleton, so operators cannot tell them apart.
"""
from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .motioncore.clip import Motion
from .motioncore.wire import from_wire, to_wire


class BackendError(RuntimeError):
    """A readable reason the backend could not do what was asked."""


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
        proc = subprocess.Popen([python, "-m", "backend", "serve", *args], cwd=cwd, stdout=subprocess.PIPE,
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
                detail = json.loads(e.read()).get("detail") or e.reason
            except (ValueError, AttributeError):
                detail = e.reason
            if isinstance(detail, list):  # field errors: "seconds: Input should be ..."
                detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])[1:]))}: {d.get('msg')}" for d in detail)
            raise BackendError(f"backend refused the request ({e.code}): {detail}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise BackendError(f"cannot reach the backend at {self.url}: {getattr(e, 'reason', e)}") from None

    def info(self) -> dict:
        return self._call("GET", "/v1/info")

    def generate(self, text: str, seconds: float, seed: int = 0, variations: int = 1, fps: float = 30.0,
                 steps: int = 8) -> list[Motion]:
        out = self._call("POST", "/v1/generate", {"text": text, "seconds": seconds, "seed": seed,
                                                   "variations": variations, "fps": fps, "steps": steps})
        if out.get("status") != "done":
            raise BackendError(f"generation {out.get('status')}: {out.get('error', '')}")
        return [from_wire(m) for m in out["motions"]]

    def caption(self, motion: Motion) -> str:
        return self._call("POST", "/v1/caption", {"motion": to_wire(motion)})["text"]


class EmbeddedBackend:
    """The engine in this process (needs torch and the backend package importable)."""

    def __init__(self, weights: str | None = None, device: str = "auto"):
        try:
            from backend.engine import Engine
        except ImportError as e:
            raise BackendError(f"the embedded backend needs torch and the DynamicPose backend here ({e}); "
                               "use a local backend process instead") from None
        self.engine = Engine(Path(weights) if weights else None, device=device)

    def info(self) -> dict:
        return self.engine.info()

    def generate(self, text: str, seconds: float, seed: int = 0, variations: int = 1, fps: float = 30.0,
                 steps: int = 8) -> list[Motion]:
        from backend.engine import Sampling

        try:
            found = self.engine.generate(text, seconds, seed=seed, variations=variations, fps=fps,
                                         sampling=Sampling(steps=steps))
        except ValueError as e:
            raise BackendError(str(e)) from None
        # Through the wire form, so both modes give the same numbers.
        return [from_wire(to_wire(m)) for m in found]

    def caption(self, motion: Motion) -> str:
        return self.engine.caption(motion)

    def stop(self) -> None:
        pass
