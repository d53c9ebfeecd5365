# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on's side of the backend: one interface (protocol.py), two modes (http.py,
embedded.py), and the session that holds the connection and runs work on a thread
(session.py)."""
from .embedded import EmbeddedBackend
from .http import HTTPBackend
from .protocol import Backend, BackendError, Cancelled

__all__ = ["Backend", "BackendError", "Cancelled", "EmbeddedBackend", "HTTPBackend"]
