"""Presence across processes, automatic routing, requeue, transfer and notes, without sockets."""

import datetime
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone

from agents_console import assignment, presence
from agents_console.management.commands import assist_sweep
from agents_console.models import ConsoleConnection, ConsoleSettings, HelperProfile
from chat import events, services
from chat.models import Conversation, InternalNote, Message

pytestmark = pytest.mark.django_db


def online(user, channel="c", **fields):
    ConsoleConnection.objects.create(
        channel_name=f"{channel}-{user.pk}",
        helper=user,
        last_seen_at=fields.pop("last_seen_at", timezone.now()),
        **fields,
    )


@pytest.fixture
def automatic(db):
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"routing": ConsoleSettings.Routing.AUTOMATIC})


def test_presence_is_the_chosen_status_while_a_console_is_open(advisor):
    assert presence.helper_presence(user=advisor) == "offline"
    online(advisor)
    assert presence.helper_presence(user=advisor) == "available"
    presence.helper_status_set(user=advisor, status="away")
    assert presence.helper_presence(user=advisor) == "away"


def test_closing_every_tab_makes_a_helper_offline_after_the_grace_period(advisor):
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"presence_grace_seconds": 30})
    presence.console_connection_open(channel_name="tab-1", helper_id=advisor.pk)
    presence.console_connection_open(channel_name="tab-2", helper_id=advisor.pk)
    presence.console_connection_close(channel_name="tab-1")
    assert presence.helper_presence(user=advisor) == "available", "one tab is still open"

    presence.console_connection_close(channel_name="tab-2")
    assert presence.helper_presence(user=advisor) == "available", "within the grace period"
    later = timezone.now() + datetime.timedelta(seconds=31)
    assert presence.helper_presence(user=advisor, now=later) == "offline"


def test_a_console_whose_process_died_stops_counting_after_the_heartbeat(advisor):
    online(advisor, last_seen_at=timezone.now() - datetime.timedelta(seconds=presence.CONNECTION_FRESH_SECONDS + 1))
    assert presence.helper_presence(user=advisor) == "offline"


def test_manual_routing_leaves_conversations_in_the_queue(advisor):
    online(advisor)
    conversation, _ = services.conversation_start()
    assert assignment.queue_route_waiting() == []
    conversation.refresh_from_db()
    assert conversation.status == "waiting"


@pytest.mark.django_db(transaction=True)  # routing reacts after each commit
def test_automatic_routing_picks_the_least_busy_available_helper(automatic, advisor, other_advisor, volunteer):
    for helper in (advisor, other_advisor, volunteer):
        online(helper)
    presence.helper_status_set(user=volunteer, status="away")
    first, _ = services.conversation_start()
    second, _ = services.conversation_start()

    first.refresh_from_db()
    second.refresh_from_db()
    assert {first.assigned_helper_id, second.assigned_helper_id} == {advisor.pk, other_advisor.pk}
    assert first.assigned_automatically and second.assigned_automatically


@pytest.mark.django_db(transaction=True)  # routing reacts after each commit
def test_automatic_routing_respects_capacity(automatic, advisor):
    online(advisor)
    HelperProfile.objects.update_or_create(user=advisor, defaults={"capacity": 1})
    first, _ = services.conversation_start()
    second, _ = services.conversation_start()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("active", "waiting")

    services.conversation_end(conversation_id=first.pk, ended_by="helper", helper=advisor)

    second.refresh_from_db()
    assert second.assigned_helper == advisor, "a freed place is filled from the queue"


@pytest.mark.django_db(transaction=True)  # routing reacts after each commit
def test_an_unanswered_automatic_assignment_returns_to_the_head_of_the_queue(automatic, advisor, broadcasts):
    online(advisor)
    older, _ = services.conversation_start(now=timezone.now() - datetime.timedelta(minutes=5))
    older.refresh_from_db()
    assert older.assigned_helper == advisor
    presence.helper_status_set(user=advisor, status="busy")
    newer, _ = services.conversation_start()

    later = timezone.now() + datetime.timedelta(seconds=121)
    requeued = services.conversation_requeue_unanswered(answer_within_seconds=120, now=later)

    older.refresh_from_db()
    assert requeued == [older.pk]
    assert (older.status, older.assigned_helper, older.assigned_automatically) == ("waiting", None, False)
    waiting = list(Conversation.objects.filter(status="waiting").order_by("waiting_since").values_list("pk", flat=True))
    assert waiting == [older.pk, newer.pk], "back at the head of the queue"
    assert "back in the queue, ahead of those who came after you" in older.messages.last().body
    assert older.queued_at == older.waiting_since, "nobody answered: the resident's wait goes on"


@pytest.mark.django_db(transaction=True)  # routing reacts after each commit
def test_a_chat_its_helper_did_not_answer_is_not_routed_straight_back_to_them(automatic, advisor, other_advisor):
    online(advisor)
    conversation, _ = services.conversation_start()
    conversation.refresh_from_db()
    assert conversation.assigned_helper == advisor

    later = timezone.now() + datetime.timedelta(seconds=121)
    assert services.conversation_requeue_unanswered(answer_within_seconds=120, now=later) == [conversation.pk]

    # Alex is still the least busy, and the only one online: it waits for someone else.
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_helper) == ("waiting", None)
    assert assignment.queue_route_waiting() == []
    # Bea comes online: it is hers.
    online(other_advisor, channel="b")
    assert assignment.queue_route_waiting() == [conversation.pk]
    conversation.refresh_from_db()
    assert conversation.assigned_helper == other_advisor


@pytest.mark.django_db(transaction=True)  # routing reacts after each commit
def test_an_answered_automatic_assignment_stays(automatic, advisor):
    online(advisor)
    conversation, _ = services.conversation_start()
    services.message_create(conversation_id=conversation.pk, author_kind="helper", author=advisor, body="Hello")
    later = timezone.now() + datetime.timedelta(minutes=10)
    assert services.conversation_requeue_unanswered(answer_within_seconds=120, now=later) == []


def test_transfer_to_a_named_helper_tells_the_resident_and_keeps_the_note_for_staff(
    advisor, other_advisor, broadcasts, django_capture_on_commit_callbacks
):
    conversation, _ = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_transfer(
            conversation_id=conversation.pk, by_helper=advisor, to_helper=other_advisor, note="Needs the permit form"
        )

    conversation.refresh_from_db()
    assert conversation.assigned_helper == other_advisor
    assert conversation.messages.last().body == "You are being transferred to Bea."
    note = InternalNote.objects.get()
    assert note.body == "Transfer note: Needs the permit form"
    assert broadcasts.groups(events.NOTE_CREATED) == [events.conversation_staff_group(conversation.pk)]
    resident_events = [event for group, event in broadcasts.sent if group == events.conversation_group(conversation.pk)]
    assert "Needs the permit form" not in str(resident_events)


def test_transfer_back_to_the_queue(advisor, broadcasts, django_capture_on_commit_callbacks):
    conversation, _ = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_transfer(conversation_id=conversation.pk, by_helper=advisor)

    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_helper) == ("waiting", None)
    assert broadcasts.groups(events.CONVERSATION_QUEUED) == [events.queue_group()]
    assert "back in the queue" in conversation.messages.last().body
    assert conversation.queued_at > conversation.waiting_since, "after help a new wait begins, at the same place"


def test_only_the_helper_or_a_supervisor_may_transfer_or_note(advisor, other_advisor, supervisor):
    conversation, _ = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    with pytest.raises(ValidationError) as error:
        services.conversation_transfer(conversation_id=conversation.pk, by_helper=other_advisor)
    assert error.value.code == "not_assigned"
    with pytest.raises(ValidationError):
        services.note_create(conversation_id=conversation.pk, author=other_advisor, body="x")

    services.note_create(conversation_id=conversation.pk, author=supervisor, body="Checked", by_supervisor=True)
    services.conversation_transfer(conversation_id=conversation.pk, by_helper=supervisor, by_supervisor=True)
    conversation.refresh_from_db()
    assert conversation.status == "waiting"
    assert Message.objects.filter(conversation=conversation, body__contains="Checked").count() == 0


def test_the_sweep_ends_what_timed_out_and_marks_residents_gone_silent(settings, advisor):
    settings.CHAT_WAITING_TIMEOUT_MINUTES = 30
    now = timezone.now()
    unanswered, _ = services.conversation_start(now=now - datetime.timedelta(minutes=31))
    services.conversation_touch_visitor(conversation_id=unanswered.pk, now=now)
    silent, _ = services.conversation_start(now=now - datetime.timedelta(minutes=5))
    services.conversation_assign(conversation_id=silent.pk, helper=advisor)
    online(advisor)
    out = io.StringIO()

    call_command("assist_sweep", stdout=out)

    assert out.getvalue().splitlines() == [f"ended: {unanswered.pk}", f"resident gone silent: {silent.pk}"]
    silent.refresh_from_db()
    assert (silent.status, silent.visitor_left_at) == ("active", silent.visitor_last_seen_at)


def test_a_conversation_whose_helper_went_offline_goes_back_to_the_front_of_the_queue(
    advisor, other_advisor, broadcasts, django_capture_on_commit_callbacks
):
    """The resident is told, rather than left waiting for a reply that will not come."""
    online(advisor, closed_at=timezone.now() - datetime.timedelta(minutes=6))  # closed their console
    online(other_advisor)
    earlier, _ = services.conversation_start(now=timezone.now() - datetime.timedelta(minutes=20))
    gone, _ = services.conversation_start(now=timezone.now() - datetime.timedelta(minutes=10))
    services.conversation_assign(conversation_id=gone.pk, helper=advisor)
    services.message_create(conversation_id=gone.pk, author_kind="helper", author=advisor, body="Let me check")
    kept, _ = services.conversation_start()
    services.conversation_assign(conversation_id=kept.pk, helper=other_advisor)
    in_person, _ = services.conversation_start()  # a kiosk's "a helper comes over"
    Conversation.objects.filter(pk=in_person.pk).update(helper_in_person=True)
    services.conversation_assign(conversation_id=in_person.pk, helper=advisor)
    broadcasts.sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert assignment.queue_requeue_helper_gone() == [gone.pk]

    gone.refresh_from_db()
    assert (gone.status, gone.assigned_helper) == ("waiting", None)
    assert (
        gone.messages.last().body
        == "Alex has left the chat. You are back in the queue, ahead of those who came after you."
    )
    waiting = list(Conversation.objects.filter(status="waiting").order_by("waiting_since").values_list("pk", flat=True))
    assert waiting == [earlier.pk, gone.pk], "ahead of everyone who came after it"
    assert [Conversation.objects.get(pk=pk).status for pk in (kept.pk, in_person.pk)] == ["active", "active"]
    assert {event["type"] for _group, event in broadcasts.sent} >= {
        events.CONVERSATION_QUEUED,
        events.CONVERSATION_CHANGED,
        events.MESSAGE_CREATED,
    }
    assert assignment.queue_requeue_helper_gone() == [], "once"


@pytest.mark.parametrize("away", [5, 60, 290], ids=["a reload", "offline, logging another chat", "nearly"])
def test_a_helper_away_for_less_than_the_council_allows_keeps_their_conversations(advisor, away):
    """Past the presence grace period (30 s) a helper is offline for routing, but one who is
    on the wrap-up page logging another chat has not left this one (5 minutes by default)."""
    online(advisor, closed_at=timezone.now() - datetime.timedelta(seconds=away))
    conversation, _ = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)

    assert assignment.queue_requeue_helper_gone() == []
    conversation.refresh_from_db()
    assert conversation.assigned_helper == advisor


def test_a_helper_whose_console_went_silent_loses_their_conversations_after_the_same_time(advisor):
    """A console that stopped pinging without closing (its network, its server process)."""
    online(advisor, last_seen_at=timezone.now() - datetime.timedelta(minutes=6))
    conversation, _ = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"requeue_after_seconds": 600})
    assert assignment.queue_requeue_helper_gone() == [], "the council allows ten minutes"

    ConsoleSettings.objects.filter(pk=1).update(requeue_after_seconds=300)
    assert assignment.queue_requeue_helper_gone() == [conversation.pk]


@pytest.mark.parametrize("why", ["helper gone", "unanswered"])
def test_a_requeued_conversation_stops_its_screen_sharing(advisor, why):
    """Consent was given to the helper it leaves, not to whoever answers it next."""
    online(advisor, closed_at=timezone.now() - datetime.timedelta(minutes=6))
    conversation, _ = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor, automatically=True)
    session = services.cobrowse_request(conversation_id=conversation.pk, helper=advisor)
    services.cobrowse_respond(conversation_id=conversation.pk, session_id=session.pk, accept=True)

    if why == "helper gone":
        assert assignment.queue_requeue_helper_gone() == [conversation.pk]
    else:
        later = timezone.now() + datetime.timedelta(seconds=121)
        assert services.conversation_requeue_unanswered(answer_within_seconds=120, now=later) == [conversation.pk]

    session.refresh_from_db()
    assert session.status == "stopped"
    assert "Screen sharing stopped because you are back in the queue." in [m.body for m in conversation.messages.all()]


# Committed data: between passes the sweep closes connections a failure may have broken,
# which would roll back a test's own transaction.
@pytest.mark.django_db(transaction=True)
def test_the_repeating_sweep_survives_a_failed_pass(settings, monkeypatch, caplog):
    """A pass that fails (the database restarting, say) is logged, and the next pass runs."""
    settings.CHAT_WAITING_TIMEOUT_MINUTES = 30
    now = timezone.now()
    unanswered, _ = services.conversation_start(now=now - datetime.timedelta(minutes=31))
    services.conversation_touch_visitor(conversation_id=unanswered.pk, now=now)
    passes = []

    def end_expired():
        passes.append(len(passes) + 1)
        if len(passes) == 1:
            raise OperationalError("the database is restarting")
        return services.conversation_end_expired()

    class Stop(Exception):
        pass

    def sleep(seconds):
        assert seconds == 5
        if len(passes) == 3:
            raise Stop

    purges = 0

    def purge():
        nonlocal purges
        purges += 1
        return [], []

    monkeypatch.setattr(assist_sweep, "conversation_end_expired", end_expired)
    monkeypatch.setattr(assist_sweep, "personal_data_purge", purge)
    monkeypatch.setattr(assist_sweep.time, "sleep", sleep)
    out = io.StringIO()

    with pytest.raises(Stop):
        call_command("assist_sweep", every=5, stdout=out)

    assert passes == [1, 2, 3]
    assert purges == 1, "personal data is purged once an hour, not on every pass"
    assert "sweep failed" in caplog.text and "the database is restarting" in caplog.text
    assert out.getvalue().splitlines() == [f"ended: {unanswered.pk}"]
