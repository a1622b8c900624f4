"""Hourly limits on what one network address (or one person) may create, counted in the
database so that they hold across every process."""

import datetime
import hashlib
import hmac
import ipaddress

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet


def client_address_hash(address: str | None) -> str:
    """A keyed hash of a network address: enough to count, useless to look anyone up.

    What is hashed is what one household or device holds: an IPv6 device may use any address
    of its /64 (and changes address by the hour), so the /64 is counted; an IPv4 address
    written as IPv6 (`::ffff:203.0.113.9`) is the IPv4 address.
    """
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        counted = address
    else:
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        counted = str(ipaddress.ip_network(f"{ip}/64", strict=False) if ip.version == 6 else ip)
    return hmac.new(settings.SECRET_KEY.encode(), counted.encode(), hashlib.sha256).hexdigest()


def hourly_limit_reached(counted: list[QuerySet], turn: str, now: datetime.datetime, *, limit: int) -> bool:
    """Whether the rows of `counted` created in the hour before `now` have reached `limit`.
    Call it inside the transaction that creates the row.

    Callers with the same `turn` take turns until their transactions end; otherwise several
    at once would each count the rows committed before any of them and all pass at the limit.
    (SQLite's transactions are immediate here: they already take turns.)
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [turn])
    since = now - datetime.timedelta(hours=1)
    return sum(queryset.filter(created_at__gt=since).count() for queryset in counted) >= limit
