# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the add-on may reach a backend and what it may run: the checks on the preferences'
URL, Python and backend folder, made before anything is connected to or started.

The token, the prompt and the user's keyed poses go to whatever these name, so a URL must name
this computer (parsed, not prefix-matched), and nothing is run from Blender's working directory
or from a path relative to the open .blend (a file someone sent must not pick a program)."""
from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

from .protocol import BackendError


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if host.lower() != "localhost":
        return False
    try:  # "localhost" only where every address it resolves to is loopback
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found)


def loopback_url(url: str) -> str:
    """`url` as scheme://host:port when it names a backend on this computer (http, a loopback
    address or a localhost that resolves only to loopback, no user part); else BackendError."""
    refusal = BackendError(f"the backend URL must be on this computer (http://127.0.0.1:PORT), got {url!r}")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise refusal from None
    host = parts.hostname or ""
    if parts.scheme != "http" or not host or parts.username is not None or parts.password is not None:
        raise refusal
    if parts.path not in ("", "/") or parts.query or parts.fragment or not _loopback(host):
        raise refusal
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}" + (f":{port}" if port is not None else "")


def _absolute(raw: str, what: str) -> Path:
    if raw.startswith("//"):
        raise BackendError(f"the {what} {raw!r} is relative to the open .blend file; give an absolute path "
                           "(a .blend must not choose what program runs)")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise BackendError(f"the {what} {raw!r} is not an absolute path")
    return path


def installed_backend_python() -> str | None:
    """The Python behind a `dynamicpose` command on PATH (the backend installed as a package,
    `pip install` of this repository into any Python 3.11 environment), or None."""
    command = shutil.which("dynamicpose")
    if command is None:
        return None
    folder = Path(command).resolve().parent
    beside = folder / ("python.exe" if os.name == "nt" else "python")
    try:  # a console script names its interpreter on its first line
        with open(command, "rb") as f:
            first = f.readline(512).decode(errors="replace").strip()
    except OSError:
        first = ""
    named = Path(first[2:].split()[0]) if first.startswith("#!") and first[2:].strip() else None
    if named is not None and named.is_absolute() and named.is_file() and named.name != "env":
        return str(named)
    return str(beside) if beside.is_file() else None


def backend_python(raw: str) -> str:
    """The backend's Python interpreter: an absolute path to an existing file; left empty, the
    one behind a `dynamicpose` command on PATH."""
    if not raw.strip():
        found = installed_backend_python()
        if found is not None:
            return found
        raise BackendError("no backend found: install it (pip install of the DynamicPose repository, which puts "
                           "a `dynamicpose` command on PATH) or set the backend's Python in the add-on "
                           "preferences (the python of a Python 3.11 environment with the backend installed)")
    path = _absolute(raw.strip(), "backend Python")
    if not path.is_file():
        raise BackendError(f"the backend Python {raw!r} does not exist; set it in the add-on preferences")
    return str(path)


def backend_folder(raw: str) -> str:
    """The folder holding the backend package, absolute and checked; "" for none (the backend
    installed in the chosen Python, never one found in the working directory)."""
    if not raw.strip():
        return ""
    path = _absolute(raw.strip(), "backend folder")
    if not (path / "backend" / "__main__.py").is_file():
        raise BackendError(f"{raw!r} holds no DynamicPose backend (no backend/__main__.py); "
                           "set the backend folder in the add-on preferences, or leave it empty to use "
                           "the backend installed in the chosen Python")
    return str(path)
