"""Preview pictures of a motion: a strip of stick figures seen from the side, plus the root path
from above. Matplotlib only, no window."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.figures import pyplot, save_figure
from motioncore import rotations as rot
from motioncore.canonical import heading_yaw
from motioncore.clip import Motion


def _side_view(motion: Motion) -> np.ndarray:
    """(T, J, 3) positions with each pose seen from the character's own right side, whichever
    way it faces, over its own root."""
    pos = motion.positions()  # (T, J, 3) metres, Z up
    names = motion.skeleton.names
    if "UpperLeg_L" in names and "UpperLeg_R" in names:
        yaw = heading_yaw(pos, motion.skeleton)
        facing = rot.yaw_rotation(-yaw)[:, None]
        return rot.rotate(facing, pos - pos[:, :1] * [1, 1, 0])
    return pos - pos[:, :1] * [1, 1, 0]


def _draw_pose(ax, motion: Motion, p: np.ndarray, zmax: float, title: str) -> None:
    x = -p[:, 1]  # forward (-Y once the facing is removed) to the right
    for j, par in enumerate(motion.skeleton.parents):
        if par >= 0:
            left = motion.skeleton.names[j].endswith("_L")
            ax.plot([x[par], x[j]], [p[par, 2], p[j, 2]], color="#d9534f" if left else "#2b6cb0", lw=2)
    ax.axhline(0, color="#999", lw=0.8)
    ax.set_xlim(-0.6, 0.6)
    ax.set_ylim(-0.05, zmax)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def save_strip(motion: Motion, path: Path, title: str = "", poses: int = 8) -> Path:
    """Write a PNG with `poses` evenly spaced frames and the ground-plane trajectory."""
    plt = pyplot()

    pos = motion.positions()
    local = _side_view(motion)
    frames = np.linspace(0, motion.num_frames - 1, poses).round().astype(int)
    fig = plt.figure(figsize=(1.6 * poses + 3, 4.2), dpi=100)
    grid = fig.add_gridspec(1, poses + 2)
    zmax = pos[..., 2].max() + 0.1
    for k, t in enumerate(frames):
        _draw_pose(fig.add_subplot(grid[0, k]), motion, local[t], zmax, f"{t / motion.fps:.1f} s")
    ax = fig.add_subplot(grid[0, poses:])
    ax.plot(pos[:, 0, 0], pos[:, 0, 1], color="#333")
    ax.plot(pos[0, 0, 0], pos[0, 0, 1], "o", color="#2b6cb0", label="start")
    ax.plot(pos[-1, 0, 0], pos[-1, 0, 1], "s", color="#d9534f", label="end")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("root path, top view (m)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def save_rows(rows: list[tuple[str, Motion]], path: Path, title: str = "", poses: int = 6) -> Path:
    """One PNG with a row of `poses` evenly spaced frames per (label, motion): motions to
    compare side by side (a user's clip, the default model's take, an adapter's)."""
    plt = pyplot()
    fig = plt.figure(figsize=(1.5 * poses + 1.8, 2.3 * len(rows) + 0.6), dpi=90)
    grid = fig.add_gridspec(len(rows) + 1, poses + 1, height_ratios=[0.2] + [1] * len(rows))
    head = fig.add_subplot(grid[0, :])  # a row of its own: suptitle would sit on the first row's titles
    head.text(0.5, 0.5, title, ha="center", va="center", fontsize=11)
    head.axis("off")
    zmax = max(m.positions()[..., 2].max() for _, m in rows) + 0.1
    for r, (label, motion) in enumerate(rows, start=1):
        local = _side_view(motion)
        label_ax = fig.add_subplot(grid[r, 0])
        label_ax.text(0.95, 0.5, label, ha="right", va="center", fontsize=9, wrap=True)
        label_ax.axis("off")
        for k, t in enumerate(np.linspace(0, motion.num_frames - 1, poses).round().astype(int)):
            _draw_pose(fig.add_subplot(grid[r, k + 1]), motion, local[t], zmax, f"{t / motion.fps:.1f} s")
    return save_figure(fig, path)
