"""Payloads survive the Redis layers' msgpack round trip; group names fit the layer's rules."""

import json
import re

import msgpack
import pytest

from agents_console.roles import Role
from chat import events, services
from chat.models import Message

pytestmark = pytest.mark.django_db

GROUP_NAME = re.compile(r"^[A-Za-z0-9._-]{1,99}$")


def round_trip(payload):
    assert json.loads(json.dumps(payload)) == payload
    assert msgpack.unpackb(msgpack.packb(payload)) == payload


def test_every_payload_survives_json_and_msgpack(advisor, service):
    conversation, _token = services.conversation_start(visitor_name="Pat ✓", service=service)
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    message, _ = services.message_create(
        conversation_id=conversation.pk, author_kind=Message.AuthorKind.VISITOR, body="<b>hi</b> 😀", client_id="x"
    )
    services.conversation_end(conversation_id=conversation.pk, ended_by="helper", helper=advisor)
    conversation.refresh_from_db()

    round_trip(events.message_payload(message))
    round_trip(events.conversation_public_payload(conversation))
    round_trip(events.conversation_staff_payload(conversation))


def test_group_names_are_valid_for_every_layer():
    for name in (events.queue_group(), events.conversation_group(10**12)):
        assert GROUP_NAME.match(name), name


def test_the_resident_payload_never_carries_staff_fields(advisor):
    conversation, _token = services.conversation_start(visitor_name="Pat")
    conversation = services.conversation_assign(conversation_id=conversation.pk, helper=advisor)

    public = events.conversation_public_payload(conversation)

    assert "assigned_helper_id" not in public
    assert "visitor_name" not in public
    assert public["helper_name"] == "Alex"


def test_residents_never_see_a_helpers_login_colleagues_do(make_user):
    """A helper without a first name is "Advisor" to residents, not their staff login."""
    helper = make_user("s.jones@millbrook.gov.uk", Role.ADVISOR, first_name="")
    conversation, _token = services.conversation_start(visitor_name="Pat")
    conversation = services.conversation_assign(conversation_id=conversation.pk, helper=helper)
    message, _ = services.message_create(
        conversation_id=conversation.pk, author_kind=Message.AuthorKind.HELPER, author=helper, body="Hello"
    )

    assert events.conversation_public_payload(conversation)["helper_name"] == "Advisor"
    assert events.message_payload(message)["author"]["name"] == "Advisor"
    assert Message.objects.filter(author_kind="system", body="Advisor joined the conversation.").exists()
    assert not Message.objects.filter(body__contains="s.jones").exists()
    assert events.conversation_staff_payload(conversation)["helper_name"] == "s.jones@millbrook.gov.uk"
