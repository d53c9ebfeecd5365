"""Preview pictures of a motion: a strip of stick figures seen from the side, plus the root path
from above. Matplotlib only, no window."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.figures import pyplot, save_figure
from motioncore import rotations as rot
from motioncore.canonical import heading_yaw
from motioncore.clip import Motion


def save_strip(motion: Motion, path: Path, title: str = "", poses: int = 8) -> Path:
    """Write a PNG with `poses` evenly spaced frames and the ground-plane trajectory."""
    plt = pyplot()

    pos = motion.positions()  # (T, J, 3) metres, Z up
    names = motion.skeleton.names
    if "UpperLeg_L" in names and "UpperLeg_R" in names:
        # Each pose seen from the character's own right side, whichever way it faces.
        yaw = heading_yaw(pos, motion.skeleton)
        facing = rot.yaw_rotation(-yaw)[:, None]
        local = rot.rotate(facing, pos - pos[:, :1] * [1, 1, 0])
    else:
        local = pos - pos[:, :1] * [1, 1, 0]
    parents = motion.skeleton.parents
    frames = np.linspace(0, motion.num_frames - 1, poses).round().astype(int)
    fig = plt.figure(figsize=(1.6 * poses + 3, 4.2), dpi=100)
    grid = fig.add_gridspec(1, poses + 2)
    zmax = pos[..., 2].max() + 0.1
    for k, t in enumerate(frames):
        ax = fig.add_subplot(grid[0, k])
        p = local[t]
        x = -p[:, 1]  # forward (-Y once the facing is removed) to the right
        for j, par in enumerate(parents):
            if par >= 0:
                left = motion.skeleton.names[j].endswith("_L")
                ax.plot([x[par], x[j]], [p[par, 2], p[j, 2]], color="#d9534f" if left else "#2b6cb0", lw=2)
        ax.axhline(0, color="#999", lw=0.8)
        ax.set_xlim(-0.6, 0.6)
        ax.set_ylim(-0.05, zmax)
        ax.set_aspect("equal")
        ax.set_title(f"{t / motion.fps:.1f} s", fontsize=9)
        ax.axis("off")
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
