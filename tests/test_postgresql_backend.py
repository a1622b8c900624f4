"""The test process's PostgreSQL backend empties the database between tests as Django's does."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection

from chat import services as chat_services
from chat.models import Conversation, Message
from kiosk.models import Service

pytestmark = pytest.mark.services


@pytest.mark.django_db(transaction=True)
def test_a_flush_empties_every_table_whatever_refers_to_what(postgres, service, advisor):
    conversation, _token = chat_services.conversation_start(visitor_name="Pat", service=service)
    chat_services.conversation_assign(conversation_id=conversation.id, helper=advisor)
    chat_services.message_create(conversation_id=conversation.id, author_kind="visitor", body="Hello")
    assert Message.objects.exists()

    statements = connection.ops.sql_flush(no_style(), ["chat_message", "chat_conversation"])
    assert statements == ['DELETE FROM "chat_message";', 'DELETE FROM "chat_conversation";']

    call_command("flush", interactive=False, verbosity=0)

    assert not Message.objects.exists()
    assert not Conversation.objects.exists()
    assert not Service.objects.exists()
    assert not Group.objects.exists()


def test_a_flush_that_resets_sequences_still_truncates(postgres):
    statements = connection.ops.sql_flush(no_style(), ["chat_message"], reset_sequences=True)

    assert statements == ['TRUNCATE "chat_message" RESTART IDENTITY;']
