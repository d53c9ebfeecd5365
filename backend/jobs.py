"""A queue of engine jobs run one at a time on a worker thread, with progress and cancellation.

The engine is not thread-safe and one model fills the machine, so jobs run in order; callers
wait on a job or poll it.
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable


class Cancelled(Exception):
    pass


@dataclass
class Job:
    id: str
    task: str
    run: Callable[["Job"], Any]
    status: str = "queued"
    progress: float = 0.0
    result: Any = None
    error: str | None = None
    cancel_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    started_at: float | None = None
    finished_at: float | None = None
    adapter: str | None = None       # the adapter in use when the job ran
    training: dict | None = None     # a training job's step, loss and time left

    @property
    def seconds(self) -> float | None:
        """How long the job ran (None until it has finished)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def on_step(self, done: int, total: int) -> None:
        """Progress hook for the engine; raises Cancelled once a cancel was asked for."""
        self.progress = min(1.0, done / max(total, 1))
        if self.cancel_requested:
            raise Cancelled()


class JobQueue:
    def __init__(self, keep_seconds: float = 600.0, max_jobs: int = 1000,
                 before_each: Callable[[], Any] | None = None):
        """`before_each` runs on the worker before every job (the engine's thread choice)."""
        self.before_each = before_each
        self._jobs: dict[str, Job] = {}
        self._queue: "queue.Queue[Job | None]" = queue.Queue()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.keep_seconds, self.max_jobs = keep_seconds, max_jobs
        self.closing = False
        self._worker = threading.Thread(target=self._work, name="dynamicpose-jobs", daemon=True)
        self._worker.start()

    def submit(self, task: str, run: Callable[[Job], Any]) -> Job:
        with self._lock:
            if self.closing:
                raise OverflowError("the backend is shutting down")
            self._forget_old()
            if sum(j.status in ("queued", "running") for j in self._jobs.values()) >= self.max_jobs:
                raise OverflowError(f"{self.max_jobs} jobs are waiting already; try again later")
            job = Job(f"j{next(self._ids)}", task, run)
            self._jobs[job.id] = job
        self._queue.put(job)
        return job

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the worker thread, wait, and return its result or raise its exception.

        Load the model through this: torch runs a model markedly slower on a thread other than
        the one that first ran it (measured 100-200 ms more per 2 s clip on 2 cores).
        """
        box: dict[str, Any] = {}

        def run(_job: Job) -> None:
            try:
                box["value"] = fn()
            except BaseException as e:  # handed to the caller, not swallowed by the queue
                box["error"] = e

        self.submit("call", run).done.wait()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None and job.status in ("queued", "running"):
            job.cancel_requested = True
        return job

    def shut_down(self) -> None:
        """Cancel every queued and running job and take no more (the server is stopping)."""
        with self._lock:
            self.closing = True
            for job in self._jobs.values():
                if job.status in ("queued", "running"):
                    job.cancel_requested = True

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._queue.put(None)

    def _forget_old(self) -> None:
        now = time.monotonic()
        for k in [k for k, j in self._jobs.items() if j.finished_at and now - j.finished_at > self.keep_seconds]:
            del self._jobs[k]

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            if job.cancel_requested:
                job.status = "cancelled"
            else:
                job.status, job.started_at = "running", time.monotonic()
                try:
                    if self.before_each is not None:
                        self.before_each()
                    job.result = job.run(job)
                    job.status, job.progress = "done", 1.0
                except Cancelled:
                    job.status = "cancelled"
                except (ValueError, OverflowError) as e:
                    job.status, job.error = "failed", str(e)
                except Exception as e:  # a bug must not stop the queue
                    job.status, job.error = "failed", f"internal error: {type(e).__name__}: {e}"
            job.finished_at = time.monotonic()
            job.done.set()
