"""Shared fixtures: the committed real clips and a freshly reset Blender."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

try:  # the backend's stack; absent on Blender 5.1+ (Python 3.13), whose tests use it over HTTP
    import torch  # noqa: F401

    HAS_BACKEND = True
except ImportError:
    HAS_BACKEND = False

ROOT = Path(__file__).resolve().parents[1]
# No test reads or writes the user's own adapters: every engine and server the tests start (they
# inherit the environment) keeps them in a scratch folder; a test may point it elsewhere.
os.environ["DYNAMICPOSE_ADAPTERS"] = tempfile.mkdtemp(prefix="dynamicpose-adapters-")
DATA = Path(__file__).resolve().parent / "data"
if str(ROOT) not in sys.path:  # tests run from a checkout, installed or not
    sys.path.insert(0, str(ROOT))

CLIPS = sorted(DATA.glob("bandai-*/*.bvh"))
# The backend's Python (torch, transformers): this one, or the one make test names.
BACKEND_PYTHON = Path(os.environ.get("DYNAMICPOSE_BACKEND_PYTHON") or sys.executable)
NO_BACKEND = (f"needs the backend in this Python ({sys.version.split()[0]} has no torch); the add-on's "
              "own tests run here against the backend's Python over HTTP")
needs_backend = pytest.mark.skipif(not HAS_BACKEND, reason=NO_BACKEND)


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


@pytest.fixture
def addon(blender):
    """The add-on package imported from this checkout (not enabled), in a fresh Blender."""
    from tools.addon_import import import_addon

    import_addon()
    import dynamic_pose

    return dynamic_pose


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    from tiny_models import make_base

    if not HAS_BACKEND:
        pytest.skip(NO_BACKEND)
    return make_base(tmp_path_factory.mktemp("tiny_llama"))


def tiny_model(tiny_base, **kw):
    from tiny_models import tiny_model as make

    return make(tiny_base, **kw)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A complete model folder with tiny random weights (tests/tiny_models.py), built by the
    backend's Python where this one has no torch."""
    folder = tmp_path_factory.mktemp("tiny")
    if HAS_BACKEND:
        from tiny_models import make_base, make_weights

        return make_weights(make_base(folder / "base"), folder / "weights")
    run = subprocess.run([str(BACKEND_PYTHON), "-m", "tests.tiny_models", str(folder)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return folder / "weights"


def fcurves_of(action):
    """An action's fcurves on Blender 4.4+ (slotted: the first slot's channelbag) and 4.2/4.3."""
    if not hasattr(action, "slots"):
        return action.fcurves
    from bpy_extras import anim_utils

    return anim_utils.action_get_channelbag_for_slot(action, action.slots[0]).fcurves


@pytest.fixture
def dp(blender, tiny_weights):
    """The add-on enabled from this checkout, its backend on tiny weights."""
    import addon_utils

    from tools.addon_import import import_addon

    import_addon()
    enable_addon(blender, tiny_weights)
    yield blender
    addon_utils.disable("dynamic_pose", default_set=True)


def enable_addon(bpy, weights) -> None:
    """Enable the add-on with its backend on `weights` (again after a scene was read with
    factory settings, which resets add-ons and preferences)."""
    import addon_utils

    addon_utils.enable("dynamic_pose", default_set=True)
    prefs = bpy.context.preferences.addons["dynamic_pose"].preferences
    prefs.weights, prefs.device, prefs.backend_dir = str(weights), "cpu", str(ROOT)
    # Embedded where this Python has the backend's stack; else a local backend process on the
    # backend's Python, as Blender 5.1+ users run it.
    prefs.mode, prefs.python = ("EMBEDDED", "") if HAS_BACKEND else ("PROCESS", str(BACKEND_PYTHON))
