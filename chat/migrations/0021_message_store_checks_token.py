"""PostgreSQL: `chat_message_store` checks the resident's token under the row lock.

A resident's socket that opened a conversation with a token the conversation no longer has
(it moved from a kiosk to a phone, and the socket has not yet heard) is refused as if the
conversation did not exist: only the token opens it. Helpers' messages pass NULL and are
checked by who holds the conversation, as before. Otherwise the function is 0006's.
"""

import importlib

from django.db import migrations

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION chat_message_store(
    p_conversation_id bigint,
    p_author_kind text,
    p_author_id bigint,
    p_helper_name text,
    p_body text,
    p_client_id text,
    p_limit integer,
    -- A default, so that a server still running the code before this migration (seven
    -- arguments) keeps storing messages until it restarts.
    p_token_hash text DEFAULT NULL
) RETURNS TABLE (
    outcome text,
    message_id bigint,
    message_seq integer,
    message_author_name text,
    message_created_at timestamptz
)
LANGUAGE plpgsql
AS $$
#variable_conflict error
DECLARE
    conversation record;
    stored_id bigint;
    sent_at timestamptz;
    shown_name text;
    new_id bigint;
BEGIN
    SELECT c.last_seq, c.status, c.assigned_helper_id, c.visitor_name, c.token_hash INTO conversation
    FROM chat_conversation c WHERE c.id = p_conversation_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'conversation_not_found'::text, NULL::bigint, NULL::integer, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    -- A resident's socket names the token it opened the conversation with: one that no longer
    -- opens it (the chat moved to another device) can post nothing, resends included.
    IF p_token_hash IS NOT NULL AND conversation.token_hash IS DISTINCT FROM p_token_hash THEN
        RETURN QUERY SELECT 'conversation_not_found'::text, NULL::bigint, NULL::integer, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    -- A resend gets the stored message back, whatever has changed since.
    IF p_client_id IS NOT NULL THEN
        SELECT m.id INTO stored_id FROM chat_message m
        WHERE m.conversation_id = p_conversation_id AND m.client_id = p_client_id;
        IF FOUND THEN
            RETURN QUERY SELECT 'stored'::text, stored_id, NULL::integer, NULL::text, NULL::timestamptz;
            RETURN;
        END IF;
    END IF;
    IF conversation.status = 'ended' THEN
        RETURN QUERY SELECT 'conversation_ended'::text, NULL::bigint, NULL::integer, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    IF p_author_kind = 'helper' AND conversation.assigned_helper_id IS DISTINCT FROM p_author_id THEN
        RETURN QUERY SELECT 'not_assigned'::text, NULL::bigint, NULL::integer, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    -- Read once the lock is held, so times follow sequence numbers.
    sent_at := clock_timestamp();
    IF (
        SELECT count(*) FROM chat_message m
        WHERE m.conversation_id = p_conversation_id AND m.author_kind = p_author_kind
            AND m.created_at >= sent_at - interval '1 minute'
    ) >= p_limit THEN
        RETURN QUERY SELECT 'rate_limited'::text, NULL::bigint, NULL::integer, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    shown_name := CASE WHEN p_author_kind = 'helper' THEN p_helper_name ELSE conversation.visitor_name END;
    UPDATE chat_conversation SET last_seq = conversation.last_seq + 1 WHERE id = p_conversation_id;
    INSERT INTO chat_message (conversation_id, seq, author_kind, author_id, author_name, body, client_id, created_at)
    VALUES (
        p_conversation_id, conversation.last_seq + 1, p_author_kind, p_author_id, shown_name, p_body, p_client_id, sent_at
    )
    RETURNING id INTO new_id;
    RETURN QUERY SELECT 'created'::text, new_id, conversation.last_seq + 1, shown_name, sent_at;
END
$$;
"""

DROP_FUNCTION = "DROP FUNCTION IF EXISTS chat_message_store(bigint, text, bigint, text, text, text, integer, text);"


def _previous():
    return importlib.import_module("chat.migrations.0006_message_store_function")


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_FUNCTION)
        schema_editor.execute(_previous().DROP_FUNCTION)


def restore_previous_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_previous().CREATE_FUNCTION)
        schema_editor.execute(DROP_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0020_conversation_released_by"),
    ]

    operations = [
        migrations.RunPython(create_function, restore_previous_function),
    ]
