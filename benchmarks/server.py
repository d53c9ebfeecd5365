"""Backend server figures: cold start (first, with no cached base model, and cached), HTTP
overhead over in-process calls, and the server's peak memory.

    python benchmarks/server.py [--weights DIR] [--runs 20]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def start(weights: str | None, cache: str) -> tuple[subprocess.Popen, dict, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), DYNAMICPOSE_CACHE=cache)
    args = [sys.executable, "-m", "backend", "serve", "--device", "cpu"] + (["--weights", weights] if weights else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    hello = json.loads(proc.stdout.readline())
    return proc, hello, time.perf_counter() - t0


def post(hello: dict, path: str, body: dict) -> dict:
    req = urllib.request.Request(hello["url"] + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {hello['token']}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def peak_rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None)
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    cache = tempfile.mkdtemp(prefix="dp-bench-")
    try:
        proc, hello, cold_first = start(args.weights, cache)
        proc.terminate()
        proc.wait()
        proc, hello, cold_cached = start(args.weights, cache)
        os.environ["DYNAMICPOSE_CACHE"] = cache
        from backend.engine import Engine, Sampling
        from motioncore.wire import to_wire

        engine = Engine(Path(args.weights) if args.weights else None, device="cpu")
        body = {"text": "a person walks forward", "seconds": 2.0, "seed": 1, "steps": 2}
        sampling = Sampling(steps=body["steps"])

        def local() -> None:
            [to_wire(m) for m in engine.generate(body["text"], body["seconds"], seed=1, sampling=sampling)]

        # Alternate the two so that the machine's drift (a shared VM) falls on both alike.
        http, in_job, in_process = [], [], []
        for k in range(args.runs + 1):
            t = time.perf_counter()
            answer = post(hello, "/v1/generate", body)
            wall = time.perf_counter() - t
            t = time.perf_counter()
            local()
            here = time.perf_counter() - t
            if k:  # the first of each is warm-up
                http.append(wall)
                in_job.append(wall - answer["seconds"])
                in_process.append(here)
        peak = peak_rss_mb(proc.pid)
        proc.terminate()
        proc.wait()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    h, l = statistics.median(http), statistics.median(in_process)
    print(f"cold start, no cached base (dequantise GGUF): {cold_first:.1f} s")
    print(f"cold start, cached base:                      {cold_cached:.1f} s")
    print(f"2 s clip, 2 passes (median of {args.runs}, alternating): HTTP {h * 1000:.1f} ms, "
          f"in-process {l * 1000:.1f} ms, difference {(h - l) * 1000:.1f} ms")
    print(f"HTTP overhead, request time minus the job's own run time in the server: "
          f"{statistics.median(in_job) * 1000:.1f} ms")
    print(f"server peak memory: {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
