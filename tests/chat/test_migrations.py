"""Migration 0007 swaps the message table's conversation index for the per-minute limit's,
concurrently on PostgreSQL and outside a transaction, so it is run here for real, both ways,
on whichever database the pass uses."""

import datetime

import pytest
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("chat", "0006_message_store_function")]
AFTER = [("chat", "0007_message_rate_window_index")]
RATE_WINDOW = "chat_message_rate_window"
CONVERSATION_ONLY = "chat_message_conversation_id_a1207bf4"


def migrate(targets=None) -> None:
    """To `targets`; by default to every app's newest migration, the schema the models describe."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def message_indexes() -> dict[str, list[str]]:
    """The message table's plain (non-unique) indexes and their columns."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "chat_message")
    return {
        name: found["columns"]
        for name, found in constraints.items()
        if found["index"] and not found["unique"] and not found["primary_key"]
    }


@pytest.fixture
def back_at_0006():
    migrate(BEFORE)
    try:
        yield
    finally:
        # Whatever the test did, the next test gets the schema the models describe (not just
        # 0007's: later migrations were unapplied on the way back to 0006).
        if {RATE_WINDOW, CONVERSATION_ONLY} <= message_indexes().keys():
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX {RATE_WINDOW}")
        migrate()


def test_forwards_and_backwards_swap_the_indexes(back_at_0006):
    before = message_indexes()
    assert before[CONVERSATION_ONLY] == ["conversation_id"]
    assert RATE_WINDOW not in before

    migrate(AFTER)
    after = message_indexes()
    assert after[RATE_WINDOW] == ["conversation_id", "author_kind", "created_at"]
    assert CONVERSATION_ONLY not in after

    migrate(BEFORE)
    assert message_indexes() == before


def test_a_rerun_after_a_failed_build_stops_before_dropping_the_old_index(back_at_0006):
    # What a concurrent build that failed leaves behind: an index of the new one's name.
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX {RATE_WINDOW} ON chat_message (conversation_id)")

    with pytest.raises(DatabaseError):
        migrate(AFTER)

    indexes = message_indexes()
    assert indexes[CONVERSATION_ONLY] == ["conversation_id"]
    assert indexes[RATE_WINDOW] == ["conversation_id"]


def test_migration_0010_starts_every_existing_wait_when_it_joined_the_queue():
    from chat.models import Conversation

    before = ("chat", "0009_wait_estimate_indexes")
    migrate([before])
    try:
        executor = MigrationExecutor(connection)
        old_conversation = executor.loader.project_state(before).apps.get_model("chat", "Conversation")
        old_conversation.objects.create(
            token_hash="h", waiting_since=datetime.datetime(2026, 11, 30, 9, 15, tzinfo=datetime.UTC)
        )
    finally:
        migrate()

    conversation = Conversation.objects.get()
    assert (
        conversation.queued_at
        == conversation.waiting_since
        == datetime.datetime(2026, 11, 30, 9, 15, tzinfo=datetime.UTC)
    )


def test_migration_0013_gives_earlier_ends_their_ender_as_the_reason():
    from chat.models import Conversation

    before = ("chat", "0012_start_key")
    migrate([before])
    try:
        executor = MigrationExecutor(connection)
        old_conversation = executor.loader.project_state(before).apps.get_model("chat", "Conversation")
        now = datetime.datetime(2026, 11, 30, 9, 15, tzinfo=datetime.UTC)
        old_conversation.objects.create(token_hash="ended", waiting_since=now, status="ended", ended_by="system")
        old_conversation.objects.create(token_hash="open", waiting_since=now)
    finally:
        migrate()

    reasons = dict(Conversation.objects.values_list("token_hash", "ended_reason"))
    assert reasons == {"ended": "system", "open": ""}
