"""The kiosk device socket and the supervisors' kiosk status socket, through the ASGI app."""

import pytest

from config.asgi import application
from kiosk import services
from kiosk.middleware import DEVICE_COOKIE
from kiosk.models import KioskDevice
from tests.agents_console.test_consumers import assert_refused
from tests.sockets import Communicator

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")


def kiosk_socket(credential):
    headers = [ORIGIN, (b"cookie", f"{DEVICE_COOKIE}={credential}".encode())]
    return Communicator(application, "/ws/kiosk/", headers=headers)


async def test_an_unenrolled_browser_gets_no_kiosk_socket():
    """Told so, not refused during the handshake: a browser sees a refused handshake as a
    server that is down (1006) and would go on reconnecting."""
    communicator = kiosk_socket("not-a-credential")
    connected, _ = await communicator.connect()
    assert connected
    await assert_refused(communicator)


async def test_heartbeats_are_stored_and_bad_ones_refused(kiosk_credential):
    communicator = kiosk_socket(kiosk_credential)
    connected, _ = await communicator.connect()
    assert connected
    ready = await communicator.receive_json_from()
    assert ready["type"] == "kiosk.ready" and ready["data"]["location"] == "Library"
    await communicator.send_json_to({"type": "kiosk.heartbeat", "data": {"activity": "sleeping"}})
    error = await communicator.receive_json_from()
    assert error["data"]["code"] == "invalid_frame"
    await communicator.send_json_to({"type": "kiosk.heartbeat", "data": {"activity": "in_use"}})
    await communicator.send_json_to({"type": "ping", "data": {}})
    assert (await communicator.receive_json_from())["type"] == "pong"
    device = await KioskDevice.objects.aget()
    assert (device.activity, device.open_sockets) == ("in_use", 1)
    await communicator.disconnect()
    device = await KioskDevice.objects.aget()
    assert device.open_sockets == 0


async def test_a_remote_wipe_and_a_revocation_reach_the_kiosk(kiosk_credential, supervisor):
    from asgiref.sync import sync_to_async

    communicator = kiosk_socket(kiosk_credential)
    await communicator.connect()
    await communicator.receive_json_from()
    device = await KioskDevice.objects.aget()
    await sync_to_async(services.device_request_wipe)(device_id=device.pk, requested_by=supervisor)
    assert (await communicator.receive_json_from())["type"] == "kiosk.wipe"
    await sync_to_async(services.device_revoke)(device_id=device.pk, revoked_by=supervisor)
    assert (await communicator.receive_json_from())["type"] == "kiosk.revoked"
    assert (await communicator.receive_output())["type"] == "websocket.close"


async def test_only_supervisors_watch_kiosk_states(advisor, supervisor, kiosk_credential):
    from django.test import AsyncClient

    for user, allowed in ((advisor, False), (supervisor, True)):
        client = AsyncClient()
        await client.aforce_login(user)
        cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
        communicator = Communicator(application, "/ws/console/kiosks/", headers=[ORIGIN, (b"cookie", cookie)])
        await communicator.connect()
        frame = await communicator.receive_json_from()
        if allowed:
            assert frame["type"] == "kiosks.snapshot"
            assert [k["name"] for k in frame["data"]["kiosks"]] == ["Kiosk 1"]
        else:
            assert frame["data"]["code"] == "forbidden"
        await communicator.disconnect()
