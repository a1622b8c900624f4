"""Who may use what: every console endpoint, HTTP and websocket, against every kind of person.

A resident ("visitor") is anonymous in the console's eyes and holds only their chat token;
kiosks get their own credential with the kiosk issue and are anonymous here until then.
"""

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from chat import services
from tests.agents_console.test_consumers import console, expect
from tests.chat.test_consumers import connect as connect_visitor
from tests.chat.test_consumers import start

PEOPLE = ["anonymous", "visitor", "volunteer", "advisor", "supervisor"]


@pytest.fixture
def people(make_user, roles):
    from agents_console.roles import Role

    return {
        "anonymous": None,
        "visitor": None,
        "volunteer": make_user("vic", Role.VOLUNTEER),
        "advisor": make_user("alex", Role.ADVISOR),
        "supervisor": make_user("sam", Role.SUPERVISOR, is_staff=True),
    }


def client_for(person, people) -> Client:
    client = Client()
    if people[person] is not None:
        client.force_login(people[person])
    return client


# (path, expected status for anonymous, visitor, volunteer, advisor, supervisor)
HTTP_MATRIX = [
    ("/console/", [302, 302, 200, 200, 200]),
    ("/console/log/", [302, 302, 200, 200, 200]),
    ("/admin/", [302, 302, 302, 302, 200]),
    ("/chat/widget/config.json", [200, 200, 200, 200, 200]),
    ("/kiosk/", [200, 200, 200, 200, 200]),
    ("/healthz", [200, 200, 200, 200, 200]),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "expected"), HTTP_MATRIX)
@pytest.mark.parametrize("person", PEOPLE)
def test_http_pages(people, person, path, expected):
    response = client_for(person, people).get(path)
    assert response.status_code == expected[PEOPLE.index(person)], (person, path)


@pytest.mark.django_db
@pytest.mark.parametrize(("person", "expected"), list(zip(PEOPLE, [302, 302, 403, 200, 200], strict=True)), ids=PEOPLE)
def test_the_wrap_up_of_an_advisors_conversation(people, person, expected):
    conversation, _ = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=people["advisor"])
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
    response = client_for(person, people).get(f"/console/conversations/{conversation.pk}/wrap-up/")
    assert response.status_code == expected


@pytest.mark.django_db
@pytest.mark.parametrize("person", PEOPLE)
def test_a_transcript_needs_the_token_whoever_asks(people, person):
    _conversation, token = services.conversation_start()
    client = client_for(person, people)
    assert client.post("/chat/widget/transcript/", {"token": token}).status_code == 200
    assert client.post("/chat/widget/transcript/", {"token": "guess"}).status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("person", "allowed"), list(zip(PEOPLE, [False, False, True, True, True], strict=True)), ids=PEOPLE
)
async def test_the_console_socket(people, person, allowed):
    communicator = await console(people[person])
    first = await communicator.receive_json_from(timeout=10)
    if allowed:
        assert first["type"] == "queue.snapshot"
        await communicator.disconnect()
    else:
        assert (first["type"], first["data"]["code"]) == ("error", "forbidden")
        assert (await communicator.receive_output(timeout=1))["code"] == 4403


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("person", "allowed"), list(zip(PEOPLE[2:], [False, True, True], strict=True)), ids=PEOPLE[2:])
async def test_accepting_from_the_queue(people, person, allowed):
    visitor = await connect_visitor()
    await start(visitor)
    conversation = await sync_to_async(lambda: services.selectors.conversation_list_waiting().first())()
    helper = await console(people[person])
    await expect(helper, "queue.snapshot")
    await helper.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation.pk}})
    frame = await helper.receive_json_from(timeout=10)
    if allowed:
        assert frame["type"] == "state.snapshot"
    else:
        assert (frame["type"], frame["data"]["code"]) == ("error", "forbidden")
    await helper.disconnect()
    await visitor.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("person", "allowed"), list(zip(PEOPLE[2:], [False, False, True], strict=True)), ids=PEOPLE[2:]
)
async def test_opening_someone_elses_live_conversation(people, make_user, person, allowed):
    from agents_console.roles import Role

    owner = await sync_to_async(make_user)("owner", Role.ADVISOR)
    conversation, _ = await sync_to_async(services.conversation_start)()
    await sync_to_async(services.conversation_assign)(conversation_id=conversation.pk, helper=owner)
    helper = await console(people[person])
    await expect(helper, "queue.snapshot")
    await helper.send_json_to({"type": "conversation.open", "data": {"conversation_id": conversation.pk}})
    frame = await helper.receive_json_from(timeout=10)
    if allowed:
        assert frame["type"] == "state.snapshot"
        notes = await expect(helper, "notes.snapshot")
        assert notes["read_only"] is True
        await helper.send_json_to(
            {"type": "message.send", "data": {"conversation_id": conversation.pk, "client_id": "s", "body": "hi"}}
        )
        assert (await expect(helper, "error"))["code"] == "not_assigned", "watching is read-only"
    else:
        assert (frame["type"], frame["data"]["code"]) == ("error", "not_assigned")
    await helper.disconnect()


@pytest.mark.django_db
def test_repeated_failed_sign_ins_are_throttled(advisor, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "alex", "password": "wrong"})
    locked = client.post("/accounts/login/", {"username": "alex", "password": "alex-password"})

    assert locked.status_code == 429
    assert "Too many attempts to sign in" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    other = Client().post("/accounts/login/", {"username": "bea", "password": "wrong"})
    assert other.status_code == 200, "another account is not locked"
