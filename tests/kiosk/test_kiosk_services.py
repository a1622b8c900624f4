"""Kiosk rules without sockets or browsers: pairing, enrolment, revocation, visits, hand-off."""

import datetime
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from chat import selectors as chat_selectors
from chat import services as chat_services
from chat.models import CobrowseSession, Conversation
from kiosk import selectors, services
from kiosk.models import HandoffLink, KioskDevice, KioskVisit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def enrolled(supervisor):
    device, secret = services.device_begin_pairing()
    services.device_approve(
        pairing_code=device.pairing_code.lower().replace("-", " "),
        name="Kiosk 1",
        location="Civic Centre",
        approved_by=supervisor,
    )
    device, credential = services.device_claim_credential(pairing_secret=secret)
    return device, credential


def test_a_pending_kiosk_has_a_readable_code_and_only_hashes_are_stored():
    device, secret = services.device_begin_pairing()
    assert device.status == KioskDevice.Status.PENDING
    assert len(device.pairing_code) == 9 and device.pairing_code[4] == "-"
    assert not set(device.pairing_code) & set("01IOL")
    assert secret not in device.pairing_secret_hash and len(device.pairing_secret_hash) == 64
    assert services.device_for_pairing_secret(secret) == device
    assert services.device_claim_credential(pairing_secret=secret) is None, "not approved yet"


def test_approval_then_exactly_one_credential_which_authenticates(enrolled, supervisor):
    device, credential = enrolled
    assert device.name == "Kiosk 1" and device.approved_by == supervisor
    assert device.credential_hash == services.secret_hash(credential) != credential
    assert services.device_authenticate(credential) == device
    assert services.device_authenticate("guess") is None
    assert services.device_authenticate("") is None
    assert device.pairing_code is None and device.pairing_secret_hash == ""


def test_an_unknown_or_expired_code_enrols_nothing(supervisor):
    with pytest.raises(ValidationError):
        services.device_approve(pairing_code="AAAA-BBBB", name="X", location="Y", approved_by=supervisor)
    device, _secret = services.device_begin_pairing(now=timezone.now() - datetime.timedelta(hours=2))
    with pytest.raises(ValidationError):
        services.device_approve(pairing_code=device.pairing_code, name="X", location="Y", approved_by=supervisor)
    device.refresh_from_db()
    assert device.status == KioskDevice.Status.PENDING


def test_the_sweep_forgets_pairings_that_expired_unapproved_and_nothing_else(enrolled):
    enrolled_device, _credential = enrolled
    # Enrolled an hour and more ago: its code expired, the kiosk stays.
    KioskDevice.objects.filter(pk=enrolled_device.pk).update(
        pairing_expires_at=timezone.now() - datetime.timedelta(hours=2)
    )
    expired, _secret = services.device_begin_pairing(now=timezone.now() - datetime.timedelta(hours=2))
    waiting, _secret = services.device_begin_pairing()
    out = io.StringIO()

    call_command("assist_sweep", stdout=out)

    assert set(KioskDevice.objects.values_list("pk", flat=True)) == {enrolled_device.pk, waiting.pk}
    assert out.getvalue().splitlines() == [f"expired kiosk pairings deleted: {expired.pk}"]


def test_revoking_withdraws_the_credential_and_ends_the_visit(enrolled, supervisor, broadcasts):
    device, credential = enrolled
    visit = services.visit_start(device)
    services.device_revoke(device_id=device.pk, revoked_by=supervisor)
    assert services.device_authenticate(credential) is None
    visit.refresh_from_db()
    assert visit.end_reason == KioskVisit.EndReason.REVOKED
    assert (
        f"kiosk.device.{device.pk}",
        {"type": "kiosk.credential_revoked", "device_id": device.pk},
    ) in broadcasts.sent


def test_ending_a_visit_ends_its_conversations_and_their_tokens_stop_working(enrolled):
    device, _credential = enrolled
    conversation, token = chat_services.conversation_start(kiosk_device=device, helper_in_person=True)
    assert conversation.channel == Conversation.Channel.KIOSK and conversation.helper_in_person
    device.refresh_from_db()
    assert device.help_requested and selectors.device_state(device) == "offline", "no socket open yet"
    device.open_sockets, device.last_seen_at = 1, timezone.now()
    assert selectors.device_state(device) == "needs_help"

    services.visit_end(device=device, reason=KioskVisit.EndReason.IDLE)

    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ENDED
    assert chat_selectors.conversation_get_by_token(token_hash=chat_services.token_hash(token)) is None
    device.refresh_from_db()
    assert not device.help_requested


def test_in_person_help_is_only_for_kiosks():
    conversation, _token = chat_services.conversation_start(helper_in_person=True)
    assert conversation.channel == Conversation.Channel.WEB and not conversation.helper_in_person


def test_a_handoff_link_works_once_carries_the_conversation_and_dies_with_the_visit(enrolled):
    device, _credential = enrolled
    conversation, kiosk_token = chat_services.conversation_start(kiosk_device=device)
    visit = conversation.kiosk_visit
    token = services.handoff_create(visit=visit, path="/services/report-missed-bin/", with_conversation=True)
    assert HandoffLink.objects.get().token_hash != token

    link, phone_token = services.handoff_redeem(token)
    assert link.path == "/services/report-missed-bin/"
    assert chat_selectors.conversation_get_by_token(token_hash=chat_services.token_hash(phone_token)) == conversation
    assert chat_selectors.conversation_get_by_token(token_hash=chat_services.token_hash(kiosk_token)) is None
    assert services.handoff_redeem(token) is None, "a second use"

    unused = services.handoff_create(visit=visit, path="/services/report-missed-bin/", with_conversation=False)
    services.visit_end(device=device, reason=KioskVisit.EndReason.FINISHED)
    assert services.handoff_redeem(unused) is None, "the visit ended"
    # The kiosk's wipe leaves the chat the resident took away: it goes on on their phone.
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING and conversation.handed_over_at is not None
    assert chat_selectors.conversation_get_by_token(token_hash=chat_services.token_hash(phone_token)) == conversation


def test_a_screen_shared_from_the_kiosk_is_not_shared_from_the_phone_the_chat_moves_to(enrolled, advisor):
    device, _credential = enrolled
    conversation, _kiosk_token = chat_services.conversation_start(kiosk_device=device)
    chat_services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    session = chat_services.cobrowse_request(conversation_id=conversation.pk, helper=advisor)
    chat_services.cobrowse_respond(conversation_id=conversation.pk, session_id=session.pk, accept=True)
    token = services.handoff_create(visit=conversation.kiosk_visit, path="/", with_conversation=True)

    _link, phone_token = services.handoff_redeem(token)

    session.refresh_from_db()
    assert (session.status, session.stopped_by) == (CobrowseSession.Status.STOPPED, "system")
    # The phone opens the chat with nothing to share: its resident agreed to show the kiosk.
    phone = chat_selectors.conversation_get_by_token(token_hash=chat_services.token_hash(phone_token))
    assert chat_services.cobrowse_live_for(phone.pk) is None
    assert list(conversation.messages.filter(author_kind="system").values_list("body", flat=True))[-2:] == [
        "Screen sharing stopped because the resident moved this chat to their phone.",
        "The resident moved this chat from the kiosk to their phone.",
    ]


def test_a_kiosk_whose_resident_took_their_request_to_their_phone_no_longer_needs_help(enrolled):
    device, _credential = enrolled
    conversation, _kiosk_token = chat_services.conversation_start(kiosk_device=device, helper_in_person=True)
    device.refresh_from_db()
    assert device.help_requested
    token = services.handoff_create(visit=conversation.kiosk_visit, path="/", with_conversation=True)

    services.handoff_redeem(token)

    device.refresh_from_db()
    assert not device.help_requested
    # Nobody walks over to an empty kiosk: the helper answers on the chat instead.
    conversation.refresh_from_db()
    assert not conversation.helper_in_person
    assert conversation.messages.filter(
        author_kind="system", body="The resident moved this chat from the kiosk to their phone."
    ).exists()


def test_an_expired_handoff_link_opens_nothing(enrolled):
    device, _credential = enrolled
    visit = services.visit_start(device)
    token = services.handoff_create(visit=visit, path="/services/report-missed-bin/", with_conversation=False)
    HandoffLink.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert services.handoff_redeem(token) is None


def test_the_lock_down_allows_only_kiosk_services_and_the_shell():
    paths = ["/services/report-missed-bin/"]
    assert selectors.path_allowed_on_kiosk("/services/report-missed-bin/done/", paths)
    assert selectors.path_allowed_on_kiosk("/kiosk/", paths)
    assert selectors.path_allowed_on_kiosk("/static/council/css/council.css", paths)
    for path in ["/console/", "/admin/", "/", "/services/resident-parking-permit/", "/services/report-missed-bin-x/"]:
        assert not selectors.path_allowed_on_kiosk(path, paths), path


def test_the_chromium_policy_allows_exactly_the_kiosk_services(service):
    import json
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    service.kiosk_allowed = True
    service.url = "/services/report-missed-bin/"
    service.save()
    type(service).objects.create(
        name="Other", slug="other", category=service.category, url="/other/", kiosk_allowed=False
    )
    out = StringIO()
    call_command("kiosk_chromium_policy", "https://assist.example.gov.uk", stdout=out)
    policy = json.loads(out.getvalue())
    assert policy["URLBlocklist"] == ["*"]
    assert "https://assist.example.gov.uk/services/report-missed-bin/" in policy["URLAllowlist"]
    assert not any("/other/" in url for url in policy["URLAllowlist"])
    assert policy["DownloadRestrictions"] == 3 and policy["DeveloperToolsAvailability"] == 2
    assert "clear_cookies_and_other_site_data" in policy["IdleTimeoutActions"]
    with pytest.raises(CommandError):
        call_command("kiosk_chromium_policy", "not a url")
