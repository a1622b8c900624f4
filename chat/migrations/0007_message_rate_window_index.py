"""Messages: an index for the per-minute limit, in place of the conversation's own index.

The per-minute count (chat_message_store, INSERT_MESSAGE_SQL) filters one conversation's
messages by author and time; read from (conversation, author_kind, created_at) it costs the
minute's messages, not the whole conversation's. The foreign key's own index goes: the unique
(conversation, seq) index leads with the same column.

On PostgreSQL both indexes change CONCURRENTLY, outside a transaction, so a live message table
is never locked against reads or writes and always has an index on its conversation; Django's
own AlterField would drop and re-add the foreign key constraint, checking every row under lock.
The new index is created without IF NOT EXISTS: a concurrent build that failed leaves an
invalid index of that name, which a rerun must report rather than keep while dropping the
old one.
"""

import django.db.models.deletion
from django.db import migrations, models

NEW_INDEX = "chat_message_rate_window"
OLD_INDEX = "chat_message_conversation_id_a1207bf4"


def _concurrently(schema_editor) -> str:
    return "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""


def swap_indexes(apps, schema_editor):
    concurrently = _concurrently(schema_editor)
    schema_editor.execute(
        f"CREATE INDEX {concurrently}{NEW_INDEX} ON chat_message (conversation_id, author_kind, created_at)"
    )
    schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {OLD_INDEX}")


def restore_indexes(apps, schema_editor):
    concurrently = _concurrently(schema_editor)
    schema_editor.execute(f"CREATE INDEX {concurrently}{OLD_INDEX} ON chat_message (conversation_id)")
    schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {NEW_INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("chat", "0006_message_store_function"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="conversation",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="chat.conversation",
                    ),
                ),
                migrations.AddIndex(
                    model_name="message",
                    index=models.Index(fields=["conversation", "author_kind", "created_at"], name=NEW_INDEX),
                ),
            ],
            database_operations=[migrations.RunPython(swap_indexes, restore_indexes)],
        ),
    ]
