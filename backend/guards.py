"""What holds the server up below its routes, against careless and hostile local clients:
a cap on open connections, a deadline for each request to arrive, a cap on body size, and logs
that do not repeat themselves without end.

Any local user can open connections without the token, so nothing here may cost more than a
file descriptor for a bounded time."""
from __future__ import annotations

import json
import logging
import socket
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from motioncore import canonical
from motioncore.limits import MAX_FRAMES, MAX_TEXT, MAX_TRAIN_CLIPS

MAX_CONNECTIONS = 64    # open at once (the fd limit is often 1,024); see connection_made
REQUEST_SECONDS = 10.0  # from a connection's first byte (or its last answer) to a whole request

# The largest valid request: an in-between of MAX_FRAMES frames written with the longest float
# text JSON has ("-1.2345678901234567e-300, ": 26 bytes) and brackets ("[", "], ": 4 bytes a
# list), a keys list and partial keys on every frame, and a prompt of escaped characters
# ("\u2028": 6 bytes); anything longer is refused before it is read.
_JOINTS = len(canonical.CANONICAL_JOINTS)
_MOTION = MAX_FRAMES * (26 * (3 + 4 * _JOINTS) + 4 * (1 + _JOINTS) + 8)
_PARTIAL = MAX_FRAMES * (12 + sum(len(j) + 4 for j in canonical.CANONICAL_JOINTS))
# An adapter's training clips hold one motion's frames in all, and a caption each.
MAX_BODY_BYTES = _MOTION + 8 * MAX_FRAMES + _PARTIAL + 6 * MAX_TEXT * (1 + MAX_TRAIN_CLIPS) + 64 * 1024


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a connection cap, a request deadline and TCP_NODELAY
    (small answers on a kept-alive connection otherwise wait on delayed acks)."""

    def connection_made(self, transport) -> None:
        if len(self.server_state.connections) >= MAX_CONNECTIONS:
            # Full: make room by closing the connection that has waited longest without sending
            # a whole request (so idle connections never lock a real client out); if every one
            # is busy with a request, refuse the newcomer.
            idle = [c for c in self.server_state.connections
                    if isinstance(c, GuardedH11Protocol) and not c.transport.is_closing() and c._idle()]
            if not idle:
                transport.abort()
                return
            min(idle, key=lambda c: c._since).transport.abort()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        super().connection_made(transport)
        self._since, self._deadline = self.loop.time(), None
        self._arm()

    def _idle(self) -> bool:
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(REQUEST_SECONDS, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):  # still waiting for (part of) a request
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        if self.transport is not None and self in self.server_state.connections:
            super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._since = self.loop.time()
        self._disarm()  # uvicorn's keep-alive timeout closes an idle kept-alive connection


class BodyLimit:
    """ASGI middleware: a request body over MAX_BODY_BYTES is answered 413 before it is parsed
    (by its Content-Length, or while it streams in)."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._refuse(send)
        seen, refused = 0, False

        async def counted():
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # answer now, close, and tell the app the client has gone
                refused = True
                await self._refuse(send)
                return {"type": "http.disconnect"}
            return message

        async def sent(message):
            if not refused:
                await send(message)

        return await self.app(scope, counted, sent)

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": f"request body over {self.limit} bytes, more than any valid request needs"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body.encode()})


class RepeatFilter(logging.Filter):
    """Passes a message at most `per` times in each `window` seconds, then says how many it held
    back (a flood of refused connections must not fill the disk with tracebacks)."""

    def __init__(self, per: int = 3, window: float = 10.0):
        super().__init__()
        self.per, self.window = per, window
        self._seen: dict[str, list] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.name}:{record.msg}"
        now = time.monotonic()
        start, count, held = self._seen.get(key, (now, 0, 0))
        if now - start > self.window:
            if held:
                record.msg = f"{record.msg} (and {held} more like it in {self.window:g} s)"
            start, count, held = now, 0, 0
        count += 1
        if count > self.per:
            self._seen[key] = [start, count, held + 1]
            return False
        self._seen[key] = [start, count, held]
        return True


def quiet_repeats() -> None:
    """Put the repeat filter on the loggers a connection flood writes to."""
    repeat = RepeatFilter()
    for name in ("uvicorn.error", "asyncio", "uvicorn"):
        logging.getLogger(name).addFilter(repeat)
