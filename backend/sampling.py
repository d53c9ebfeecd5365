"""Decoding controls, apart from the engine so that the command line and the request schemas
can read the defaults without importing torch."""
from __future__ import annotations

from dataclasses import dataclass

from backend.options import option


@dataclass
class Sampling:
    """Decoding controls."""

    # Parallel decoding passes. 3 holds the quality of 5 (eval t2m, 128 test captions, guidance 3:
    # content 0.64 / 0.64, style 0.55 / 0.59, R-precision top 3 0.77 / 0.77) at 0.6x the time.
    steps: int = option(3, "parallel decoding passes")
    temperature: float = option(1.0, "sampling temperature")
    top_k: int = option(0, "sample among the k likeliest codes (0: all)")
    decoding: str = option("parallel", "parallel passes (MMM) or token by token with a KV cache (next)",
                           choices=("parallel", "next"))
    # Classifier-free guidance scale; 1 is off. Each pass then also runs without the text, in the
    # same batch. 3 was the best measured (eval t2m on 48 test captions, 8 passes: FID 1811 vs
    # 2043, out-of-template content 0.56 vs 0.41 without guidance).
    guidance: float = option(3.0, "classifier-free guidance scale (1: off)")

    def __post_init__(self) -> None:
        if self.decoding not in ("parallel", "next"):
            raise ValueError(f"decoding must be 'parallel' or 'next', got {self.decoding!r}")
        if not 1 <= self.steps <= 64:
            raise ValueError(f"steps must be 1..64, got {self.steps}")
        if not 0 <= self.temperature <= 10:
            raise ValueError(f"temperature must be 0..10, got {self.temperature}")
        if not 0 <= self.guidance <= 10:
            raise ValueError(f"guidance must be 0..10, got {self.guidance}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
