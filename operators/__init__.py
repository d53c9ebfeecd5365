# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on's operators (`dynamicpose.*`): motion (generate, in-between, edit), the backend
(start, stop, cancel) and retargeting (mapping detect, import, export; actions in one go)."""
from . import backend, motion, retarget
from .base import RUNNING  # noqa: F401  (what the panels show as running)

CLASSES = motion.CLASSES + backend.CLASSES + retarget.CLASSES
