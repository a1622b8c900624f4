"""The one place the apps touch the channel layer from synchronous code.

Events are sent after the surrounding transaction commits: the database is the source of
truth and the layer is transport, so nothing is announced that might still roll back.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.db import transaction

logger = logging.getLogger(__name__)


class LoopSender:
    """Sends, from the event loop that made it, the events a worker thread commits.

    A worker thread that sent through `async_to_sync` would wait for the loop once per event,
    holding its database connection meanwhile. Here the thread only queues the event (in
    commit order) and goes on; one task on the loop sends the queue in order, as soon as
    each event is committed.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    def put(self, group: str, event: dict[str, Any]) -> None:
        """Called from the worker thread."""
        self.loop.call_soon_threadsafe(self._put, (group, event))

    def _put(self, item: tuple[str, dict[str, Any]] | None) -> None:
        if self.task is None:
            self.task = self.loop.create_task(self._send_all())
        self.queue.put_nowait(item)

    async def _send_all(self) -> None:
        while (item := await self.queue.get()) is not None:
            await agroup_send(*item)

    async def close(self) -> None:
        """Wait until every event queued so far has been sent."""
        if self.task is not None:
            self.queue.put_nowait(None)
            await self.task


_loop_sender: ContextVar[LoopSender | None] = ContextVar("loop_sender", default=None)


async def run_sending_from_loop(call: Callable[[], Awaitable[Any]]) -> Any:
    """Await `call` (sync code run in a worker thread) with its committed events sent from
    this loop, and return once they are sent. Shielded, as `run_shielded`."""

    async def run() -> Any:
        sender = LoopSender()
        _loop_sender.set(sender)  # this task's own context, copied into the worker thread
        try:
            return await call()
        finally:
            await sender.close()

    return await run_shielded(run)


async def run_shielded(call: Callable[[], Awaitable[Any]]) -> Any:
    """Await `call`, which goes on to the end if the caller is cancelled (its socket closed,
    the server stopping): a write already started still finishes and what it commits is
    still sent."""
    task = asyncio.ensure_future(call())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_log_unexpected_failure)
        raise


def _log_unexpected_failure(task: asyncio.Task) -> None:
    """Nobody is left to answer a cancelled caller; an unexpected failure still gets logged."""
    failure = None if task.cancelled() else task.exception()
    # A ValidationError is a refusal meant for the caller, not a failure.
    if failure is not None and not isinstance(failure, ValidationError):
        logger.error("work of a cancelled caller failed", exc_info=failure)


async def agroup_send(group: str, event: dict[str, Any]) -> None:
    """Deliver one committed event to one group, from the event loop. A failure is logged,
    not raised: the write has committed, and clients resume from the database."""
    try:
        await get_channel_layer().group_send(group, event)
    except Exception:
        logger.exception("broadcast of %s to %s failed", event["type"], group)


def group_send(group: str, event: dict[str, Any]) -> None:
    """Deliver one event to one group. The single place chat touches the channel layer.

    From code run through `run_sending_from_loop` the event is queued for that loop; from
    anywhere else (HTTP views, commands) it is sent now.
    """
    sender = _loop_sender.get()
    if sender is not None:
        sender.put(group, event)
        return
    async_to_sync(get_channel_layer().group_send)(group, event)


def broadcast(*, groups: Iterable[str], event_type: str, **payload: Any) -> None:
    """Send an event to each group once the current transaction commits.

    Nothing is announced that the database might still roll back; a client that misses the
    event because the layer dropped it recovers it from the database on resume.
    """
    event = {"type": event_type, **payload}
    targets = list(groups)

    def send() -> None:
        for group in targets:
            try:
                group_send(group, event)
            except Exception:
                # The write has committed; the layer is transport only. Clients resume from
                # the database, so a failed send loses nothing.
                logger.exception("broadcast of %s to %s failed", event_type, group)

    transaction.on_commit(send)
