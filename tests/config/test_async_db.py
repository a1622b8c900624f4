"""PostgreSQL from the event loop (config.async_db), and chat messages stored through it:
the same results as the sync path, announced once committed, still stored and announced
when the caller is cancelled, a dead connection replaced, and no session left behind."""

import asyncio
import time

import psycopg
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.db import connection

from chat import events, services
from chat.models import Conversation, Message
from config import async_db

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

OWN_SESSIONS_SQL = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dioa-async' AND datname = current_database()"
)


def own_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(OWN_SESSIONS_SQL)
        return cursor.fetchone()[0]


def test_connections_are_closed_when_their_event_loop_shuts_down(postgres):
    async def use() -> set[int]:
        rows = await asyncio.gather(
            *(async_db.fetchone("SELECT pg_backend_pid() FROM pg_sleep(0.05)", {}) for _ in range(3))
        )
        return {pid for (pid,) in rows}

    backends = asyncio.run(use())

    assert len(backends) == 3
    # These sessions, not every one with the name: a server another test stopped a moment ago
    # may still be leaving. A closed session's backend exits just after its client has gone.
    for _ in range(100):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [list(backends)])
            if cursor.fetchone()[0] == 0:
                break
        time.sleep(0.05)
    else:
        raise AssertionError(f"sessions {backends} still open after their loop shut down")


@pytest.mark.asyncio
@pytest.mark.parametrize("sessions", [1, 3])
async def test_statements_in_flight_are_limited_to_the_configured_sessions(postgres, settings, sessions):
    settings.DB_ASYNC_CONNECTIONS = sessions
    # Each test has its own event loop, so its own sessions.
    backends = await asyncio.gather(
        *(async_db.fetchone("SELECT pg_backend_pid() FROM pg_sleep(0.1)", {}) for _ in range(4))
    )
    assert len(set(backends)) == sessions


@pytest.mark.asyncio
async def test_a_connection_that_died_idle_is_replaced_for_an_idempotent_statement_only(postgres):
    async def kill_own_sessions() -> None:
        await sync_to_async(terminate_own_sessions)()
        for _ in range(100):
            if await sync_to_async(own_sessions)() == 0:
                return
            await asyncio.sleep(0.02)

    first = (await async_db.fetchone("SELECT pg_backend_pid()", {}))[0]
    await kill_own_sessions()
    second = (await async_db.fetchone("SELECT pg_backend_pid()", {}, idempotent=True))[0]
    assert second != first

    await kill_own_sessions()
    with pytest.raises(psycopg.OperationalError):
        await async_db.fetchone("SELECT 1", {})
    assert await async_db.fetchone("SELECT 1", {}) == (1,)


def terminate_own_sessions() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'dioa-async' AND datname = current_database()"
        )


async def conversation_with_listener():
    conversation, _token = await sync_to_async(services.conversation_start)()
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events.conversation_group(conversation.pk), channel)
    return conversation, layer, channel


@pytest.mark.asyncio
async def test_a_message_stored_from_the_loop_is_announced_and_a_resend_returns_and_announces_it_again(postgres):
    conversation, layer, channel = await conversation_with_listener()

    message, created = await services.amessage_create(
        conversation_id=conversation.pk, author_kind="visitor", body="Hello", client_id="c-1"
    )
    resent, created_again = await services.amessage_create(
        conversation_id=conversation.pk, author_kind="visitor", body="Hello", client_id="c-1"
    )

    assert (message.seq, created, resent.pk, created_again) == (1, True, message.pk, False)
    stored = events.message_payload(await sync_to_async(Message.objects.get)(pk=message.pk))
    # Once when stored, once more for the resend (sockets that hold the seq drop it).
    for _ in range(2):
        event = await asyncio.wait_for(layer.receive(channel), 5)
        assert (event["type"], event["message"]) == (events.MESSAGE_CREATED, stored)
    assert await sync_to_async(Message.objects.filter(client_id="c-1").count)() == 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)


@pytest.mark.asyncio
async def test_refusals_from_the_loop_change_nothing(postgres, advisor, settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 1
    conversation, _layer, _channel = await conversation_with_listener()
    await services.amessage_create(conversation_id=conversation.pk, author_kind="visitor", body="a", client_id="a")

    async def code(**kwargs) -> str:
        with pytest.raises(ValidationError) as refused:
            await services.amessage_create(conversation_id=conversation.pk, **kwargs)
        return refused.value.code

    assert await code(author_kind="visitor", body="b", client_id="b") == "rate_limited"
    assert await code(author_kind="visitor", body="other text", client_id="a") == "duplicate_client_id"
    assert await code(author_kind="helper", author=advisor, body="c", client_id="c") == "not_assigned"
    with pytest.raises(ValidationError) as missing:
        await services.amessage_create(conversation_id=0, author_kind="visitor", body="d", client_id="d")
    assert missing.value.code == "conversation_not_found"
    await sync_to_async(services.conversation_end)(conversation_id=conversation.pk, ended_by="visitor")
    settings.CHAT_MESSAGES_PER_MINUTE = 100
    assert await code(author_kind="visitor", body="e", client_id="e") == "conversation_ended"

    stored = await sync_to_async(list)(Message.objects.filter(conversation_id=conversation.pk, author_kind="visitor"))
    assert [message.body for message in stored] == ["a"]
    assert (await sync_to_async(Conversation.objects.get)(pk=conversation.pk)).last_seq == len(
        await sync_to_async(list)(Message.objects.filter(conversation_id=conversation.pk))
    )


@pytest.mark.asyncio
async def test_a_cancelled_callers_message_is_still_stored_and_announced(postgres):
    conversation, layer, channel = await conversation_with_listener()

    caller = asyncio.ensure_future(
        services.amessage_create(conversation_id=conversation.pk, author_kind="visitor", body="bye", client_id="c-9")
    )
    await asyncio.sleep(0)  # the store has started
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller

    event = await asyncio.wait_for(layer.receive(channel), 5)
    assert (event["message"]["body"], event["message"]["seq"]) == ("bye", 1)
    assert await sync_to_async(Message.objects.filter(conversation_id=conversation.pk, client_id="c-9").count)() == 1
