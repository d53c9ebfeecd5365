"""The thread choice: the cores other processes leave free, measured with real busy processes."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from backend import cpu_threads
from backend.jobs import JobQueue


def test_free_cores_rounded_and_at_least_one():
    assert cpu_threads.threads_for(2, 0.0) == 2
    assert cpu_threads.threads_for(2, 0.4) == 2
    assert cpu_threads.threads_for(2, 1.0) == 1
    assert cpu_threads.threads_for(2, 2.0) == 1
    assert cpu_threads.threads_for(8, 3.2) == 5
    assert cpu_threads.threads_for(1, 0.0) == 1


def test_the_users_number_wins_and_bad_ones_are_refused(monkeypatch):
    assert cpu_threads.Chooser(user=3).choose() == 3
    monkeypatch.setenv(cpu_threads.ENV, "2")
    assert cpu_threads.setting() == 2
    for bad in ("two", "-1"):
        monkeypatch.setenv(cpu_threads.ENV, bad)
        with pytest.raises(ValueError, match=cpu_threads.ENV):
            cpu_threads.setting()


@pytest.mark.skipif(not cpu_threads._STAT.is_file(), reason="reads /proc/stat (Linux)")
def test_busy_processes_take_their_cores_and_this_process_does_not_count():
    import os

    cores = os.cpu_count() or 1
    chooser = cpu_threads.Chooser()
    chooser.others_busy()
    time.sleep(0.5)
    before = chooser.others_busy()  # whatever else this machine runs
    # This process spinning is not another process's load.
    end = time.monotonic() + 0.6
    while time.monotonic() < end:
        pass
    assert chooser.others_busy() < before + 0.3
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        time.sleep(0.3)
        chooser.others_busy()  # the window starts with the spinners running
        time.sleep(1.0)
        assert chooser.others_busy() > 0.8 * cores
        time.sleep(0.5)
        assert chooser.choose() == 1
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    assert cpu_threads.Chooser(cores=cores).choose() == cores  # nothing measured: every core


def test_the_queue_chooses_before_every_job():
    import torch

    calls = []
    jobs = JobQueue(before_each=lambda: calls.append(torch.get_num_threads()))
    try:
        for _ in range(3):
            jobs.submit("x", lambda job: None).done.wait(5)
        assert len(calls) == 3
        # A failing choice is the job's failure, not the queue's: the next job still runs.
        jobs.before_each = lambda: 1 / 0
        failed = jobs.submit("x", lambda job: None)
        failed.done.wait(5)
        assert failed.status == "failed" and "ZeroDivisionError" in failed.error
        jobs.before_each = None
        assert jobs.submit("x", lambda job: 7).done.wait(5)
    finally:
        jobs.close()
