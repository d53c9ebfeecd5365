"""How many CPU threads a job runs on: the cores other processes leave free, or the user's number.

torch's OpenMP regions wait at every barrier for their slowest thread; a thread that shares its
core with another busy process (Blender playing back, a render) makes every region wait for it,
and a 2-thread generate took 13x its quiet time beside two busy processes, against 1.5x for one
thread. So before each job the engine's queue asks how busy the machine was since the last look,
leaving its own process out, and runs on the cores that were free (at least one).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "DYNAMICPOSE_THREADS"  # a whole number overrides the choice (0 or unset: choose)
_STAT = Path("/proc/stat")
MIN_WINDOW_S = 0.2  # shorter windows say too little; the last choice stands


def setting() -> int:
    """The user's thread count from DYNAMICPOSE_THREADS (0: choose per job)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{ENV} must be a whole number of threads, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{ENV} must be 0 (choose) or more, got {value}")
    return value


def _busy_seconds() -> float | None:
    """CPU seconds all processes spent busy since boot (None where /proc/stat is not there)."""
    try:
        first = _STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(v) for v in first[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def threads_for(cores: int, others_busy: float) -> int:
    """Threads to run on when other processes keep `others_busy` cores busy: the free cores,
    rounded, at least one and at most `cores`."""
    return max(1, min(cores, int(cores - others_busy + 0.5)))


@dataclass
class Chooser:
    """Picks each job's thread count from how busy other processes kept the cores since the
    previous job started (this process's own CPU time taken out)."""

    user: int = 0          # a fixed count from the user; 0: choose
    cores: int = os.cpu_count() or 1
    last: tuple[float, float, float] | None = None  # (wall, all busy, own busy) seconds
    chosen: int = 0

    def others_busy(self) -> float | None:
        """Cores other processes kept busy since the last look (None: no window of at least
        MIN_WINDOW_S yet, or no /proc/stat); a look starts the next window."""
        busy = _busy_seconds()
        if busy is None:
            return None
        now, own = time.monotonic(), _own_seconds()
        if self.last is None:
            self.last = (now, busy, own)
            return None
        wall = now - self.last[0]
        if wall < MIN_WINDOW_S:
            return None
        others = max(0.0, (busy - self.last[1]) - (own - self.last[2])) / wall
        self.last = (now, busy, own)
        return others

    def choose(self) -> int:
        if self.user:
            return self.user
        if not _STAT.is_file():  # not Linux: the load average where there is one, else every core
            try:
                return threads_for(self.cores, os.getloadavg()[0])
            except (AttributeError, OSError):
                return self.cores
        others = self.others_busy()
        if others is not None:
            self.chosen = threads_for(self.cores, others)
        return self.chosen or self.cores  # nothing measured yet: every core, as torch would

    def apply(self) -> int:
        """Set torch's thread count for the job about to run; returns it."""
        import torch

        n = self.choose()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        return n
