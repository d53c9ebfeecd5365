# SPDX-License-Identifier: GPL-3.0-or-later
"""The backend over HTTP: `dynamicpose serve` on 127.0.0.1 (standard library only); it can start
that server with a Python interpreter the user configured, reading its one JSON line."""
from __future__ import annotations

import collections
import json
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..motioncore.clip import Motion
from ..motioncore.limits import TRAIN_FPS
from ..motioncore.wire import from_wire, to_wire
from .protocol import BackendError, Cancelled, Progress, TrainingReport

POLL_SECONDS = 0.1
START_SECONDS = 180.0  # the longest a start may take (a cold model load here: 12-46 s)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The token rides on every request: a redirect (anywhere) is refused, never followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, f"the backend answered with a redirect to {newurl!r}; "
                                                         "refused", headers, fp)


# No proxies either (http_proxy in the environment would otherwise see the token).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


class HTTPBackend:
    def __init__(self, url: str, token: str, timeout: float = 300.0, process: subprocess.Popen | None = None,
                 log: collections.deque | None = None):
        self.url, self.token, self.timeout, self.process = url.rstrip("/"), token, timeout, process
        self.log = log if log is not None else collections.deque(maxlen=40)  # the server's last stderr lines
        self.last_adapter: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def start(cls, python: str, args: tuple[str, ...] = (), cwd: str = "", timeout: float = START_SECONDS,
              cancel: threading.Event | None = None) -> "HTTPBackend":
        """Start `python -m backend serve` and connect once it prints its URL and token.

        `python` and `cwd` come checked (client/places.py). With no folder the backend installed
        in that Python runs: `-P` keeps the working directory off its import path. The server
        reads its stdin and exits when it closes, so it never outlives Blender. Bounded by
        `timeout`; `cancel` stops the start (the child is killed)."""
        command = [python, "-m", "backend", "serve", "--exit-with-stdin", *args]
        if not cwd:
            command.insert(1, "-P")
        proc = subprocess.Popen(command, cwd=cwd or Path(python).parent, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str | None] = queue.Queue()
        log: collections.deque = collections.deque(maxlen=40)

        def read(stream, into) -> None:  # reader threads: a silent child never blocks the start
            try:
                for line in stream:
                    into(line)
            except (OSError, ValueError):  # closed by stop()
                pass
            if stream is proc.stdout:
                lines.put(None)

        threading.Thread(target=read, args=(proc.stdout, lines.put), daemon=True).start()
        threading.Thread(target=read, args=(proc.stderr, log.append), daemon=True).start()
        deadline = time.monotonic() + timeout
        backend = cls("", "", process=proc, log=log)
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BackendError(f"the backend did not report its address within {timeout:g} s")
                try:
                    line = lines.get(timeout=min(POLL_SECONDS, left))
                except queue.Empty:
                    continue
                if line is None:
                    proc.wait(5)
                    raise BackendError(f"the backend exited with code {proc.returncode}: {backend.last_words()}")
                if line.strip().startswith("{"):
                    hello = json.loads(line)
                    backend.url, backend.token = hello["url"].rstrip("/"), hello["token"]
                    return backend
        except BaseException:
            backend.stop()
            raise

    def last_words(self) -> str:
        """The end of what the server wrote to stderr."""
        return "".join(self.log)[-2000:].strip()

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def stop(self) -> None:
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass

    # -- calls -------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:
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

    def _job(self, path: str, body: dict, progress: Progress, cancel: threading.Event | None,
             report: TrainingReport = None, see_out: bool = False) -> dict:
        """Submit a job, follow its progress, cancel it when asked; the finished job's state.
        `see_out`: after a cancel, wait for the job to end (a training saves what it learnt)."""
        # None means "the server's default": left out of the request.
        state = self._call("POST", path, {**{k: v for k, v in body.items() if v is not None}, "wait": False})
        cancelled = False
        while state["status"] in ("queued", "running"):
            if cancel is not None and cancel.is_set() and not cancelled:
                self._call("POST", f"/v1/jobs/{state['job']}/cancel")
                if not see_out:
                    raise Cancelled()
                cancelled = True
            if progress is not None:
                progress(state["progress"])
            if report is not None and state.get("training"):
                report(state["training"])
            time.sleep(POLL_SECONDS)
            state = self._call("GET", f"/v1/jobs/{state['job']}")
        self.last_adapter = state.get("adapter")  # which adapter made the result
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
             progress: Progress = None, cancel: threading.Event | None = None, part: str = "body") -> Motion:
        state = self._job("/v1/edit", {"motion": to_wire(motion), "start": start, "stop": stop, "text": text,
                                       "seed": seed, "steps": steps, "part": part}, progress, cancel)
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

    # -- adapters ----------------------------------------------------------------------------
    def adapters(self) -> dict:
        return self._call("GET", "/v1/adapters")

    def use_adapter(self, name: str) -> str:
        return self._job("/v1/adapters/select", {"name": name}, None, None)["result"]["in_use"]

    def train_adapter(self, name: str, clips: list[tuple[Motion, str, str]], steps: int = 120, batch: int = 8,
                      progress: Progress = None, cancel: threading.Event | None = None,
                      report: TrainingReport = None) -> dict:
        # At the model's frame rate: what training reads, and what keeps the request small.
        wire = [{"motion": to_wire(m.resample(TRAIN_FPS)), "caption": text, "source": source[:200]}
                for m, text, source in clips]
        state = self._job("/v1/adapters/train", {"name": name, "clips": wire, "steps": steps, "batch": batch},
                          progress, cancel, report=report, see_out=True)
        return state["result"]

    def export_adapter(self, name: str, path: str) -> dict:
        return self._call("POST", "/v1/adapters/export", {"name": name, "path": str(path)})

    def import_adapter(self, path: str, name: str | None = None) -> dict:
        return self._call("POST", "/v1/adapters/import", {"path": str(path), **({"name": name} if name else {})})

    def remove_adapter(self, name: str) -> None:
        self._call("POST", "/v1/adapters/remove", {"name": name})
