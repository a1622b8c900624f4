"""Webchat rules: availability, limits, read marks, rating, call backs, timeouts, transcripts."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from agents_console.models import AssistedTransaction, ConsoleConnection
from chat import events, selectors, services
from chat.availability import chat_availability
from chat.models import (
    CallbackRequest,
    ClosureDate,
    CobrowseCodeMiss,
    CobrowseSession,
    Conversation,
    InternalNote,
    Message,
    OpeningHours,
)
from kiosk.models import KioskDevice, Service

pytestmark = pytest.mark.django_db

LONDON = timezone.get_fixed_timezone(0)
MONDAY_NOON = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=LONDON)
MONDAY_EVENING = datetime.datetime(2026, 11, 30, 19, 0, tzinfo=LONDON)


@pytest.fixture
def weekday_hours(db):
    for day in range(5):
        OpeningHours.objects.create(weekday=day, opens_at=datetime.time(9), closes_at=datetime.time(17))


def code_of(callable_, **kwargs) -> str:
    with pytest.raises(ValidationError) as error:
        callable_(**kwargs)
    return error.value.code


def test_open_inside_the_weekly_hours(weekday_hours):
    assert chat_availability(now=MONDAY_NOON).available


def test_closed_outside_the_hours_says_when_it_opens_again(weekday_hours):
    availability = chat_availability(now=MONDAY_EVENING)
    assert (availability.available, availability.reason) == (False, "closed")
    assert timezone.localtime(availability.next_open).strftime("%A %H:%M") == "Tuesday 09:00"


def test_a_closure_date_closes_an_open_day(weekday_hours):
    ClosureDate.objects.create(date=MONDAY_NOON.date(), reason="Staff training")
    availability = chat_availability(now=MONDAY_NOON)
    assert (availability.available, availability.reason) == (False, "closed")


def test_no_hours_configured_means_always_open():
    assert chat_availability(now=MONDAY_EVENING).available


def test_with_no_hours_configured_a_closure_says_it_opens_the_next_day_not_closed():
    monday = MONDAY_NOON.date()
    for days in (0, 1):  # Monday and Tuesday closed
        ClosureDate.objects.create(date=monday + datetime.timedelta(days=days), reason="Staff training")
    availability = chat_availability(now=MONDAY_NOON)
    assert (availability.available, availability.reason) == (False, "closed")
    assert timezone.localtime(availability.next_open).strftime("%A %H:%M") == "Wednesday 00:00"


def at(day: int, hour: int, minute: int = 0) -> datetime.datetime:
    """Day `day` of the week of MONDAY_NOON (0 is that Monday, 7 the next), at a time."""
    return MONDAY_NOON.replace(hour=hour, minute=minute) + datetime.timedelta(days=day)


def opening(now: datetime.datetime) -> str:
    availability = chat_availability(now=now)
    assert (availability.available, availability.reason) == (False, "closed")
    return timezone.localtime(availability.next_open).strftime("%A %H:%M")


def test_hours_can_run_to_midnight():
    OpeningHours.objects.create(weekday=0, opens_at=datetime.time(9), closes_at=datetime.time(0))
    assert chat_availability(now=at(0, 23, 59)).available
    assert opening(at(1, 0)) == "Monday 09:00"
    assert opening(at(0, 8, 59)) == "Monday 09:00"


def test_hours_can_run_overnight_into_the_next_day():
    OpeningHours.objects.create(weekday=4, opens_at=datetime.time(22), closes_at=datetime.time(2))
    assert opening(at(4, 21, 59)) == "Friday 22:00"
    assert chat_availability(now=at(4, 23)).available
    assert chat_availability(now=at(5, 1, 59)).available
    assert opening(at(5, 2)) == "Friday 22:00"


def test_midnight_to_midnight_is_open_all_day():
    OpeningHours.objects.create(weekday=0, opens_at=datetime.time(0), closes_at=datetime.time(0))
    assert chat_availability(now=at(0, 0)).available
    assert chat_availability(now=at(0, 23, 59)).available
    assert opening(at(1, 0)) == "Monday 00:00"


def test_a_night_closes_at_the_first_of_two_1_30ams_when_the_clocks_go_back():
    # 25 October 2026: British Summer Time ends at 2am BST, which is 1am GMT (01:00 UTC).
    OpeningHours.objects.create(weekday=5, opens_at=datetime.time(22), closes_at=datetime.time(1, 30))
    utc = datetime.UTC
    assert chat_availability(now=datetime.datetime(2026, 10, 25, 0, 15, tzinfo=utc)).available, "1:15am BST"
    availability = chat_availability(now=datetime.datetime(2026, 10, 25, 1, 15, tzinfo=utc))  # 1:15am GMT
    assert (availability.available, availability.reason) == (False, "closed")
    assert availability.next_open == datetime.datetime(2026, 10, 31, 22, 0, tzinfo=utc), "next Saturday, 10pm GMT"


def test_an_opening_in_the_hour_the_clocks_skip_is_said_and_kept_alike():
    # 29 March 2026: clocks go from 1am GMT to 2am BST, so 1:30am does not happen that night.
    OpeningHours.objects.create(weekday=6, opens_at=datetime.time(1, 30), closes_at=datetime.time(6))
    utc = datetime.UTC
    availability = chat_availability(now=datetime.datetime(2026, 3, 29, 0, 45, tzinfo=utc))  # 12:45am GMT
    assert not availability.available
    assert not chat_availability(now=availability.next_open - datetime.timedelta(seconds=1)).available
    assert chat_availability(now=availability.next_open).available


def test_a_closure_closes_its_whole_day_and_a_night_that_starts_on_it():
    OpeningHours.objects.create(weekday=4, opens_at=datetime.time(22), closes_at=datetime.time(2))
    saturday = ClosureDate.objects.create(date=at(5, 0).date())
    assert opening(at(5, 1)) == "Friday 22:00", "the Friday night runs into a closed Saturday"
    saturday.delete()
    ClosureDate.objects.create(date=at(4, 0).date())
    assert opening(at(5, 1)) == "Friday 22:00", "a night that starts on a closed Friday stays shut"
    assert chat_availability(now=at(5, 1)).closure == at(4, 0).date(), "and says which closure"
    assert chat_availability(now=at(4, 12)).closure == at(4, 0).date(), "as on the closed day itself"
    assert chat_availability(now=at(5, 3)).closure is None, "after that night, the weekly hours"
    assert chat_availability(now=at(11, 23)).available, "the next Friday night opens as usual"


@pytest.mark.real_availability
def test_nobody_online_makes_chat_unavailable_and_a_console_makes_it_available(advisor):
    assert chat_availability().reason == "no_helpers"
    ConsoleConnection.objects.create(channel_name="c1", helper=advisor, last_seen_at=timezone.now())
    assert chat_availability().available


@pytest.mark.real_availability
def test_a_console_silent_past_its_heartbeat_does_not_count(advisor):
    ConsoleConnection.objects.create(
        channel_name="c1", helper=advisor, last_seen_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    assert chat_availability().reason == "no_helpers"


def test_starting_while_closed_is_refused_and_creates_nothing(weekday_hours):
    assert code_of(services.conversation_start, now=MONDAY_EVENING) == "chat_unavailable"
    assert Conversation.objects.count() == 0


START_KEY = "8f14e45fceea167a5a36dedd4bea2543"


def test_a_start_sent_again_with_its_key_returns_the_same_conversation_with_a_new_token(
    settings, broadcasts, django_capture_on_commit_callbacks
):
    settings.CHAT_STARTS_PER_ADDRESS_PER_HOUR = 1
    address = services.client_address_hash("203.0.113.9")
    with django_capture_on_commit_callbacks(execute=True):
        first, first_token = services.conversation_start(visitor_name="Pat", address_hash=address, start_key=START_KEY)
        again, again_token = services.conversation_start(visitor_name="Pat", address_hash=address, start_key=START_KEY)

    assert again.pk == first.pk and again_token != first_token
    assert selectors.conversation_get_by_token(token_hash=services.token_hash(first_token)) is None
    assert selectors.conversation_get_by_token(token_hash=services.token_hash(again_token)).pk == first.pk
    assert Conversation.objects.count() == 1
    assert len(broadcasts.events(events.CONVERSATION_QUEUED)) == 1, "queued once, not twice"
    # The address's one start an hour was spent once; another key is a new start, refused.
    assert code_of(services.conversation_start, address_hash=address, start_key="x" * 32) == "too_many_conversations"


def test_a_start_key_reused_after_its_conversation_expired_opens_a_new_one(settings):
    first, _token = services.conversation_start(start_key=START_KEY)
    services.conversation_end(conversation_id=first.pk, ended_by="visitor")
    later = timezone.now() + datetime.timedelta(minutes=settings.CHAT_TOKEN_TTL_MINUTES + 1)

    second, _token = services.conversation_start(start_key=START_KEY, now=later)

    assert second.pk != first.pk
    assert Conversation.objects.get(pk=first.pk).start_key_hash == ""


def test_a_start_key_does_not_bring_back_a_chat_whose_kiosk_visit_was_wiped():
    """The key belonged to the resident who has gone; the next one must not get their chat."""
    first, _token = services.conversation_start(start_key=START_KEY)
    services.conversation_end(conversation_id=first.pk, ended_by="system", reason="kiosk_wiped")

    second, _token = services.conversation_start(start_key=START_KEY)

    assert second.pk != first.pk


@pytest.mark.parametrize(
    ("limit", "create", "refusal", "model"),
    [
        ("CHAT_STARTS_PER_ADDRESS_PER_HOUR", services.conversation_start, "too_many_conversations", Conversation),
        ("COBROWSE_CODES_PER_ADDRESS_PER_HOUR", services.cobrowse_code_issue, "too_many_codes", CobrowseSession),
    ],
)
def test_one_address_may_start_only_so_many_conversations_or_codes_an_hour(settings, limit, create, refusal, model):
    setattr(settings, limit, 2)
    address = services.client_address_hash("203.0.113.9")
    for _ in range(2):
        create(address_hash=address)

    assert code_of(create, address_hash=address) == refusal
    create(address_hash=services.client_address_hash("203.0.113.10"))
    create()  # no address to count by (a kiosk's): no limit
    create(address_hash=address, now=timezone.now() + datetime.timedelta(minutes=61))
    assert model.objects.filter(client_address_hash=address).count() == 3
    assert model.objects.count() == 5


def test_conversations_and_call_back_requests_share_one_limit(settings):
    settings.CHAT_STARTS_PER_ADDRESS_PER_HOUR = 2
    address = services.client_address_hash("203.0.113.9")
    services.conversation_start(address_hash=address)
    services.callback_request_create(name="Pat", message="Call me", phone="01632 960000", address_hash=address)

    refused = code_of(
        services.callback_request_create, name="Pat", message="Call me", phone="01632 960000", address_hash=address
    )
    assert refused == "too_many_conversations"
    assert code_of(services.conversation_start, address_hash=address) == "too_many_conversations"
    assert (Conversation.objects.count(), CallbackRequest.objects.count()) == (1, 1)


def test_an_ipv6_device_counts_as_one_address_whichever_of_its_addresses_it_uses():
    hashed = services.client_address_hash

    # Devices pick a new address in their /64 as they please (privacy addresses).
    assert hashed("2001:db8:1:2::1") == hashed("2001:db8:1:2:a1b2:c3d4:e5f6:789") != hashed("2001:db8:1:3::1")
    assert hashed("::ffff:203.0.113.9") == hashed("203.0.113.9") != hashed("203.0.113.10")
    assert hashed("2001:DB8:1:2::1") == hashed("2001:db8:1:2::1"), "however it is written"


def test_an_enrolled_kiosk_is_counted_by_no_address():
    assert services.limited_address_hash("203.0.113.9", None) == services.client_address_hash("203.0.113.9")
    assert services.limited_address_hash("203.0.113.9", KioskDevice()) == ""


def test_the_address_is_stored_only_as_a_keyed_hash():
    hashed = services.client_address_hash("203.0.113.9")
    assert "203.0.113.9" not in hashed
    assert len(hashed) == 64
    assert hashed == services.client_address_hash("203.0.113.9")
    assert services.client_address_hash(None) == ""


def test_messages_per_minute_are_limited_per_conversation_and_side(settings, advisor):
    settings.CHAT_MESSAGES_PER_MINUTE = 3
    conversation, _token = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    for index in range(3):
        services.message_create(conversation_id=conversation.pk, author_kind="visitor", body=f"m{index}")

    assert (
        code_of(services.message_create, conversation_id=conversation.pk, author_kind="visitor", body="one more")
        == "rate_limited"
    )
    services.message_create(conversation_id=conversation.pk, author_kind="helper", author=advisor, body="still fine")
    assert Message.objects.filter(author_kind="visitor").count() == 3


def test_a_refused_message_takes_no_number_and_a_resend_over_the_limit_gets_the_stored_one(settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 2
    conversation, _token = services.conversation_start()
    first, _ = services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="a", client_id="a")
    services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="b", client_id="b")

    assert code_of(services.message_create, conversation_id=conversation.pk, author_kind="visitor", body="c") == (
        "rate_limited"
    )
    resent, created = services.message_create(
        conversation_id=conversation.pk, author_kind="visitor", body="a", client_id="a"
    )
    assert (resent.pk, created) == (first.pk, False)
    conversation.refresh_from_db()
    assert conversation.last_seq == 2


def test_only_the_last_minute_counts_toward_the_message_limit(settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 2
    conversation, _token = services.conversation_start()
    for body in ("a", "b"):
        services.message_create(conversation_id=conversation.pk, author_kind="visitor", body=body)
    Message.objects.filter(conversation=conversation).update(created_at=timezone.now() - datetime.timedelta(seconds=61))

    message, created = services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="c")

    assert (message.seq, created) == (3, True)


def test_read_marks_only_move_forward_and_tell_the_conversation(
    advisor, broadcasts, django_capture_on_commit_callbacks
):
    conversation, _token = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    for index in range(2):
        services.message_create(conversation_id=conversation.pk, author_kind="visitor", body=f"m{index}")
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_mark_read(conversation_id=conversation.pk, reader="helper", seq=2, helper=advisor)
        services.conversation_mark_read(conversation_id=conversation.pk, reader="helper", seq=1, helper=advisor)
        services.conversation_mark_read(conversation_id=conversation.pk, reader="helper", seq=99, helper=advisor)

    conversation.refresh_from_db()
    assert conversation.helper_read_seq == 3
    assert [event["read"]["seq"] for event in broadcasts.events(events.READ_CHANGED)] == [2, 3]
    assert broadcasts.groups(events.READ_CHANGED) == [events.conversation_group(conversation.pk)] * 2


def test_only_the_helper_holding_a_conversation_marks_it_read(advisor, other_advisor, supervisor):
    conversation, _token = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="Hello")

    for other in (other_advisor, supervisor, None):
        refusal = code_of(
            services.conversation_mark_read,
            conversation_id=conversation.pk,
            reader="helper",
            seq=2,
            helper=other,
        )
        assert refusal == "not_assigned"
    conversation.refresh_from_db()
    assert conversation.helper_read_seq == 0


def test_rating_only_after_the_end_and_only_once():
    conversation, _token = services.conversation_start()
    assert code_of(services.conversation_rate, conversation_id=conversation.pk, rating=5) == "conversation_not_ended"
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")

    services.conversation_rate(conversation_id=conversation.pk, rating=4, comment="Patient and clear")

    assert code_of(services.conversation_rate, conversation_id=conversation.pk, rating=1) == "already_rated"
    conversation.refresh_from_db()
    assert (conversation.rating, conversation.rating_comment) == (4, "Patient and clear")


def test_a_callback_needs_a_way_to_reply_and_goes_to_the_consoles_only(
    broadcasts, django_capture_on_commit_callbacks, service
):
    assert code_of(services.callback_request_create, name="Pat", message="Call me") == "contact_required"
    with django_capture_on_commit_callbacks(execute=True):
        callback = services.callback_request_create(
            name="Pat", message="About my bin", phone="01632 960001", service=service
        )

    assert callback.status == CallbackRequest.Status.OPEN
    assert broadcasts.groups(events.CALLBACK_REQUESTED) == [events.queue_group()]
    assert broadcasts.events(events.CALLBACK_REQUESTED)[0]["callback"]["service"]["name"] == service.name


def test_one_helper_takes_a_call_back_on_and_only_they_can_mark_it_done(
    advisor, other_advisor, broadcasts, django_capture_on_commit_callbacks
):
    callback = services.callback_request_create(name="Pat", message="Call me", phone="01632 960001")

    with django_capture_on_commit_callbacks(execute=True):
        services.callback_claim(callback_id=callback.pk, helper=advisor)
    changed = broadcasts.events(events.CALLBACK_CHANGED)[-1]["callback"]
    assert (changed["status"], changed["claimed_by_id"], changed["claimed_by_name"]) == ("claimed", advisor.pk, "Alex")
    assert broadcasts.groups(events.CALLBACK_CHANGED) == [events.queue_group()]
    assert [c.pk for c in selectors.callback_list_pending()] == [callback.pk], "still listed, as taken on"

    assert code_of(services.callback_claim, callback_id=callback.pk, helper=other_advisor) == "callback_taken"
    assert code_of(services.callback_complete, callback_id=callback.pk, helper=other_advisor) == "callback_taken"
    services.callback_claim(callback_id=callback.pk, helper=advisor)  # again, by the same helper: no change

    services.callback_complete(callback_id=callback.pk, helper=advisor)
    callback.refresh_from_db()
    assert (callback.status, callback.claimed_by, callback.done_at is not None) == ("done", advisor, True)
    assert list(selectors.callback_list_pending()) == []
    assert code_of(services.callback_claim, callback_id=callback.pk, helper=advisor) == "callback_taken"
    assert code_of(services.callback_complete, callback_id=callback.pk + 1, helper=advisor) == "callback_not_found"


def test_an_open_call_back_can_be_marked_done_at_once(advisor):
    callback = services.callback_request_create(name="Pat", message="Call me", email="pat@example.com")
    services.callback_complete(callback_id=callback.pk, helper=advisor)
    callback.refresh_from_db()
    assert (callback.status, callback.claimed_by) == ("done", advisor)


def test_unanswered_and_abandoned_conversations_end_with_a_reason(settings, advisor, broadcasts):
    settings.CHAT_WAITING_TIMEOUT_MINUTES = 30
    settings.CHAT_ABANDONED_TIMEOUT_MINUTES = 10
    now = timezone.now()
    unanswered, _ = services.conversation_start(now=now - datetime.timedelta(minutes=31))
    services.conversation_touch_visitor(conversation_id=unanswered.pk, now=now)
    abandoned, _ = services.conversation_start(now=now - datetime.timedelta(minutes=20))
    services.conversation_assign(conversation_id=abandoned.pk, helper=advisor)
    services.conversation_touch_visitor(conversation_id=abandoned.pk, now=now - datetime.timedelta(minutes=11))
    fresh, _ = services.conversation_start(now=now - datetime.timedelta(minutes=5))

    ended = services.conversation_end_expired(now=now)

    assert sorted(ended) == sorted([unanswered.pk, abandoned.pk])
    unanswered.refresh_from_db()
    abandoned.refresh_from_db()
    fresh.refresh_from_db()
    assert (unanswered.status, unanswered.ended_by, unanswered.ended_reason) == ("ended", "system", "unanswered")
    assert (abandoned.status, abandoned.ended_reason) == ("ended", "abandoned")
    # The resident's page tells the two apart.
    assert events.conversation_public_payload(abandoned)["ended_reason"] == "abandoned"
    assert fresh.status == "waiting"
    assert "Nobody was free to answer" in unanswered.messages.last().body
    assert "the resident left" in abandoned.messages.last().body
    assert services.conversation_end_expired(now=now) == []


@pytest.mark.parametrize("reason", ["unanswered", "abandoned"])
def test_a_conversation_that_stops_being_expired_after_it_is_listed_is_not_ended(
    settings, advisor, monkeypatch, reason
):
    settings.CHAT_WAITING_TIMEOUT_MINUTES = 30
    settings.CHAT_ABANDONED_TIMEOUT_MINUTES = 10
    now = timezone.now()
    conversation, _ = services.conversation_start(now=now - datetime.timedelta(minutes=31))
    if reason == "unanswered":
        services.conversation_touch_visitor(conversation_id=conversation.pk, now=now)
    else:
        services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    listed = selectors.conversation_list_expired

    def listed_then_changed(listed_reason, **kwargs):
        ids = listed(listed_reason, **kwargs)
        # Between the sweep's list and its end: a helper accepts, or the resident comes back.
        if listed_reason == reason == "unanswered":
            services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
        elif listed_reason == reason == "abandoned":
            services.conversation_touch_visitor(conversation_id=conversation.pk, now=now)
        if listed_reason == reason:
            assert ids == [conversation.pk], "listed before it changed"
        return ids

    monkeypatch.setattr(selectors, "conversation_list_expired", listed_then_changed)

    assert services.conversation_end_expired(now=now) == []
    conversation.refresh_from_db()
    assert (conversation.status, conversation.ended_reason) == ("active", "")
    assert not conversation.messages.filter(author_kind="system", body__contains="closed").exists()


def test_an_unknown_expiry_reason_is_refused_not_read_as_abandoned():
    with pytest.raises(ValueError, match="no such expiry"):
        selectors.conversation_list_expired("late", before=timezone.now())


def helped_then_put_back(advisor, *, started: datetime.datetime) -> Conversation:
    """A conversation started at `started`, taken by `advisor` and put back in the queue now."""
    conversation, _ = services.conversation_start(now=started)
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    services.conversation_transfer(conversation_id=conversation.pk, by_helper=advisor)
    return conversation


def test_a_conversation_put_back_in_the_queue_after_help_waits_its_full_time_again(settings, advisor):
    settings.CHAT_WAITING_TIMEOUT_MINUTES = 30
    now = timezone.now()
    conversation = helped_then_put_back(advisor, started=now - datetime.timedelta(minutes=26))

    # Helped for most of those 26 minutes: not "nobody answered in time" 5 minutes later.
    for minutes, expected in ((5, []), (31, [conversation.pk])):
        later = now + datetime.timedelta(minutes=minutes)
        services.conversation_touch_visitor(conversation_id=conversation.pk, now=later)  # still there
        assert services.conversation_end_expired(now=later) == expected
    assert "Nobody was free to answer" in Conversation.objects.get(pk=conversation.pk).messages.last().body


def test_the_wait_estimate_places_each_wait_behind_only_those_still_waiting_when_it_began(advisor, settings):
    now = timezone.now()
    start = now - datetime.timedelta(minutes=20)

    def at(minutes):
        return start + datetime.timedelta(minutes=minutes)

    def conversation(joined, **fields):
        created, _ = services.conversation_start(now=joined)
        Conversation.objects.filter(pk=created.pk).update(**fields)

    # Taken before the others joined, and gone before the last joined: neither is ahead of her.
    conversation(at(0), status=Conversation.Status.ACTIVE, assigned_helper=advisor, assigned_at=at(1))
    conversation(at(0.5), status=Conversation.Status.ENDED, ended_at=at(1.5))
    # Waited 4 minutes behind the one who then gave up: 2 minutes a place.
    conversation(at(1), status=Conversation.Status.ACTIVE, assigned_helper=advisor, assigned_at=at(5))
    # Waited 6 minutes behind only that one: 3 minutes a place.
    conversation(at(2), status=Conversation.Status.ACTIVE, assigned_helper=advisor, assigned_at=at(8))

    # One minute a place, then two, then three.
    assert 119 <= selectors.queue_seconds_per_place(now=now) <= 121


def test_the_wait_estimate_leaves_out_chats_routed_to_a_free_advisor_as_they_started(advisor, settings):
    now = timezone.now()

    def conversation(joined, waited, **fields):
        created, _ = services.conversation_start(now=joined)
        Conversation.objects.filter(pk=created.pk).update(
            status=Conversation.Status.ACTIVE, assigned_helper=advisor, assigned_at=joined + waited, **fields
        )

    # Three residents waited five minutes each, with nobody ahead of them.
    for minutes_ago in (90, 80, 70):
        conversation(now - datetime.timedelta(minutes=minutes_ago), datetime.timedelta(minutes=5))
    # Forty more were given to a free advisor the moment they started: nobody waits then, so
    # those say nothing of how long a place takes when someone does.
    for number in range(40):
        joined = now - datetime.timedelta(minutes=60, seconds=-number)
        conversation(joined, datetime.timedelta(milliseconds=40), assigned_automatically=True)

    assert 299 <= selectors.queue_seconds_per_place(now=now) <= 301


def test_the_wait_estimate_counts_a_wait_from_when_it_began_not_the_help_before_it(advisor, settings):
    settings.CHAT_DEFAULT_WAIT_MINUTES = 3
    now = timezone.now()
    conversation = helped_then_put_back(advisor, started=now - datetime.timedelta(minutes=25))
    # Helped for 23 minutes, put back 2 minutes ago, taken again a minute later, from the head.
    Conversation.objects.filter(pk=conversation.pk).update(
        queued_at=now - datetime.timedelta(minutes=2),
        status=Conversation.Status.ACTIVE,
        assigned_helper=advisor,
        assigned_at=now - datetime.timedelta(minutes=1),
    )

    assert 59 <= selectors.queue_seconds_per_place(now=now) <= 61


def presence_changes(broadcasts) -> list[dict]:
    """Each presence change once (each is sent to two groups: the staff and the resident's
    other sockets, which the test that pins the groups checks)."""
    return broadcasts.events(events.VISITOR_PRESENCE_CHANGED)[::2]


def test_a_resident_leaving_and_coming_back_is_told_to_its_staff_and_its_other_sockets(
    broadcasts, django_capture_on_commit_callbacks
):
    now = timezone.now()
    conversation, _ = services.conversation_start(now=now)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_touch_visitor(conversation_id=conversation.pk, now=now)
    assert broadcasts.events(events.VISITOR_PRESENCE_CHANGED) == [], "there all along: nothing to tell"

    left = now + datetime.timedelta(seconds=5)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_visitor_left(conversation_id=conversation.pk, channel_name="closing", now=left)
    back = left + datetime.timedelta(seconds=5)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_touch_visitor(conversation_id=conversation.pk, now=back)
        services.conversation_touch_visitor(conversation_id=conversation.pk, now=back)

    groups = [events.conversation_staff_group(conversation.pk), events.cobrowse_resident_group(conversation.pk)]
    assert broadcasts.groups(events.VISITOR_PRESENCE_CHANGED) == groups * 2, "once each way"
    gone, returned = presence_changes(broadcasts)
    assert gone == {
        "type": events.VISITOR_PRESENCE_CHANGED,
        "conversation_id": conversation.pk,
        "connected": False,
        "at": left.isoformat(),
        "channel_name": "closing",
    }
    assert (returned["connected"], returned["at"], returned["channel_name"]) == (True, back.isoformat(), None)
    conversation.refresh_from_db()
    assert (conversation.visitor_left_at, conversation.visitor_last_seen_at) == (None, back)


def test_an_answer_to_another_sockets_leaving_is_announced_even_if_nothing_changed(
    broadcasts, django_capture_on_commit_callbacks
):
    # This socket's own "here" may have reached the staff before the other's "left": the
    # answer must follow, or the console would show the resident gone for good.
    now = timezone.now()
    conversation, _ = services.conversation_start(now=now)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_touch_visitor(conversation_id=conversation.pk, now=now, announce=True)

    assert [event["connected"] for event in presence_changes(broadcasts)] == [True]


def test_a_resident_heard_from_after_a_long_silence_is_announced_back_and_the_sweep_marks_the_silent(
    broadcasts, django_capture_on_commit_callbacks
):
    now = timezone.now()
    conversation, _ = services.conversation_start(now=now)
    silent_until = now + events.VISITOR_SILENT_AFTER + datetime.timedelta(seconds=1)

    # Their page stopped pinging without closing: the sweep marks them gone from when last seen.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.conversation_mark_silent_visitors_gone(now=silent_until) == [conversation.pk]
        assert services.conversation_mark_silent_visitors_gone(now=silent_until) == [], "once"
    conversation.refresh_from_db()
    assert conversation.visitor_left_at == now
    # A ping after that (a throttled background tab, a socket on a restarted server): back.
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_touch_visitor(conversation_id=conversation.pk, now=silent_until)
    presence = presence_changes(broadcasts)
    assert [(event["connected"], event["at"]) for event in presence] == [
        (False, now.isoformat()),
        (True, silent_until.isoformat()),
    ]
    conversation.refresh_from_db()
    assert events.visitor_connected(conversation, now=silent_until)


def test_a_silence_unmarked_by_the_sweep_is_still_announced_when_it_ends(
    broadcasts, django_capture_on_commit_callbacks
):
    # The console was given "not connected" by a payload built during the silence.
    now = timezone.now()
    conversation, _ = services.conversation_start(now=now)
    later = now + events.VISITOR_SILENT_AFTER + datetime.timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_touch_visitor(conversation_id=conversation.pk, now=later)
    assert [event["connected"] for event in presence_changes(broadcasts)] == [True]


def test_an_ended_conversation_is_not_touched_or_announced(broadcasts, django_capture_on_commit_callbacks):
    now = timezone.now()
    conversation, _ = services.conversation_start(now=now)
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_touch_visitor(conversation_id=conversation.pk, now=now, announce=True)
        services.conversation_visitor_left(conversation_id=conversation.pk, channel_name="c", now=now)
        assert services.conversation_mark_silent_visitors_gone(now=now + datetime.timedelta(hours=1)) == []
    assert broadcasts.events(events.VISITOR_PRESENCE_CHANGED) == []


def test_the_console_counts_a_resident_silent_too_long_as_gone():
    now = timezone.now()
    conversation, _ = services.conversation_start(now=now)
    conversation.refresh_from_db()

    assert events.visitor_connected(conversation, now=now + events.VISITOR_SILENT_AFTER)
    assert not events.visitor_connected(
        conversation, now=now + events.VISITOR_SILENT_AFTER + datetime.timedelta(seconds=1)
    )
    assert events.conversation_staff_payload(conversation)["visitor_left_at"] is None


def test_a_token_stops_working_a_while_after_the_end(settings):
    settings.CHAT_TOKEN_TTL_MINUTES = 60
    conversation, token = services.conversation_start()
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
    hashed = services.token_hash(token)

    assert selectors.conversation_get_by_token(token_hash=hashed) is not None
    later = timezone.now() + datetime.timedelta(minutes=61)
    assert selectors.conversation_get_by_token(token_hash=hashed, now=later) is None


def test_wait_per_place_comes_from_recent_waits_and_the_places_they_were_waited_from(advisor, settings):
    settings.CHAT_DEFAULT_WAIT_MINUTES = 3
    assert selectors.queue_seconds_per_place() == 180
    now = timezone.now()
    # Three residents join at once, 6 minutes ago; one is taken every 2 minutes. Each place
    # took 2 minutes, though they waited 2, 4 and 6 (a mean of 4 would say 4 a place).
    joined = now - datetime.timedelta(minutes=6)
    conversations = [services.conversation_start(now=joined)[0] for _ in range(3)]
    for number, conversation in enumerate(conversations, start=1):
        Conversation.objects.filter(pk=conversation.pk).update(
            status=Conversation.Status.ACTIVE,
            assigned_helper=advisor,
            assigned_at=joined + datetime.timedelta(minutes=2 * number, seconds=number),
        )
    assert 119 <= selectors.queue_seconds_per_place(now=now) <= 121
    # A chat a helper started from a screen-sharing code never queued: it changes nothing.
    services.cobrowse_code_join(code=services.cobrowse_code_issue()[1], helper=advisor)
    assert 119 <= selectors.queue_seconds_per_place(now=now) <= 121


def test_a_helper_who_types_too_many_wrong_codes_is_refused_even_the_right_one(settings, advisor, other_advisor):
    settings.COBROWSE_CODE_MISSES_PER_HELPER_PER_HOUR = 3
    now = timezone.now()
    session, code = services.cobrowse_code_issue()
    wrong = "000000" if code != "000000" else "111111"
    # An hour ago and more: no longer counted.
    stale = [now - datetime.timedelta(minutes=61)] * 5
    CobrowseCodeMiss.objects.bulk_create(CobrowseCodeMiss(helper=advisor, created_at=at) for at in stale)
    for typed in (wrong, "12 34", "not a code"):
        assert code_of(services.cobrowse_code_join, code=typed, helper=advisor, now=now) == "cobrowse_code_invalid"

    refusal = code_of(services.cobrowse_code_join, code=code, helper=advisor, now=now)

    assert refusal == "too_many_code_misses"
    assert CobrowseSession.objects.get(pk=session.pk).status == CobrowseSession.Status.CODE_ISSUED
    assert Conversation.objects.count() == 0
    assert CobrowseCodeMiss.objects.filter(helper=advisor).count() == 8, "a refusal is not a miss"
    # Another helper is not held back, and an hour on the first may try again.
    assert services.cobrowse_code_join(code=code, helper=other_advisor, now=now).helper_id == other_advisor.pk
    later = now + datetime.timedelta(hours=1)
    assert code_of(services.cobrowse_code_join, code=wrong, helper=advisor, now=later) == "cobrowse_code_invalid"


def test_personal_data_is_deleted_once_the_retention_period_is_over(settings, advisor):
    settings.CHAT_RETENTION_DAYS = 30
    now = timezone.now()
    long_ago = now - datetime.timedelta(days=31)

    def ended_chat(ended_at, name):
        conversation, _ = services.conversation_start(visitor_name=name, visitor_email=f"{name}@example.com")
        services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
        services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="My address is…")
        services.note_create(conversation_id=conversation.pk, author=advisor, body="Lives alone")
        services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
        Conversation.objects.filter(pk=conversation.pk).update(ended_at=ended_at, rating=4, rating_comment="Thanks Pat")
        return conversation

    old, recent = ended_chat(long_ago, "pat"), ended_chat(now - datetime.timedelta(days=29), "kim")
    still_open, _ = services.conversation_start(visitor_name="Lee")
    Conversation.objects.filter(pk=still_open.pk).update(created_at=long_ago)
    logged = AssistedTransaction.objects.create(
        helper=advisor,
        conversation=old,
        channel="web",
        outcome="done_with_guidance",
        typed_by="both",
        can_do_alone_next_time="yes",
        minutes_spent=12,
    )
    done, done_in_admin, waiting = (
        services.callback_request_create(name=name, phone="01632 960001", message="Call me")
        for name in ("Pat", "Sam", "Kim")
    )
    CallbackRequest.objects.filter(pk=done.pk).update(
        status="done", done_at=long_ago, earlier_messages=["My address is 1 High Street"]
    )
    # The admin sets the status alone: its age counts from when it was left.
    CallbackRequest.objects.filter(pk=done_in_admin.pk).update(status="done", created_at=long_ago)
    CallbackRequest.objects.filter(pk=waiting.pk).update(created_at=long_ago)
    code_session, _code = services.cobrowse_code_issue(address_hash="a" * 64)
    CobrowseSession.objects.filter(pk=code_session.pk).update(created_at=long_ago)

    purged_conversations, purged_callbacks = services.personal_data_purge(now=now)

    assert (purged_conversations, sorted(purged_callbacks)) == ([old.pk], sorted([done.pk, done_in_admin.pk]))

    old.refresh_from_db()
    assert (old.visitor_name, old.visitor_email, old.rating_comment, old.purged_at) == ("", "", "", now)
    assert not Message.objects.filter(conversation=old).exists()
    assert not InternalNote.objects.filter(conversation=old).exists()
    # What management information counts stays.
    assert (old.rating, old.channel, old.assigned_helper_id, old.ended_by) == (4, "web", advisor.pk, "visitor")
    assert AssistedTransaction.objects.get(pk=logged.pk).conversation_id == old.pk
    recent.refresh_from_db()
    assert recent.visitor_name == "kim" and Message.objects.filter(conversation=recent).exists()
    assert Conversation.objects.get(pk=still_open.pk).visitor_name == "Lee", "not ended: still in use"
    done.refresh_from_db()
    assert (done.name, done.phone, done.message, done.earlier_messages, done.status) == ("", "", "", [], "done")
    assert CallbackRequest.objects.get(pk=waiting.pk).name == "Kim", "not done: the resident still waits"
    assert CobrowseSession.objects.get(pk=code_session.pk).client_address_hash == ""
    assert services.personal_data_purge(now=now) == ([], [])


def test_a_message_left_instead_of_waiting_does_not_count_against_the_address(settings):
    settings.CHAT_STARTS_PER_ADDRESS_PER_HOUR = 1
    address = services.client_address_hash("203.0.113.9")
    conversation, _ = services.conversation_start(address_hash=address)

    services.callback_request_create(
        name="Pat", phone="01632 960001", message="Call me", address_hash=address, instead_of=conversation.pk
    )

    assert Conversation.objects.get(pk=conversation.pk).ended_reason == "left_message"
    again = code_of(
        services.callback_request_create, name="Pat", phone="01632 960001", message="Again", address_hash=address
    )
    assert again == "too_many_conversations", "any other message still counts"


def test_a_message_left_again_with_its_key_is_kept_once_and_told_once(
    settings, broadcasts, django_capture_on_commit_callbacks
):
    settings.CHAT_STARTS_PER_ADDRESS_PER_HOUR = 1
    address = services.client_address_hash("203.0.113.9")
    conversation, _ = services.conversation_start()
    left = {
        "name": "Pat",
        "phone": "01632 960001",
        "message": "Call me",
        "address_hash": address,
        "client_id": "k" * 32,
    }

    with django_capture_on_commit_callbacks(execute=True):
        first = services.callback_request_create(instead_of=conversation.pk, **left)
    with django_capture_on_commit_callbacks(execute=True):
        # Its answer lost, sent again: from the chat it ended, or from a page with no chat,
        # and the address at its limit.
        again = services.callback_request_create(instead_of=conversation.pk, **left)
        elsewhere = services.callback_request_create(**left)

    assert again.pk == elsewhere.pk == first.pk
    assert CallbackRequest.objects.count() == 1
    assert len(broadcasts.events(events.CALLBACK_REQUESTED)) == 1
    assert Message.objects.filter(conversation=conversation, body__contains="left a message").count() == 1
    another = code_of(services.callback_request_create, **{**left, "client_id": "j" * 32})
    assert another == "too_many_conversations", "another key is another message"


def test_no_rating_for_a_chat_no_helper_had(advisor):
    unanswered, _token = services.conversation_start()
    services.conversation_end(conversation_id=unanswered.pk, ended_by="system", reason="unanswered")
    left, _token = services.conversation_start()
    services.callback_request_create(name="Pat", message="Call me", phone="01632 960001", instead_of=left.pk)
    # Answered, then closed by the system (the resident went away): theirs to rate.
    away, _token = services.conversation_start()
    services.conversation_assign(conversation_id=away.pk, helper=advisor)
    services.conversation_end(conversation_id=away.pk, ended_by="system", reason="abandoned")

    for conversation in (unanswered, left):
        assert code_of(services.conversation_rate, conversation_id=conversation.pk, rating=1) == "nothing_to_rate"
        assert Conversation.objects.get(pk=conversation.pk).rating is None
    services.conversation_rate(conversation_id=away.pk, rating=5)
    assert Conversation.objects.get(pk=away.pk).rating == 5


def test_a_supervisor_takes_over_a_call_back_and_one_whose_helper_is_gone_is_open(
    advisor, other_advisor, supervisor, make_user, broadcasts, django_capture_on_commit_callbacks
):
    callback = services.callback_request_create(name="Pat", message="Call me", phone="01632 960001")
    services.callback_claim(callback_id=callback.pk, helper=advisor)

    assert code_of(services.callback_claim, callback_id=callback.pk, helper=supervisor) == "callback_taken"
    with django_capture_on_commit_callbacks(execute=True):
        services.callback_claim(callback_id=callback.pk, helper=supervisor, by_supervisor=True)
    changed = broadcasts.events(events.CALLBACK_CHANGED)[-1]["callback"]
    assert (changed["status"], changed["claimed_by_id"]) == ("claimed", supervisor.pk)
    assert code_of(services.callback_complete, callback_id=callback.pk, helper=advisor) == "callback_taken"

    # Taken on by a helper whose account is then deleted: anyone may take it on.
    leaver = make_user("leaver")
    orphaned = services.callback_request_create(name="Rita", message="Call me", phone="01632 960002")
    services.callback_claim(callback_id=orphaned.pk, helper=leaver)
    leaver.delete()
    assert CallbackRequest.objects.get(pk=orphaned.pk).claimer_left
    services.callback_claim(callback_id=orphaned.pk, helper=other_advisor)
    assert CallbackRequest.objects.get(pk=orphaned.pk).claimed_by == other_advisor

    # So is one whose helper's account was deactivated (kept for the record) instead.
    deactivated = make_user("deactivated")
    kept_on = services.callback_request_create(name="Lee", message="Call me", phone="01632 960004")
    services.callback_claim(callback_id=kept_on.pk, helper=deactivated)
    assert code_of(services.callback_claim, callback_id=kept_on.pk, helper=other_advisor) == "callback_taken"
    deactivated.is_active = False
    deactivated.save()
    assert events.callback_payload(CallbackRequest.objects.get(pk=kept_on.pk))["claimer_left"] is True
    services.callback_complete(callback_id=kept_on.pk, helper=other_advisor)
    assert CallbackRequest.objects.get(pk=kept_on.pk).claimed_by == other_advisor

    other = services.callback_request_create(name="Sue", message="Call me", phone="01632 960003")
    services.callback_claim(callback_id=other.pk, helper=advisor)
    services.callback_complete(callback_id=other.pk, helper=supervisor, by_supervisor=True)
    assert CallbackRequest.objects.get(pk=other.pk).status == "done"
    assert code_of(services.callback_claim, callback_id=other.pk, helper=supervisor, by_supervisor=True) == (
        "callback_taken"
    )


def test_a_message_left_instead_of_a_chat_is_filed_under_the_chats_service(service):
    conversation, _token = services.conversation_start(service=service)
    other_service = Service.objects.create(
        name="Pay council tax", slug="council-tax", category=service.category, url="/"
    )

    callback = services.callback_request_create(
        name="Pat", message="Call me", phone="01632 960001", service=other_service, instead_of=conversation.pk
    )

    assert callback.service == service
