"""The database from consumers, on the event loop.

`db` runs sync Django code (services, selectors) in a worker thread. The exception is the
one write every chat message makes, on PostgreSQL: it is a single statement
(`chat_message_store`, chat migrations 0006 and 0021), and handing that to a thread cost
more than running it: the hop, waking the loop afterwards and Django's connection handling
around it (docs/performance.md). So consumers run it here, on the loop, through psycopg's
own async connections in autocommit mode: when `fetchone` returns, the message is committed.

Connections are kept per event loop (a Daphne process has one; tests start one per test)
and closed when their loop shuts down, so no session outlives the loop that used it.
"""

import asyncio
import contextlib
import functools
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

import psycopg
from channels.db import DatabaseSyncToAsync
from django.conf import settings
from django.db import connections
from psycopg import AsyncConnection

from config import realtime

_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, "_LoopConnections"] = weakref.WeakKeyDictionary()


def db(func):
    """Run a sync service or selector from a consumer, in a worker thread of the pool.

    Not thread-sensitive: Channels' default runs every socket's database work of a process
    in one thread, one call at a time, so a busy conversation would delay all the others.
    Each socket still handles its own frames one after another. What the service broadcasts
    after its commits is sent from this event loop (config.realtime).
    """
    run = DatabaseSyncToAsync(func, thread_sensitive=False)

    @functools.wraps(func)
    async def call(*args, **kwargs):
        return await realtime.run_sending_from_loop(lambda: run(*args, **kwargs))

    return call


def available() -> bool:
    """Whether `fetchone` can be used: the database is PostgreSQL."""
    return connections["default"].vendor == "postgresql"


async def fetchone(sql: str, params: Mapping[str, Any], *, idempotent: bool = False) -> tuple | None:
    """Run one statement in its own transaction and return its first row.

    A kept connection can have died while idle (the database restarted since); its first
    statement then fails. With `idempotent` (running the statement twice has the effect of
    running it once) the statement is run again once, on a new connection.
    """
    kept = await _loop_connections()
    async with kept.slots:
        while True:
            connection = await kept.take()
            try:
                cursor = await connection.execute(sql, params)
                row = await cursor.fetchone()
            except psycopg.OperationalError:
                await kept.discard(connection)
                if not (idempotent and connection.broken):
                    raise
                # The others were idle as long, so they probably died with it.
                await kept.discard_idle()
                idempotent = False
                continue
            except BaseException:
                # Cancelled mid-statement, or anything else: never handed out again.
                await kept.discard(connection)
                raise
            kept.give_back(connection)
            return row


class _LoopConnections:
    """The connections of one event loop, kept open between statements.

    Not psycopg_pool's AsyncConnectionPool: its background tasks keep an event loop from
    finishing (asyncio.run hangs at exit) unless something closes the pool first, and a
    Daphne process or a test has no such place. Nothing here runs in the background; the
    connections are closed when the loop shuts down its async generators (asyncio.run and
    pytest-asyncio do so), or with the process.
    """

    def __init__(self) -> None:
        # Statements in flight at once, each holding a session; more wait.
        self.slots = asyncio.Semaphore(settings.DB_ASYNC_CONNECTIONS)
        self.idle: list[AsyncConnection] = []
        # Kept here because the loop holds its async generators only weakly.
        self.closer = self._close_at_loop_shutdown()

    async def take(self) -> AsyncConnection:
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed:
                return connection
        return await AsyncConnection.connect(**_connection_kwargs())

    def give_back(self, connection: AsyncConnection) -> None:
        self.idle.append(connection)

    async def discard(self, connection: AsyncConnection) -> None:
        with contextlib.suppress(Exception):
            await connection.close()

    async def discard_idle(self) -> None:
        while self.idle:
            await self.discard(self.idle.pop())

    async def _close_at_loop_shutdown(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.discard_idle()


async def _loop_connections() -> _LoopConnections:
    loop = asyncio.get_running_loop()
    kept = _by_loop.get(loop)
    if kept is None:
        kept = _by_loop[loop] = _LoopConnections()
        # The first step registers the generator with the running loop (and awaits nothing).
        await anext(kept.closer)
    return kept


def _connection_kwargs() -> dict[str, Any]:
    """Django's own connection settings (the test database in tests), without its sync-only
    cursor class and adapters, and with times in UTC as Django's connections have them."""
    params = connections["default"].get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    params.setdefault("options", "-c TimeZone=UTC")
    params.setdefault("application_name", "dioa-async")
    return {**params, "autocommit": True}
