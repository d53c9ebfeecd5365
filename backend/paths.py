"""Where data and caches live. One typed place, overridable by environment variables."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _in_checkout() -> bool:
    return (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "motioncore").is_dir()


def default_data_dir() -> Path | None:
    """$DYNAMICPOSE_DATA, else the shared data folder beside a checkout (../shared/data)."""
    env = os.environ.get("DYNAMICPOSE_DATA")
    if env:
        return Path(env)
    candidate = REPO_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def default_cache_dir() -> Path:
    """$DYNAMICPOSE_CACHE, else cache/ in a checkout (git-ignored), else ~/.cache/dynamicpose."""
    env = os.environ.get("DYNAMICPOSE_CACHE")
    if env:
        return Path(env)
    if _in_checkout():
        return REPO_ROOT / "cache"
    return Path.home() / ".cache" / "dynamicpose"


def default_weights_dir() -> Path:
    """$DYNAMICPOSE_WEIGHTS, else the shipped default model: weights/default of the checkout,
    or, installed as a package (a wheel), the copy in the environment's share/dynamicpose."""
    env = os.environ.get("DYNAMICPOSE_WEIGHTS")
    if env:
        return Path(env)
    checkout = REPO_ROOT / "weights" / "default"
    installed = Path(sys.prefix) / "share" / "dynamicpose" / "weights" / "default"
    return checkout if checkout.is_dir() or not installed.is_dir() else installed


def adapters_dir() -> Path:
    """$DYNAMICPOSE_ADAPTERS, else adapters/ in the cache folder: the user's own adapters, one
    folder each (backend/adapters.py), shared by the CLI, the server and every Blender."""
    env = os.environ.get("DYNAMICPOSE_ADAPTERS")
    return Path(env) if env else default_cache_dir() / "adapters"
