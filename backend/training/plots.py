"""Loss curves as PNG (matplotlib, no window)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.figures import pyplot, save_figure


def save_loss_curve(history: dict[str, list[tuple[int, float]]], path: Path, title: str) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for name, points in history.items():
        if points:
            steps, values = np.array(points).T
            ax.plot(steps, values, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.lines:  # a run shorter than one history interval has no curve yet
        ax.legend()
    return save_figure(fig, path)
