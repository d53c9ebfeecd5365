"""Seconds to generate an 8 s clip at 30 fps (median of 10 after warm-up): the default
(parallel passes with classifier-free guidance, two model passes per step), parallel without
guidance, and token-by-token decoding with a KV cache, each beside its memory-bandwidth bound.

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


def median_time(fn, runs: int = 10) -> float:
    fn()  # warm-up
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
    plain = Sampling(steps=default.steps, guidance=1.0)
    guided = median_time(lambda: engine.generate(text, args.seconds, seed=1, sampling=default), args.runs)
    parallel = median_time(lambda: engine.generate(text, args.seconds, seed=1, sampling=plain), args.runs)

    def token_by_token():
        codes = engine.model.next_token(text, n, generator=torch.Generator().manual_seed(1))
        engine._decode(codes[0].cpu().numpy(), frames, 30.0)

    sequential = median_time(token_by_token, args.runs)
    params = sum(p.numel() for p in engine.model.parameters())
    weight_bytes = params * torch.finfo(engine.dtype).bits / 8
    bw = memory_bandwidth_gb_s() if engine.device.type == "cpu" else float("nan")
    print(f"device {engine.device}, {engine.dtype}, {params / 1e6:.0f}M parameters "
          f"({weight_bytes / 1e6:.0f} MB), {n} motion tokens for {args.seconds:g} s")
    forwards = default.steps * (2 if default.guidance != 1 else 1)
    print(f"default: {default.steps} parallel passes, guidance {default.guidance:g} ({forwards} forwards): "
          f"{guided:.3f} s  (memory bound {forwards * weight_bytes / bw / 1e9:.3f} s at {bw:.1f} GB/s)")
    print(f"parallel decoding, {default.steps} passes, no guidance: {parallel:.3f} s  "
          f"(memory bound {default.steps * weight_bytes / bw / 1e9:.3f} s)")
    print(f"token by token, KV cache, {n} passes: {sequential:.3f} s  "
          f"(memory bound {n * weight_bytes / bw / 1e9:.3f} s)")
    print(f"ratio token-by-token / parallel: {sequential / parallel:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
