"""The load balancer's health check: 200 only when the database and the channel layer work."""

import asyncio
import logging

from channels.db import DatabaseSyncToAsync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 3
HEALTH_GROUP = "health.check"


def _database_ok() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


async def _channel_layer_ok() -> bool:
    # A group send is a real round trip to Redis on both Redis layers, and it leaves nothing
    # behind (a fresh channel would stay subscribed on the pub/sub layer).
    await get_channel_layer().group_send(HEALTH_GROUP, {"type": "health.check"})
    return True


async def _check(name: str, check) -> bool:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("health check of %s failed", name)
        return False


@never_cache
@require_GET
async def healthz(request):
    # Not thread-sensitive: a database that hangs must not hold the thread that sync middleware
    # needs to finish this very response. Channels' wrapper hands the connection back after.
    database = await _check("database", DatabaseSyncToAsync(_database_ok, thread_sensitive=False))
    channel_layer = await _check("channel layer", _channel_layer_ok)
    healthy = database and channel_layer
    return JsonResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "database": "ok" if database else "unavailable",
            "channel_layer": "ok" if channel_layer else "unavailable",
        },
        status=200 if healthy else 503,
    )
