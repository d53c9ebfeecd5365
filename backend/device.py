"""Which torch device and number format to run on."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

# bfloat16 must beat float32 by this much on the CPU to be chosen: float32 is the more exact of
# the two, and a near tie is not worth its rounding.
BF16_MARGIN = 1.25
# One of the default base's widest layers at a guided pass's rows (82 x 576 -> 1536).
_PROBE_SHAPE = (82, 576, 1536)


def pick_device(name: str = "auto") -> torch.device:
    """`name`, or for "auto": CUDA, then Apple MPS, then the CPU."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, name: str = "auto") -> torch.dtype:
    """`name` ("float32", "bfloat16", ...), or for "auto": on the CPU whichever of float32 and
    bfloat16 multiplies faster here, measured; bfloat16 on GPUs that have it.

    A CPU without bfloat16 instructions (AVX2-only, as many AMD and older Intel machines are)
    emulates them: measured on a 2-core AMD EPYC, an 8 s generate took 3.4 s in bfloat16 against
    0.70 s in float32, where a CPU with AMX ran bfloat16 about 4x faster than float32."""
    if name != "auto":
        dtype = getattr(torch, name, None)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"unknown floating-point dtype {name!r}")
        return dtype
    if device.type == "cpu":
        times = cpu_matmul_seconds((torch.float32, torch.bfloat16))
        return torch.bfloat16 if times[torch.bfloat16] * BF16_MARGIN < times[torch.float32] else torch.float32
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16


def cpu_matmul_seconds(dtypes, rounds: int = 3, calls: int = 2) -> dict[torch.dtype, float]:
    """Best time of `calls` products at the probe shape, for each dtype, rounds alternated so
    that a busy moment hits both alike (about 0.1 s where bfloat16 is emulated, 10 ms elsewhere)."""
    m, k, n = _PROBE_SHAPE
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
    pairs = {dt: (x.to(dt), w.to(dt)) for dt in dtypes}
    for a, b in pairs.values():  # the first product at a shape also builds its kernel
        F.linear(a, b)
    best = {dt: float("inf") for dt in dtypes}
    for _ in range(rounds):
        for dt, (a, b) in pairs.items():
            t = time.perf_counter()
            for _ in range(calls):
                F.linear(a, b)
            best[dt] = min(best[dt], (time.perf_counter() - t) / calls)
    return best
