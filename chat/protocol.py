"""The websocket frame protocol shared by every consumer: envelope, limits, errors, dispatch.

Every frame is a JSON object `{"type": str, "data": object}` (docs/protocol.md). A bad frame
is answered with an `error` frame and changes nothing; the socket stays open.
"""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import ValidationError

from chat.error_messages import ERRORS, error_message
from chat.forms import FrameForm

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_FRAME_BYTES = 16 * 1024
# WebSocket's own code for "the server met a condition it could not handle".
SERVER_FAULT_CLOSE_CODE = 1011
# This application's: "you may not have this socket"; clients do not reconnect after it.
FORBIDDEN_CLOSE_CODE = 4403
# Co-browse page events arrive in many frames at once (a page's full snapshot is split into
# parts of at most MAX_FRAME_BYTES): a page of up to 4 MiB may be sent at once, then 1 MiB/s.
BULK_BURST_BYTES = 4 * 1024 * 1024
BULK_BYTES_PER_SECOND = 1024 * 1024
# Each such frame counts as at least this many bytes, so tiny ones cannot be sent by the
# thousand: at most 4 096 at once, then 1 024 a second (the widget sends ten a second).
BULK_MIN_FRAME_BYTES = 1024
# Refusals worth a line in the log: someone tried something their role or ownership forbids.
DENIAL_CODES = frozenset({"forbidden", "not_assigned"})


@dataclass(frozen=True)
class FrameHandler:
    form: type[FrameForm]
    method: str


class TokenBucket:
    """Allows `burst` frames at once and `rate` frames a second after that."""

    def __init__(self, *, rate: float, burst: int):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self, cost: float = 1) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class FrameConsumer(AsyncJsonWebsocketConsumer):
    """Validates and dispatches client frames; subclasses declare `frame_handlers`."""

    frame_handlers: dict[str, FrameHandler] = {}
    rate_per_second = 5.0
    rate_burst = 20
    bulk_frame_types: frozenset[str] = frozenset()
    # Frames that set up what the socket follows: one that fails half-way closes the socket
    # (1011), so the client reconnects and starts from the database rather than from a socket
    # that follows half of what it should.
    setup_frame_types: frozenset[str] = frozenset()
    # A ping proves the socket alive. What the database adds to the answer must not hold it
    # past the client's deadline (10 s), or a slow database would make every client close its
    # socket and reconnect at once, and load the database more as it recovers.
    pong_database_wait_seconds = 3.0
    pong_work: tuple[Hashable, asyncio.Future] | None = None
    # Set by `close`: frames still arriving (sent before the client heard) are not acted on.
    closing = False

    async def dispatch(self, message):
        # Channels runs `close_old_connections` before every handler, a hop to its one sync
        # thread per frame and per layer event (a convoy under load). These consumers reach
        # the database only through `db`, whose worker threads close their connections
        # before and after each call, so nothing stale can be left for the hop to close.
        # Keep it so: an async ORM call (`aget`, `acount`…) in a handler would hold a
        # connection in that sync thread that nothing here checks or closes.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_connect(self, message):
        self.bucket = TokenBucket(rate=self.rate_per_second, burst=self.rate_burst)
        self.bulk_bucket = TokenBucket(rate=BULK_BYTES_PER_SECOND, burst=BULK_BURST_BYTES)
        self.rate_limit_reported_at = 0.0
        await super().websocket_connect(message)

    async def close(self, code=None, reason=None):
        self.closing = True
        await super().close(code=code, reason=reason)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.closing:
            return
        content, problem = None, None
        if text_data is None:
            problem = "binary_not_supported"
        elif len(text_data) > MAX_FRAME_BYTES or len(text_data.encode()) > MAX_FRAME_BYTES:
            problem = "frame_too_large"
        else:
            try:
                content = json.loads(text_data)
            except ValueError:
                problem = "malformed_json"
        # Bulk frames (co-browse page events) are limited by bytes, everything else by count.
        if isinstance(content, dict) and self.counts_in_bytes(content.get("type")):
            allowed = self.bulk_bucket.take(max(len(text_data), BULK_MIN_FRAME_BYTES))
        else:
            allowed = self.bucket.take()
        if not allowed:
            # One error a second at most, so a flood is not answered by a flood.
            now = time.monotonic()
            if now - self.rate_limit_reported_at >= 1:
                self.rate_limit_reported_at = now
                await self.send_error("rate_limited")
            return
        if problem is not None:
            await self.send_error(problem)
            return
        await self.receive_json(content)

    def counts_in_bytes(self, frame_type: Any) -> bool:
        """Whether a frame of this type is limited by its bytes rather than counted."""
        return frame_type in self.bulk_frame_types

    async def on_refusal(self, frame_type: str, code: str) -> None:
        """Called when a frame's handler refuses it (a ValidationError), before its error."""

    async def receive_json(self, content: Any, **kwargs) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_error("invalid_envelope")
            return
        frame_type = content["type"]
        data = content.get("data", {})
        if not isinstance(data, dict):
            await self.send_error("invalid_envelope", frame_type=frame_type)
            return
        handler = self.frame_handlers.get(frame_type)
        if handler is None:
            await self.send_error("unknown_type", frame_type=frame_type[:64])
            return
        form = handler.form(data)
        if not form.is_valid():
            fields = form.error_fields()
            await self.send_error("invalid_frame", frame_type=frame_type, fields=fields, **form.refers_to())
            return
        try:
            await getattr(self, handler.method)(**form.cleaned_data)
        except ValidationError as error:
            code = error.code if error.code in ERRORS else "server_error"
            await self.on_refusal(frame_type, code)
            if code in DENIAL_CODES:
                user = self.scope.get("user")
                logger.warning("denied %s (%s) to user %s", frame_type, code, getattr(user, "pk", None) or "anonymous")
            await self.send_error(code, frame_type=frame_type, **form.refers_to())
        except Exception:
            # A fault of ours, not the client's: the socket stays open, the client is told
            # (it may retry), and the fault is logged in full. Database writes are atomic, so
            # nothing half-done is left.
            logger.exception("%s failed", frame_type)
            await self.send_error("server_error", frame_type=frame_type, **form.refers_to())
            if frame_type in self.setup_frame_types:
                await self.close(code=SERVER_FAULT_CLOSE_CODE)

    async def within_pong_wait(self, about: Hashable, work: Callable[[], Awaitable[T]]) -> T | None:
        """The result of `work()`, the database's part of a pong about `about` (what the socket
        follows), or None if it fails or takes longer than a pong may wait.

        Work that answers late goes on, and the next ping about the same thing waits for it
        rather than starting it again: a stalled database gets one such call from each socket
        at a time. A failure is logged; the pong still proves the socket alive.
        """
        if self.pong_work is None or self.pong_work[1].done() or self.pong_work[0] != about:
            future = asyncio.ensure_future(work())
            future.add_done_callback(_log_pong_work_failure)
            self.pong_work = (about, future)
        try:
            return await asyncio.wait_for(asyncio.shield(self.pong_work[1]), self.pong_database_wait_seconds)
        except TimeoutError:
            logger.warning("pong sent without the database's part: no answer in %ss", self.pong_database_wait_seconds)
        except Exception:  # noqa: S110 - logged by _log_pong_work_failure
            pass
        return None

    async def websocket_disconnect(self, message):
        # A ping's late database work ("the resident is here") must not land after what
        # `disconnect` writes ("they left").
        if self.pong_work is not None:
            await asyncio.wait([self.pong_work[1]])
        await super().websocket_disconnect(message)

    async def refuse(self, what: str) -> None:
        """Accept only to say why, then close with FORBIDDEN_CLOSE_CODE. A socket closed during
        the handshake reaches a browser as close code 1006, the same as a server that is down,
        and the client would go on reconnecting."""
        await self.accept()
        await self.send_error("forbidden")
        await self.close(code=FORBIDDEN_CLOSE_CODE)
        user = self.scope.get("user")
        logger.warning("%s refused for user %s", what, getattr(user, "pk", None))

    async def send_frame(self, frame_type: str, data: dict[str, Any]) -> None:
        if not self.closing:
            await self.send_json({"type": frame_type, "data": data})

    async def send_error(self, code: str, *, frame_type: str | None = None, **extra: Any) -> None:
        data = {"code": code, "message": error_message(code)}
        if frame_type is not None:
            data["frame_type"] = frame_type
        data.update({key: value for key, value in extra.items() if value not in (None, "")})
        await self.send_frame("error", data)


def _log_pong_work_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("the database's part of a pong failed", exc_info=future.exception())
