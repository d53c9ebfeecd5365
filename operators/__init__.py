# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on's operators (`dynamicpose.*`): motion (generate, in-between, edit, extend, loop,
mirror; a prompt timeline), the backend
(start, stop, cancel), retargeting (mapping detect, import, export; actions in one go) and your
own adapters (train from the file's takes; list, select, export, import, remove)."""
from . import adapters, backend, motion, retarget, takes, timeline
from .base import RUNNING  # noqa: F401  (what the panels show as running)

CLASSES = motion.CLASSES + takes.CLASSES + timeline.CLASSES + backend.CLASSES + retarget.CLASSES + adapters.CLASSES
