"""Seconds to generate an 8 s clip at 30 fps (median of 10 after warm-up), all in one run: the
default (parallel passes with classifier-free guidance), the previous default (5 guided
passes), parallel without guidance, and token-by-token decoding with a KV cache, each beside
its memory-bandwidth bound.

    python benchmarks/generate_speed.py [--device cpu|cuda] [--seconds 8]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.engine import Engine, Sampling  # noqa: E402
from motioncore import canonical  # noqa: E402


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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--weights", default=None)
    args = p.parse_args()
    engine = Engine(Path(args.weights) if args.weights else None, device=args.device)
    text = "a person walks forward, then waves with the right hand."
    frames = int(round(args.seconds * canonical.MODEL_FPS))
    n = -(-frames // engine.down)
    default = Sampling()
    runs = {  # name: (sampling, forwards of the motion tokens)
        f"default: {default.steps} parallel passes, guidance {default.guidance:g}":
            (default, default.steps * (2 if default.guidance != 1 else 1)),
        "5 parallel passes, guidance 3 (the previous default)": (Sampling(steps=5, guidance=3.0), 10),
        f"{default.steps} parallel passes, no guidance": (Sampling(steps=default.steps, guidance=1.0), default.steps),
        "token by token, KV cache": (Sampling(decoding="next", guidance=1.0), n),
    }
    times = {name: median_time(lambda s=s: engine.generate(text, args.seconds, seed=1, sampling=s), args.runs)
             for name, (s, _) in runs.items()}
    params = sum(p.numel() for p in engine.model.parameters())
    weight_bytes = params * torch.finfo(engine.dtype).bits / 8
    bw = memory_bandwidth_gb_s() if engine.device.type == "cpu" else float("nan")
    print(f"device {engine.device}, {engine.dtype}, {params / 1e6:.0f}M parameters "
          f"({weight_bytes / 1e6:.0f} MB), {n} motion tokens for {args.seconds:g} s")
    # Compute: 2 FLOP per weight per token, embeddings aside (they are looked up, not multiplied).
    flop_per_token = 2 * sum(p.numel() for n_, p in engine.model.named_parameters() if "embed" not in n_)
    gflops = matmul_gflops(engine.dtype, engine.device)
    print(f"best matmul throughput {gflops:.0f} GFLOP/s; memory {bw:.1f} GB/s")
    # A guided pass runs the text and no-text rows as one batch: the weights are read once.
    for name, (s, forwards) in runs.items():
        reads = forwards // 2 if s.guidance != 1 else forwards
        tokens = forwards * (n if s.decoding == "parallel" else 1)
        print(f"{name}: {times[name]:.3f} s  ({tokens} token passes; memory bound "
              f"{reads * weight_bytes / bw / 1e9:.3f} s, compute bound {tokens * flop_per_token / gflops / 1e9:.3f} s)")
    names = list(runs)
    parallel, sequential = times[names[2]], times[names[3]]
    print(f"ratio token-by-token / parallel: {sequential / parallel:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
