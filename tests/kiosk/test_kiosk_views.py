"""The kiosk's HTTP side, failure paths included: pairing, stale credentials and visits, the
privacy wipe's response, and hand-off links that must not open."""

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from config.limits import client_address_hash
from kiosk import services
from kiosk.middleware import DEVICE_COOKIE, PAIRING_COOKIE, VISIT_COOKIE
from kiosk.models import HandoffLink, KioskDevice, KioskVisit

pytestmark = pytest.mark.django_db


@pytest.fixture
def kiosk(supervisor, service):
    """A browser holding an enrolled kiosk's credential, and the device."""
    device, secret = services.device_begin_pairing()
    services.device_approve(
        pairing_code=device.pairing_code, name="Kiosk 1", location="Library", approved_by=supervisor
    )
    device, credential = services.device_claim_credential(pairing_secret=secret)
    client = Client()
    client.cookies[DEVICE_COOKIE] = credential
    return client, device


def test_pairing_then_approval_hands_the_browser_its_credential_once(supervisor):
    browser = Client()
    first = browser.get("/kiosk/")
    assert "This kiosk is not set up yet" in first.content.decode()
    device = KioskDevice.objects.get()
    assert browser.get("/kiosk/pairing/status/").json() == {"status": "pending"}
    assert browser.get("/kiosk/").context["device"] == device, "the same code while pending"

    services.device_approve(pairing_code=device.pairing_code, name="K", location="L", approved_by=supervisor)
    assert browser.get("/kiosk/pairing/status/").json() == {"status": "approved"}
    enrolled = browser.get("/kiosk/")
    assert enrolled.status_code == 302 and enrolled.cookies[DEVICE_COOKIE].value
    assert enrolled.cookies[PAIRING_COOKIE].value == "", "the pairing secret is spent"
    assert "What would you like to do?" in browser.get("/kiosk/").content.decode()


def test_one_network_may_have_only_so_many_pairings_waiting(settings, supervisor):
    """Any browser may open the kiosk address, and every supervisor's Kiosks page lists what
    is waiting: a script opening it again and again must not fill the page."""
    settings.KIOSK_PAIRINGS_PER_ADDRESS_PER_HOUR = 3
    answers = [Client(REMOTE_ADDR="203.0.113.9").get("/kiosk/") for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert "Too many kiosks on this network are waiting to be approved" in refused.content.decode()
    assert refused["Retry-After"] == "60"
    assert PAIRING_COOKIE not in refused.cookies
    assert KioskDevice.objects.count() == 3
    # A kiosk already showing its code keeps it; another network starts its own.
    reloaded = Client(REMOTE_ADDR="203.0.113.9")
    reloaded.cookies[PAIRING_COOKIE] = answers[0].cookies[PAIRING_COOKIE].value
    assert reloaded.get("/kiosk/").context["device"] == KioskDevice.objects.order_by("pk").first()
    assert Client(REMOTE_ADDR="198.51.100.7").get("/kiosk/").status_code == 200
    # Approving one that waits makes room for the next.
    waiting = KioskDevice.objects.filter(client_address_hash=client_address_hash("203.0.113.9")).first()
    services.device_approve(pairing_code=waiting.pairing_code, name="K", location="L", approved_by=supervisor)
    assert Client(REMOTE_ADDR="203.0.113.9").get("/kiosk/").status_code == 200


def test_a_revoked_credential_goes_back_to_pairing_and_is_forgotten(kiosk, supervisor):
    client, device = kiosk
    services.device_revoke(device_id=device.pk, revoked_by=supervisor)
    response = client.get("/kiosk/")
    assert "This kiosk is not set up yet" in response.content.decode()
    assert response.cookies[DEVICE_COOKIE].value == ""
    assert client.post("/kiosk/visit/start/").status_code == 403


def test_the_wipe_ends_the_visit_and_clears_session_cookies_and_storage(kiosk):
    client, device = kiosk
    client.get("/services/report-missed-bin/")
    visit = KioskVisit.objects.get(device=device, ended_at__isnull=True)
    assert client.cookies[VISIT_COOKIE].value == visit.public_id
    session = client.session
    session["something"] = "of this resident"
    session.save()
    assert client.session["something"] == "of this resident"
    session_key = session.session_key

    response = client.post("/kiosk/visit/finish/", {"reason": "idle"})

    assert response.status_code == 200 and response.json() == {"home": "/kiosk/"}
    assert response["Clear-Site-Data"] == '"cache", "storage"'
    assert response.cookies[VISIT_COOKIE].value == ""
    assert DEVICE_COOKIE not in response.cookies, "the kiosk stays enrolled"
    visit.refresh_from_db()
    assert visit.end_reason == KioskVisit.EndReason.IDLE
    assert "something" not in client.session
    assert not SessionStore().exists(session_key), "flushed on the server too, not only forgotten"


def test_a_visit_wiped_elsewhere_shows_nothing_of_it(kiosk, supervisor):
    client, device = kiosk
    client.get("/services/report-missed-bin/")
    session_key = client.session.session_key
    services.device_request_wipe(device_id=device.pk, requested_by=supervisor)
    response = client.get("/kiosk/")
    assert client.session.session_key != session_key, "the wiped visit's session is flushed"
    assert response.cookies[VISIT_COOKIE].value == ""


@pytest.mark.parametrize(
    "path", ["/console/", "/kiosk/", "https://example.org/", "services/report-missed-bin/", "/admin/", ""]
)
def test_only_a_kiosk_service_can_continue_on_a_phone(kiosk, path):
    client, _device = kiosk
    response = client.post("/kiosk/handoff/", {"path": path})
    assert response.status_code == 400 and response.json()["error"]
    assert HandoffLink.objects.count() == 0


def test_a_handoff_link_opens_on_a_phone_once_and_never_on_a_kiosk(kiosk):
    client, _device = kiosk
    url = client.post("/kiosk/handoff/", {"path": "/services/report-missed-bin/"}).json()["url"]
    path = url.removeprefix("http://testserver")
    assert client.get(path).status_code == 403, "the kiosk itself does not redeem it"
    phone = Client()
    # Opening it (and a link preview fetching it) only asks; pressing Continue uses it.
    for _opened in range(2):
        asked = phone.get(path)
        assert asked.status_code == 200 and b"Continue on this phone" in asked.content
    assert HandoffLink.objects.get().used_at is None
    used = phone.post(path)
    assert used.status_code == 200 and b"/services/report-missed-bin/" in used.content
    assert phone.post(path).status_code == 410
    assert phone.get(path).status_code == 410
    assert phone.get("/kiosk/handoff/not-a-token/").status_code == 410
    assert phone.post("/kiosk/handoff/not-a-token/").status_code == 410
