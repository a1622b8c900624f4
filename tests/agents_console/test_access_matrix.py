"""Who may use what: every console endpoint, HTTP and websocket, against every kind of person.

A resident ("visitor") is anonymous in the console's eyes and holds only their chat token; a
kiosk holds its device credential (a cookie) and no session; the kiosk's lock-down refuses it
every page but the kiosk services with a friendly 403.
"""

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from chat import services
from config.asgi import application
from kiosk import services as kiosk_services
from kiosk.middleware import DEVICE_COOKIE
from tests.agents_console.test_consumers import assert_refused, console, expect
from tests.chat.test_consumers import connect as connect_visitor
from tests.chat.test_consumers import start
from tests.sockets import Communicator

PEOPLE = ["anonymous", "visitor", "kiosk", "volunteer", "advisor", "supervisor"]
STAFF = PEOPLE[3:]


def enrolled_kiosk(name, approved_by):
    device, secret = kiosk_services.device_begin_pairing()
    kiosk_services.device_approve(
        pairing_code=device.pairing_code, name=name, location="Civic Centre", approved_by=approved_by
    )
    return kiosk_services.device_claim_credential(pairing_secret=secret)


@pytest.fixture
def people(make_user, roles, service):
    from agents_console.roles import Role

    supervisor = make_user("sam", Role.SUPERVISOR, is_staff=True)
    _device, credential = enrolled_kiosk("Kiosk 1", supervisor)
    return {
        "anonymous": None,
        "visitor": None,
        "kiosk": credential,
        "volunteer": make_user("vic", Role.VOLUNTEER),
        "advisor": make_user("alex", Role.ADVISOR),
        "supervisor": supervisor,
    }


def client_for(person, people) -> Client:
    client = Client()
    if person == "kiosk":
        client.cookies[DEVICE_COOKIE] = people["kiosk"]
    elif people[person] is not None:
        client.force_login(people[person])
    return client


async def socket_for(person, people, path):
    if person == "kiosk":
        return await console(path=path, cookies={DEVICE_COOKIE: people["kiosk"]})
    return await console(people[person], path=path)


# (path, expected status for anonymous, visitor, kiosk, volunteer, advisor, supervisor)
HTTP_MATRIX = [
    ("/console/", [302, 302, 403, 200, 200, 200]),
    ("/console/log/", [302, 302, 403, 200, 200, 200]),
    ("/console/kiosks/", [302, 302, 403, 403, 403, 200]),
    ("/console/kiosks/approve/", [302, 302, 403, 403, 403, 200]),
    ("/admin/", [302, 302, 403, 302, 302, 200]),
    ("/accounts/login/", [200, 200, 403, 302, 302, 302]),
    ("/chat/widget/config.json", [200, 200, 200, 200, 200, 200]),
    # The pairing screen, or an enrolled kiosk's launcher.
    ("/kiosk/", [200, 200, 200, 200, 200, 200]),
    ("/kiosk/pairing/status/", [200, 200, 200, 200, 200, 200]),
    ("/services/report-missed-bin/", [200, 200, 200, 200, 200, 200]),
    # The council website is not a kiosk service.
    ("/", [200, 200, 403, 200, 200, 200]),
    ("/healthz", [200, 200, 200, 200, 200, 200]),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "expected"), HTTP_MATRIX)
@pytest.mark.parametrize("person", PEOPLE)
def test_http_pages(people, person, path, expected):
    response = client_for(person, people).get(path)
    assert response.status_code == expected[PEOPLE.index(person)], (person, path)


# Actions: only the kiosk drives its visit and hand-off links; only supervisors wipe or revoke.
KIOSK_ONLY = [403, 403, 200, 403, 403, 403]
SUPERVISOR_ONLY = [302, 302, 403, 403, 403, 302]
POST_MATRIX = [
    ("/kiosk/visit/start/", {}, KIOSK_ONLY),
    ("/kiosk/handoff/", {"path": "/services/report-missed-bin/"}, KIOSK_ONLY),
    ("/kiosk/visit/finish/", {"reason": "finished"}, KIOSK_ONLY),
    ("/console/kiosks/{other}/wipe/", {}, SUPERVISOR_ONLY),
    ("/console/kiosks/{other}/revoke/", {}, SUPERVISOR_ONLY),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "data", "expected"), POST_MATRIX)
@pytest.mark.parametrize("person", PEOPLE)
def test_http_actions(people, person, path, data, expected):
    from kiosk.models import KioskDevice

    other, _credential = enrolled_kiosk("Kiosk 2", people["supervisor"])
    response = client_for(person, people).post(path.format(other=other.pk), data)
    assert response.status_code == expected[PEOPLE.index(person)], (person, path)
    other.refresh_from_db()
    if person != "supervisor":
        assert other.status == KioskDevice.Status.ACTIVE, "nothing changed"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("person", "expected"), list(zip(PEOPLE, [302, 302, 403, 403, 200, 200], strict=True)), ids=PEOPLE
)
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


# (path, first frame when allowed, allowed for anonymous, visitor, kiosk, volunteer, advisor, supervisor)
SOCKET_MATRIX = [
    ("/ws/console/", "queue.snapshot", [False, False, False, True, True, True]),
    ("/ws/console/kiosks/", "kiosks.snapshot", [False, False, False, False, False, True]),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "first_frame", "allowed"), SOCKET_MATRIX)
@pytest.mark.parametrize("person", PEOPLE)
async def test_the_staff_sockets(people, person, path, first_frame, allowed):
    communicator = await socket_for(person, people, path)
    first = await communicator.receive_json_from()
    if allowed[PEOPLE.index(person)]:
        assert first["type"] == first_frame
        await communicator.disconnect()
    else:
        assert (first["type"], first["data"]["code"]) == ("error", "forbidden")
        assert (await communicator.receive_output())["code"] == 4403


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("person", PEOPLE)
async def test_the_kiosk_socket_is_only_for_an_enrolled_kiosk(people, person):
    headers = [(b"origin", b"http://testserver")]
    if person == "kiosk":
        headers.append((b"cookie", f"{DEVICE_COOKIE}={people['kiosk']}".encode()))
    elif people[person] is not None:
        client = Client()
        await sync_to_async(client.force_login)(people[person])
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = Communicator(application, "/ws/kiosk/", headers=headers)
    connected, _ = await communicator.connect()
    if person == "kiosk":
        assert connected
        assert (await communicator.receive_json_from())["type"] == "kiosk.ready"
        await communicator.disconnect()
    else:
        # Told, not refused during the handshake, which a browser reads as a server down.
        assert connected
        await assert_refused(communicator)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("person", "allowed"), list(zip(STAFF, [False, True, True], strict=True)), ids=STAFF)
async def test_accepting_from_the_queue(people, person, allowed):
    visitor = await connect_visitor()
    await start(visitor)
    conversation = await sync_to_async(lambda: services.selectors.conversation_list_waiting().first())()
    helper = await console(people[person])
    await expect(helper, "queue.snapshot")
    await helper.send_json_to({"type": "conversation.accept", "data": {"conversation_id": conversation.pk}})
    frame = await helper.receive_json_from()
    if allowed:
        assert frame["type"] == "state.snapshot"
    else:
        assert (frame["type"], frame["data"]["code"]) == ("error", "forbidden")
    await helper.disconnect()
    await visitor.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("person", "allowed"), list(zip(STAFF, [False, False, True], strict=True)), ids=STAFF)
async def test_opening_someone_elses_live_conversation(people, make_user, person, allowed):
    from agents_console.roles import Role

    owner = await sync_to_async(make_user)("owner", Role.ADVISOR)
    conversation, _ = await sync_to_async(services.conversation_start)()
    await sync_to_async(services.conversation_assign)(conversation_id=conversation.pk, helper=owner)
    helper = await console(people[person])
    await expect(helper, "queue.snapshot")
    await helper.send_json_to({"type": "conversation.open", "data": {"conversation_id": conversation.pk}})
    frame = await helper.receive_json_from()
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
