"""Shared fixtures: the committed real clips and a freshly reset Blender."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
if str(ROOT) not in sys.path:  # tests run from a checkout, installed or not
    sys.path.insert(0, str(ROOT))

CLIPS = sorted(DATA.glob("bandai-*/*.bvh"))


@pytest.fixture(params=CLIPS, ids=[p.stem for p in CLIPS])
def clip_path(request) -> Path:
    return request.param


@pytest.fixture
def walk_path() -> Path:
    return DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh"


@pytest.fixture
def blender():
    """The real Blender module, reset to factory settings around the test."""
    bpy = pytest.importorskip("bpy")
    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("io_anim_bvh", default_set=True)
    yield bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)
