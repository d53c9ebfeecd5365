"""Import this checkout as the add-on package `dynamic_pose`, as Blender would, so scripts and
tests can use its relative-import modules (rig/, ...) without installing the zip.

The package is found through an ordinary import path (a temporary folder with a link named
dynamic_pose pointing here), so addon_utils can enable, disable and reload it like any add-on."""
from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "dynamic_pose"


def import_addon():
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    folder = Path(tempfile.mkdtemp(prefix="dynamicpose-addon-"))
    (folder / PACKAGE).symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, str(folder))
    return importlib.import_module(PACKAGE)
