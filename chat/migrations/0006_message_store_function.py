"""PostgreSQL: store a chat message in one statement (chat.services.message_create).

The function takes the conversation's row lock, checks, numbers and inserts in a single
round trip with no BEGIN/COMMIT around it (docs/performance.md). Each statement in a
PL/pgSQL function takes a fresh snapshot, so once the lock is held the checks see every
message committed before it, as the two statements under `transaction.atomic` of the
generic path (SQLite) do. A refusal changes nothing, so nothing needs rolling back.
"""

from django.db import migrations

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION chat_message_store(
    p_conversation_id bigint,
    p_author_kind text,
    p_author_id bigint,
    p_helper_name text,
    p_body text,
    p_client_id text,
    p_limit integer
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
    SELECT c.last_seq, c.status, c.assigned_helper_id, c.visitor_name INTO conversation
    FROM chat_conversation c WHERE c.id = p_conversation_id FOR UPDATE;
    IF NOT FOUND THEN
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

DROP_FUNCTION = "DROP FUNCTION IF EXISTS chat_message_store(bigint, text, bigint, text, text, text, integer);"


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_FUNCTION)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_cobrowse_sessions"),
    ]

    operations = [
        migrations.RunPython(create_function, drop_function),
    ]
