"""Simultaneous writes on PostgreSQL's locks: of two helpers pressing Accept exactly one
wins; messages sent at once from many sockets are numbered without gaps or repeats, the
same message resent on two sockets at once is stored once, so is one start (its key) and one
message left for a call back (its key), and the per-minute and per-address limits hold for
requests made at the same moment."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from agents_console import assignment
from agents_console.models import ConsoleConnection, ConsoleSettings, HelperProfile
from chat import services
from chat.models import CallbackRequest, CobrowseCodeMiss, CobrowseSession, Conversation, Message

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def together(calls) -> list:
    """Run every call at the same moment, each in its own thread on its own connection;
    return each one's result, or the code of the ValidationError it raised."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except ValidationError as error:
            results[index] = error.code
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def accept_together(conversation_id: int, helpers) -> dict[int, str]:
    """Every helper calls conversation_assign at once."""

    def accept(helper):
        services.conversation_assign(conversation_id=conversation_id, helper=helper)
        return "won"

    results = together([lambda helper=helper: accept(helper) for helper in helpers])
    return {helper.pk: result for helper, result in zip(helpers, results, strict=True)}


def test_simultaneous_accepts_resolve_to_one_winner(postgres, advisor, other_advisor):
    for _round in range(10):
        conversation, _token = services.conversation_start()

        results = accept_together(conversation.pk, [advisor, other_advisor])

        assert sorted(results.values()) == ["conversation_gone", "won"]
        winner = next(pk for pk, result in results.items() if result == "won")
        conversation = Conversation.objects.get(pk=conversation.pk)
        assert conversation.assigned_helper_id == winner
        assert conversation.status == "active"
        assert conversation.messages.filter(author_kind="system").count() == 1


def test_messages_sent_at_once_are_numbered_without_gaps_or_repeats(postgres, advisor):
    conversation, _token = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)

    def send(index):
        kind = "visitor" if index % 2 else "helper"
        message, created = services.message_create(
            conversation_id=conversation.pk,
            author_kind=kind,
            author=advisor if kind == "helper" else None,
            body=f"at once {index}",
            client_id=f"c-{index}",
        )
        return message.seq, created

    results = together([lambda index=index: send(index) for index in range(12)])

    # Seq 1 is the "joined" system message.
    assert sorted(seq for seq, _created in results) == list(range(2, 14))
    assert all(created for _seq, created in results)
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 13
    assert list(Message.objects.filter(conversation=conversation).values_list("seq", flat=True)) == list(range(1, 14))


def test_one_message_resent_on_several_sockets_at_once_is_stored_once(postgres):
    conversation, _token = services.conversation_start()

    def resend():
        message, created = services.message_create(
            conversation_id=conversation.pk, author_kind="visitor", body="Hello", client_id="same-1"
        )
        return message.pk, message.seq, created

    results = together([resend] * 6)

    assert len({(pk, seq) for pk, seq, _created in results}) == 1
    assert sorted(created for _pk, _seq, created in results) == [False] * 5 + [True]
    assert Message.objects.filter(conversation=conversation).count() == 1
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 1


def test_the_per_minute_limit_holds_for_messages_sent_at_once(postgres, settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 3
    conversation, _token = services.conversation_start()

    def send(index):
        message, _created = services.message_create(
            conversation_id=conversation.pk, author_kind="visitor", body=f"burst {index}", client_id=f"b-{index}"
        )
        return message.seq

    results = together([lambda index=index: send(index) for index in range(8)])

    assert sorted(result for result in results if isinstance(result, int)) == [1, 2, 3]
    assert results.count("rate_limited") == 5
    assert Message.objects.filter(conversation=conversation).count() == 3
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 3


def _start_or_call_back(index: int, address: str) -> int:
    if index % 2:
        return services.callback_request_create(
            name="Pat", message="Call me", phone="01632 960000", address_hash=address
        ).pk
    conversation, _token = services.conversation_start(address_hash=address)
    return conversation.pk


def _issue_code(_index: int, address: str) -> int:
    session, _code = services.cobrowse_code_issue(address_hash=address)
    return session.pk


@pytest.mark.parametrize(
    ("limit", "create", "refusal", "models"),
    [
        (
            "CHAT_STARTS_PER_ADDRESS_PER_HOUR",
            _start_or_call_back,
            "too_many_conversations",
            [Conversation, CallbackRequest],
        ),
        ("COBROWSE_CODES_PER_ADDRESS_PER_HOUR", _issue_code, "too_many_codes", [CobrowseSession]),
    ],
)
def test_the_per_address_limit_holds_for_requests_made_at_once(postgres, settings, limit, create, refusal, models):
    setattr(settings, limit, 3)
    address = services.client_address_hash("203.0.113.9")

    results = together([lambda index=index: create(index, address) for index in range(8)])

    assert len([result for result in results if isinstance(result, int)]) == 3
    assert results.count(refusal) == 5
    assert sum(model.objects.filter(client_address_hash=address).count() for model in models) == 3


START_KEY = "c4ca4238a0b923820dcc509a6f75849b"


@pytest.mark.parametrize(
    ("address", "per_hour"),
    [
        # No address: the later ones meet the first's row in the start key's unique index.
        ("", 10),
        # They take turns on the address's lock, then meet the first's row in the index.
        ("203.0.113.9", 10),
        # They take turns on the address's lock, and the first's start spent the address's one.
        ("203.0.113.9", 1),
    ],
)
def test_one_start_sent_on_several_sockets_at_once_opens_one_conversation(postgres, settings, address, per_hour):
    settings.CHAT_STARTS_PER_ADDRESS_PER_HOUR = per_hour
    address_hash = services.client_address_hash(address) if address else ""

    def start():
        conversation, token = services.conversation_start(address_hash=address_hash, start_key=START_KEY)
        return conversation.pk, token

    results = together([start] * 4)

    assert all(isinstance(result, tuple) for result in results), results
    (conversation,) = Conversation.objects.all()
    assert {pk for pk, _token in results} == {conversation.pk}
    # Each answer rotated the token; the last one written is the one that opens it.
    opening = [token for _pk, token in results if services.token_hash(token) == conversation.token_hash]
    assert len(opening) == 1
    assert conversation.messages.count() == 0


def test_wrong_codes_typed_at_once_on_several_sockets_are_all_counted(postgres, settings, advisor):
    settings.COBROWSE_CODE_MISSES_PER_HELPER_PER_HOUR = 3
    _session, code = services.cobrowse_code_issue()
    wrong = "000000" if code != "000000" else "111111"

    results = together([lambda: services.cobrowse_code_join(code=wrong, helper=advisor)] * 8)

    assert sorted(results) == ["cobrowse_code_invalid"] * 3 + ["too_many_code_misses"] * 5
    assert CobrowseCodeMiss.objects.filter(helper=advisor).count() == 3


def test_routing_passes_at_once_never_give_a_helper_more_than_their_capacity(postgres, advisor):
    conversations = [services.conversation_start()[0] for _ in range(4)]  # manual routing: all wait
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"routing": ConsoleSettings.Routing.AUTOMATIC})
    HelperProfile.objects.update_or_create(user=advisor, defaults={"capacity": 1})
    ConsoleConnection.objects.create(channel_name="console-1", helper=advisor, last_seen_at=timezone.now())

    results = together([assignment.queue_route_waiting] * 4)

    assert sorted(len(assigned) for assigned in results) == [0, 0, 0, 1]
    assert Conversation.objects.filter(status="active").count() == 1
    assert Conversation.objects.get(status="active").pk == conversations[0].pk, "the oldest first"


def test_a_helper_accepting_as_the_resident_leaves_a_message_gives_one_outcome(postgres, advisor):
    for _round in range(5):
        conversation, _token = services.conversation_start()

        def leave(conversation_id=conversation.pk):
            return services.callback_request_create(
                name="Pat", phone="01632 960001", message="Call me", instead_of=conversation_id
            ).pk

        def accept(conversation_id=conversation.pk):
            services.conversation_assign(conversation_id=conversation_id, helper=advisor)
            return "accepted"

        left, accepted = together([leave, accept])

        conversation.refresh_from_db()
        if accepted == "accepted":
            assert (left, conversation.status) == ("already_answered", "active")
            assert not CallbackRequest.objects.exists()
        else:
            assert (accepted, conversation.ended_reason) == ("conversation_gone", "left_message")
            assert CallbackRequest.objects.get().pk == left
        CallbackRequest.objects.all().delete()


@pytest.mark.parametrize("instead_of_a_chat", [False, True])
def test_a_message_left_twice_at_once_with_one_key_is_kept_once(postgres, settings, instead_of_a_chat):
    # The address's last one for the hour: the second waits for the first and finds it kept,
    # not the address at its limit.
    settings.CHAT_STARTS_PER_ADDRESS_PER_HOUR = 1
    for _round in range(5):
        conversation, _token = services.conversation_start()
        key = f"callback-key-{_round:02d}-{instead_of_a_chat:d}".ljust(32, "x")

        def leave(conversation_id=conversation.pk if instead_of_a_chat else None, key=key, round_=_round):
            return services.callback_request_create(
                name="Pat",
                phone="01632 960001",
                message="Call me",
                address_hash=f"{round_:064d}",
                instead_of=conversation_id,
                client_id=key,
            ).pk

        results = together([leave, leave])

        kept = CallbackRequest.objects.get(client_id=key)
        assert results == [kept.pk, kept.pk]
    assert CallbackRequest.objects.count() == 5
