"""Seconds to generate an 8 s clip at 30 fps (median of 10 after warm-up), all in one run: the
default (parallel passes with classifier-free guidance), the previous default (5 guided
passes), parallel without guidance, and token-by-token decoding with a KV cache, each beside
its memory-bandwidth bound.

    python benchmarks/generate_speed.py [--device cpu|cuda] [--seconds 8] [--threads 1,2] [--busy 2] [--quick]

Every row at each thread count, quietly and with `--busy` processes spinning on the cores, each
beside its compute and memory bounds from the same run (the bounds count only the weights that
are multiplied: embedding rows are looked up).
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend import cpu_threads  # noqa: E402
from backend.engine import Engine, Sampling  # noqa: E402


def memory_bandwidth_gb_s(mb: int = 512) -> float:
    """Best of a few large copies, read + write."""
    a = np.ones(mb * 2**20 // 8)
    b = np.empty_like(a)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(b, a)
        best = max(best, 2 * a.nbytes / (time.perf_counter() - t))
    return best / 1e9


def matmul_gflops(dtype: torch.dtype, device: torch.device) -> float:
    """Best throughput of the model's widest layer shape (80 tokens x 576 -> 1536)."""
    a = torch.randn(80, 576, dtype=dtype, device=device)
    w = torch.randn(1536, 576, dtype=dtype, device=device)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(50):
            torch.nn.functional.linear(a, w)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t) / 50)
    return 2 * 80 * 576 * 1536 / best / 1e9


def median_time(fn, runs: int = 10) -> float:
    for _ in range(3):  # warm-up: the first calls at new shapes also build the matmul kernels
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@contextlib.contextmanager
def busy_processes(count: int):
    """`count` processes spinning on the CPU (as a render or Blender's playback does) while the
    block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5 if count else 0)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--fps", type=float, default=30.0, help="the clip's frame rate (the engine's default: 30)")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--threads", default="1,2,auto",
                   help="torch thread counts to measure at (CPU); auto: chosen before each call, as the server does")
    p.add_argument("--busy", type=int, default=2, help="also measure with this many busy processes (0: quiet only)")
    p.add_argument("--quick", action="store_true", help="the default decoding only")
    p.add_argument("--weights", default=None)
    args = p.parse_args()
    engine = Engine(Path(args.weights) if args.weights else None, device=args.device)
    text = "a person walks forward, then waves with the right hand."
    n = engine.motion_tokens(args.seconds, args.fps)  # what generate makes, rounding included
    default = Sampling()
    runs = {  # name: (sampling, forwards of the motion tokens)
        f"default: {default.steps} parallel passes, guidance {default.guidance:g}":
            (default, default.steps * (2 if default.guidance != 1 else 1)),
        "5 parallel passes, guidance 3 (the previous default)": (Sampling(steps=5, guidance=3.0), 10),
        f"{default.steps} parallel passes, no guidance": (Sampling(steps=default.steps, guidance=1.0), default.steps),
        "token by token, KV cache": (Sampling(decoding="next", guidance=1.0), n),
    }
    if args.quick:
        runs = dict(list(runs.items())[:1])
    # Read and multiplied per token: every weight but the embedding tables, which are only looked up.
    multiplied = sum(p_.numel() for n_, p_ in engine.model.named_parameters() if "embed" not in n_ and "new_tokens" not in n_)
    weight_bytes = multiplied * torch.finfo(engine.dtype).bits / 8
    flop_per_token = 2 * multiplied
    bw = memory_bandwidth_gb_s() if engine.device.type == "cpu" else float("nan")
    print(f"device {engine.device}, {engine.dtype}, {multiplied / 1e6:.0f}M multiplied parameters "
          f"({weight_bytes / 1e6:.0f} MB), {n} motion tokens for {args.seconds:g} s at {args.fps:g} fps; "
          f"memory {bw:.1f} GB/s")
    threads = [t if t == "auto" else int(t) for t in args.threads.split(",")] if engine.device.type == "cpu" \
        else [torch.get_num_threads()]
    chooser = cpu_threads.Chooser()
    gflops = {}
    for t in threads:
        torch.set_num_threads(chooser.cores if t == "auto" else t)
        gflops[t] = matmul_gflops(engine.dtype, engine.device)  # auto: the bound at every core
        print(f"{t} thread(s): best matmul throughput {gflops[t]:.0f} GFLOP/s")
    quiet = {}
    for busy in (0, args.busy) if args.busy else (0,):
        with busy_processes(busy):
            for t in threads:
                if t != "auto":
                    torch.set_num_threads(t)
                for name, (s, forwards) in runs.items():
                    def call(s=s, t=t):
                        if t == "auto":
                            chooser.apply()
                        engine.generate(text, args.seconds, seed=1, sampling=s, fps=args.fps)
                    took = median_time(call, args.runs)
                    # A guided pass runs the text and no-text rows as one batch: the weights are read once.
                    reads = forwards // 2 if s.guidance != 1 else forwards
                    tokens = forwards * (n if s.decoding == "parallel" else 1)
                    memory = reads * weight_bytes / bw / 1e9
                    compute = tokens * flop_per_token / gflops[t] / 1e9
                    if not busy:
                        quiet[name, t] = took
                    load = f", {busy} busy: {took / quiet[name, t]:.2f}x quiet" if busy else ""
                    chosen = f"={torch.get_num_threads()}" if t == "auto" else ""
                    print(f"[{busy} busy, {t}{chosen} thread(s)] {name}: {took:.3f} s  ({tokens} token passes; memory "
                          f"bound {memory:.3f} s, compute bound {compute:.3f} s, {took / max(memory, compute):.1f}x "
                          f"the larger{load})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
