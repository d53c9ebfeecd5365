# SPDX-License-Identifier: GPL-3.0-or-later
"""The sidebar panels (3D Viewport > N > DynamicPose) and the Key menus' In-between entry."""
from .sidebar import CLASSES, MENUS, key_menu  # noqa: F401
