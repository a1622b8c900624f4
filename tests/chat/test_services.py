"""Conversation and message rules, and exactly whom each change is announced to."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from chat import events, services
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


def start(**kwargs):
    return services.conversation_start(**kwargs)


def test_start_stores_only_the_token_hash_and_queues_for_helpers(
    broadcasts, django_capture_on_commit_callbacks, service
):
    with django_capture_on_commit_callbacks(execute=True):
        conversation, token = start(visitor_name="Pat", service=service)

    assert len(token) >= 40
    assert conversation.token_hash == services.token_hash(token)
    assert token not in conversation.token_hash
    assert conversation.status == Conversation.Status.WAITING
    assert conversation.waiting_since is not None
    assert broadcasts.sent[0] == (
        events.queue_group(),
        {"type": events.CONVERSATION_QUEUED, "conversation": events.conversation_staff_payload(conversation)},
    )
    group, moved = broadcasts.sent[1]
    assert (group, moved["type"], moved["waiting"]) == (events.waiting_group(), events.QUEUE_MOVED, [conversation.pk])
    assert len(broadcasts.sent) == 2


def test_nothing_is_broadcast_when_the_transaction_rolls_back(broadcasts, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        start()
        raise RuntimeError("rolled back")
    assert callbacks == []
    assert broadcasts.sent == []
    assert Conversation.objects.count() == 0


def test_messages_are_numbered_without_gaps_and_announced_to_the_conversation_only(
    broadcasts, django_capture_on_commit_callbacks
):
    conversation, _token = start()
    with django_capture_on_commit_callbacks(execute=True):
        first, created_first = services.message_create(
            conversation_id=conversation.pk, author_kind=Message.AuthorKind.VISITOR, body="Hello", client_id="c-1"
        )
        second, created_second = services.message_create(
            conversation_id=conversation.pk,
            author_kind=Message.AuthorKind.VISITOR,
            body="Anyone there?",
            client_id="c-2",
        )

    assert (first.seq, second.seq) == (1, 2)
    assert created_first and created_second
    conversation.refresh_from_db()
    assert conversation.last_seq == 2
    assert broadcasts.groups(events.MESSAGE_CREATED) == [events.conversation_group(conversation.pk)] * 2
    assert broadcasts.events(events.MESSAGE_CREATED)[1]["message"] == {
        "conversation_id": conversation.pk,
        "seq": 2,
        "client_id": "c-2",
        "author": {"kind": "visitor", "name": ""},
        "body": "Anyone there?",
        "created_at": second.created_at.isoformat(),
    }


def test_resending_a_client_id_returns_the_stored_message_and_announces_it_again(
    broadcasts, django_capture_on_commit_callbacks
):
    # Again because the process that stored it may have stopped before announcing it; sockets
    # that already hold its seq drop the repeat (tests/chat/test_webchat_consumers.py).
    conversation, _token = start()
    original, _ = services.message_create(
        conversation_id=conversation.pk, author_kind="visitor", body="Hello", client_id="same"
    )
    with django_capture_on_commit_callbacks(execute=True):
        again, created = services.message_create(
            conversation_id=conversation.pk, author_kind="visitor", body="Hello", client_id="same"
        )

    assert not created
    assert again.pk == original.pk
    assert Message.objects.filter(conversation=conversation).count() == 1
    assert broadcasts.sent == [
        (
            events.conversation_group(conversation.pk),
            {"type": events.MESSAGE_CREATED, "message": events.message_payload(again)},
        )
    ]


def test_a_client_id_reused_for_different_text_is_refused(advisor):
    conversation, _token = start()
    services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="Hello", client_id="same")

    with pytest.raises(ValidationError) as error:
        services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="Other", client_id="same")

    assert error.value.code == "duplicate_client_id"
    assert Message.objects.filter(conversation=conversation).count() == 1


def test_a_resent_message_is_returned_even_after_the_conversation_ended():
    conversation, _token = start()
    services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="Bye", client_id="late")
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")

    message, created = services.message_create(
        conversation_id=conversation.pk, author_kind="visitor", body="Bye", client_id="late"
    )

    assert (message.body, created) == ("Bye", False)


def test_no_new_message_in_an_ended_conversation():
    conversation, _token = start()
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
    count = Message.objects.count()

    with pytest.raises(ValidationError) as error:
        services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="Still there?")

    assert error.value.code == "conversation_ended"
    assert Message.objects.count() == count


def test_a_helper_cannot_post_in_a_conversation_not_assigned_to_them(advisor, other_advisor):
    conversation, _token = start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)

    with pytest.raises(ValidationError) as error:
        services.message_create(conversation_id=conversation.pk, author_kind="helper", author=other_advisor, body="Hi")

    assert error.value.code == "not_assigned"


def test_only_the_token_the_conversation_has_now_posts_or_ends_as_the_resident():
    conversation, token = start()
    services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="Hi", client_id="c-1")
    old = services.token_hash(token)
    Conversation.objects.filter(pk=conversation.pk).update(token_hash=services.token_hash("moved"))

    for attempt in (
        # A new message, and a resend of a stored one: neither is the old token's any more.
        lambda: services.message_create(
            conversation_id=conversation.pk, author_kind="visitor", body="Hello", client_id="c-2", token_hash=old
        ),
        lambda: services.message_create(
            conversation_id=conversation.pk, author_kind="visitor", body="Hi", client_id="c-1", token_hash=old
        ),
        lambda: services.conversation_end(conversation_id=conversation.pk, ended_by="visitor", token_hash=old),
    ):
        with pytest.raises(ValidationError) as error:
            attempt()
        assert error.value.code == "conversation_not_found"

    conversation.refresh_from_db()
    assert (conversation.last_seq, conversation.status) == (1, Conversation.Status.WAITING)
    assert list(Message.objects.values_list("body", flat=True)) == ["Hi"]
    message, created = services.message_create(
        conversation_id=conversation.pk,
        author_kind="visitor",
        body="From my phone",
        token_hash=services.token_hash("moved"),
    )
    assert (message.seq, created) == (2, True)


def test_unknown_conversation_is_reported_not_found():
    with pytest.raises(ValidationError) as error:
        services.message_create(conversation_id=999999, author_kind="visitor", body="Hi")
    assert error.value.code == "conversation_not_found"


def test_taking_the_last_waiting_conversation_tells_no_waiting_resident(
    advisor, broadcasts, django_capture_on_commit_callbacks
):
    # Nobody waits: neither the wait estimate nor the opening hours are read for nobody.
    conversation, _token = start(visitor_name="Pat")
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_assign(conversation_id=conversation.pk, helper=advisor)

    assert broadcasts.events(events.QUEUE_MOVED) == []
    assert events.CONVERSATION_ASSIGNED in [event["type"] for _group, event in broadcasts.sent]


def test_assign_tells_every_console_and_tells_the_resident_only_public_fields(
    advisor, broadcasts, django_capture_on_commit_callbacks
):
    conversation, _token = start(visitor_name="Pat")
    behind, _token = start(visitor_name="Kim")
    with django_capture_on_commit_callbacks(execute=True):
        conversation = services.conversation_assign(conversation_id=conversation.pk, helper=advisor)

    assert conversation.status == Conversation.Status.ACTIVE
    assert conversation.assigned_helper == advisor
    joined = Message.objects.get(conversation=conversation, author_kind="system")
    assert joined.body == "Alex joined the conversation."
    assert [(group, event["type"]) for group, event in broadcasts.sent] == [
        (events.conversation_group(conversation.pk), events.MESSAGE_CREATED),
        (events.queue_group(), events.CONVERSATION_ASSIGNED),
        (events.conversation_group(conversation.pk), events.CONVERSATION_CHANGED),
        (events.waiting_group(), events.QUEUE_MOVED),
    ]
    moved = broadcasts.events(events.QUEUE_MOVED)[0]
    assert (moved["waiting"], moved["available"], moved["reason"]) == ([behind.pk], True, None)
    public = broadcasts.events(events.CONVERSATION_CHANGED)[0]["conversation"]
    assert set(public) == {
        "id",
        "status",
        "channel",
        "helper_name",
        "last_seq",
        "ended_by",
        "ended_reason",
        "helper_read_seq",
        "rating",
        "queued_at",
    }
    assert public["helper_name"] == "Alex"
    staff = broadcasts.events(events.CONVERSATION_ASSIGNED)[0]["conversation"]
    assert staff["assigned_helper_id"] == advisor.pk
    assert staff["visitor_name"] == "Pat"


def test_accepting_a_conversation_already_taken_reports_gone(advisor, other_advisor):
    conversation, _token = start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)

    with pytest.raises(ValidationError) as error:
        services.conversation_assign(conversation_id=conversation.pk, helper=other_advisor)

    assert error.value.code == "conversation_gone"
    conversation.refresh_from_db()
    assert conversation.assigned_helper == advisor


def test_ending_twice_changes_nothing_the_second_time(broadcasts, django_capture_on_commit_callbacks):
    conversation, _token = start()
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
    with django_capture_on_commit_callbacks(execute=True):
        _conversation, changed = services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")

    assert not changed
    assert broadcasts.sent == []
    assert Message.objects.filter(conversation=conversation, author_kind="system").count() == 1


def test_end_announces_to_resident_and_consoles(advisor, broadcasts, django_capture_on_commit_callbacks):
    conversation, _token = start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    with django_capture_on_commit_callbacks(execute=True):
        conversation, changed = services.conversation_end(
            conversation_id=conversation.pk, ended_by="helper", helper=advisor
        )

    assert changed
    assert conversation.status == Conversation.Status.ENDED
    assert conversation.ended_by == "helper"
    assert broadcasts.groups(events.CONVERSATION_ENDED) == [events.queue_group()]
    assert broadcasts.groups(events.CONVERSATION_CHANGED) == [events.conversation_group(conversation.pk)]
    assert broadcasts.events(events.MESSAGE_CREATED)[0]["message"]["body"] == "The helper ended the conversation."


def test_a_helper_cannot_end_someone_elses_conversation(advisor, other_advisor):
    conversation, _token = start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)

    with pytest.raises(ValidationError) as error:
        services.conversation_end(conversation_id=conversation.pk, ended_by="helper", helper=other_advisor)

    assert error.value.code == "not_assigned"
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ACTIVE


def test_a_broadcast_failure_after_commit_loses_nothing(monkeypatch, django_capture_on_commit_callbacks):
    def broken(group, event):
        raise ConnectionError("layer down")

    monkeypatch.setattr("config.realtime.group_send", broken)
    conversation, _token = start()
    with django_capture_on_commit_callbacks(execute=True):
        message, created = services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="Hi")

    assert created
    assert Message.objects.get(pk=message.pk).body == "Hi"
    assert json.loads(json.dumps(events.message_payload(message)))["seq"] == 1
