"""The job queue: order, cancellation before start, run times, and calls on the worker thread."""
import threading
import time

import pytest

from backend.jobs import JobQueue


def test_call_runs_on_the_worker_thread_and_hands_back_errors():
    jobs = JobQueue()
    try:
        assert jobs.call(lambda: threading.current_thread().name) == "dynamicpose-jobs"
        with pytest.raises(KeyError, match="missing weights"):
            jobs.call(lambda: {}["missing weights"])
        job = jobs.submit("generate", lambda j: 7)  # the queue still works after a failed call
        assert job.done.wait(5) and job.result == 7 and job.status == "done"
    finally:
        jobs.close()


def test_jobs_run_in_order_and_report_their_run_time():
    jobs = JobQueue()
    try:
        order = []
        slow = jobs.submit("a", lambda j: (time.sleep(0.2), order.append("a")))
        fast = jobs.submit("b", lambda j: order.append("b"))
        assert fast.seconds is None or slow.seconds is None  # not both finished yet
        assert fast.done.wait(5)
        assert order == ["a", "b"]
        assert 0.2 <= slow.seconds < 2.0 and fast.seconds < slow.seconds
    finally:
        jobs.close()


def test_a_job_cancelled_while_queued_never_runs():
    jobs = JobQueue()
    try:
        gate = threading.Event()
        blocker = jobs.submit("a", lambda j: gate.wait(5))
        ran = []
        later = jobs.submit("b", lambda j: ran.append(1))
        jobs.cancel(later.id)
        gate.set()
        assert later.done.wait(5) and blocker.status == "done"
        assert later.status == "cancelled" and ran == [] and later.seconds is None
    finally:
        jobs.close()
