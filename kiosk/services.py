"""Rules for kiosk devices: pairing, enrolment, revocation, visits, heartbeats, hand-off links.

Every secret handed to a browser (pairing secret, device credential, hand-off token) is
stored only as its SHA-256, so a copy of the database enrols no kiosk and opens no link.
"""

import datetime
import hashlib
import logging
import secrets
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.limits import hourly_limit_reached
from kiosk import events, signals
from kiosk.models import HandoffLink, KioskDevice, KioskVisit

logger = logging.getLogger(__name__)

# Easy to read aloud and to type: no 0/O or 1/I/L.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PAIRING_LIFETIME = datetime.timedelta(hours=1)
HANDOFF_LIFETIME = datetime.timedelta(minutes=5)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _pairing_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def normalise_pairing_code(value: str) -> str:
    raw = "".join(ch for ch in value.upper() if ch.isalnum())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == 8 else value.strip().upper()


@transaction.atomic
def device_begin_pairing(*, address_hash: str = "", now: datetime.datetime | None = None) -> tuple[KioskDevice, str]:
    """A new pending kiosk with a pairing code; returns it with the browser's pairing secret.

    Any browser that opens the kiosk address starts one, and supervisors' Kiosks pages list
    them all, so one network address may have only `KIOSK_PAIRINGS_PER_ADDRESS_PER_HOUR`
    waiting (ValidationError `too_many_pairings`); approving one, or its code expiring after
    an hour, makes room.
    """
    now = now or timezone.now()
    if address_hash and hourly_limit_reached(
        [KioskDevice.objects.filter(client_address_hash=address_hash, status=KioskDevice.Status.PENDING)],
        f"kiosk-pairing:{address_hash}",
        now,
        limit=settings.KIOSK_PAIRINGS_PER_ADDRESS_PER_HOUR,
    ):
        raise ValidationError(
            _("Too many kiosks on this network are waiting to be approved."), code="too_many_pairings"
        )
    secret = secrets.token_urlsafe(32)
    for _attempt in range(5):
        try:
            with transaction.atomic():
                device = KioskDevice.objects.create(
                    pairing_code=_pairing_code(),
                    pairing_secret_hash=secret_hash(secret),
                    pairing_expires_at=now + PAIRING_LIFETIME,
                    client_address_hash=address_hash,
                )
        except IntegrityError:
            continue
        logger.info("kiosk %s is pairing with code %s", device.pk, device.pairing_code)
        return device, secret
    raise RuntimeError("could not find an unused pairing code")


def device_pairings_expired_delete(*, now: datetime.datetime | None = None) -> list[int]:
    """Delete the kiosks still pending whose pairing code has expired: any browser that opens
    the kiosk address starts one, and nothing else would ever remove them. Returns their ids."""
    expired = KioskDevice.objects.filter(
        status=KioskDevice.Status.PENDING, pairing_expires_at__lt=now or timezone.now()
    )
    ids = list(expired.values_list("pk", flat=True))
    expired.filter(pk__in=ids).delete()
    return ids


def device_for_pairing_secret(secret: str, *, now: datetime.datetime | None = None) -> KioskDevice | None:
    """The pending or just-approved kiosk this browser is pairing as, unless its code expired."""
    if not secret:
        return None
    device = KioskDevice.objects.filter(pairing_secret_hash=secret_hash(secret)).first()
    if device is None or device.status == KioskDevice.Status.REVOKED:
        return None
    if device.status == KioskDevice.Status.PENDING and device.pairing_expires_at < (now or timezone.now()):
        return None
    return device


@transaction.atomic
def device_approve(*, pairing_code: str, name: str, location: str, approved_by) -> KioskDevice:
    """Enrol the pending kiosk showing this code. Raises ValidationError for an unknown or
    expired code; the kiosk collects its credential on its next check (`device_claim_credential`)."""
    code = normalise_pairing_code(pairing_code)
    device = (
        KioskDevice.objects.select_for_update()
        .filter(pairing_code=code, status=KioskDevice.Status.PENDING, pairing_expires_at__gt=timezone.now())
        .first()
    )
    if device is None:
        raise ValidationError(_("No kiosk is waiting with that pairing code. Check the code on the kiosk's screen."))
    device.status = KioskDevice.Status.ACTIVE
    device.name = name
    device.location = location
    device.approved_by = approved_by
    device.approved_at = timezone.now()
    device.save(update_fields=["status", "name", "location", "approved_by", "approved_at"])
    events.broadcast_device_changed(device)
    logger.info("kiosk %s approved as %r by %s", device.pk, name, approved_by)
    return device


@transaction.atomic
def device_claim_credential(*, pairing_secret: str) -> tuple[KioskDevice, str] | None:
    """Once approved, hand the pairing browser its device credential, exactly once."""
    device = (
        KioskDevice.objects.select_for_update()
        .filter(pairing_secret_hash=secret_hash(pairing_secret), status=KioskDevice.Status.ACTIVE)
        .first()
        if pairing_secret
        else None
    )
    if device is None:
        return None
    credential = secrets.token_urlsafe(32)
    device.credential_hash = secret_hash(credential)
    device.pairing_secret_hash = ""
    device.pairing_code = None
    device.save(update_fields=["credential_hash", "pairing_secret_hash", "pairing_code"])
    return device, credential


def device_authenticate(credential: str) -> KioskDevice | None:
    """The enrolled kiosk holding this credential, or None (unknown, revoked, empty)."""
    if not credential:
        return None
    return KioskDevice.objects.filter(credential_hash=secret_hash(credential), status=KioskDevice.Status.ACTIVE).first()


@transaction.atomic
def device_revoke(*, device_id: int, revoked_by) -> KioskDevice:
    """Withdraw a kiosk's credential: its open visit is wiped and its screen returns to pairing."""
    device = KioskDevice.objects.select_for_update().get(pk=device_id)
    if device.status == KioskDevice.Status.REVOKED:
        return device
    _visit_end_locked(device, reason=KioskVisit.EndReason.REVOKED)
    device.status = KioskDevice.Status.REVOKED
    device.credential_hash = ""
    device.pairing_secret_hash = ""
    device.pairing_code = None
    device.revoked_at = timezone.now()
    device.save(update_fields=["status", "credential_hash", "pairing_secret_hash", "pairing_code", "revoked_at"])
    events.broadcast_to_device(device.pk, events.CREDENTIAL_REVOKED)
    events.broadcast_device_changed(device)
    logger.warning("kiosk %s (%s) revoked by %s", device.pk, device.name, revoked_by)
    return device


@transaction.atomic
def device_request_wipe(*, device_id: int, requested_by) -> KioskDevice:
    """Wipe a kiosk from the console: its visit ends now and its screen clears itself."""
    device = KioskDevice.objects.select_for_update().get(pk=device_id, status=KioskDevice.Status.ACTIVE)
    _visit_end_locked(device, reason=KioskVisit.EndReason.REMOTE)
    events.broadcast_to_device(device.pk, events.WIPE_REQUESTED)
    logger.info("kiosk %s wiped remotely by %s", device.pk, requested_by)
    return device


def _save_state(device: KioskDevice, **changes) -> None:
    """Store a change of what the console shows, and tell the console only if it changed."""
    changed = [field for field, value in changes.items() if getattr(device, field) != value]
    for field, value in changes.items():
        setattr(device, field, value)
    device.save(update_fields=list(changes))
    if changed and changed != ["last_seen_at"]:
        events.broadcast_device_changed(device)


@transaction.atomic
def device_heartbeat(*, device_id: int, activity: str) -> None:
    device = KioskDevice.objects.select_for_update().get(pk=device_id)
    _save_state(device, activity=activity, last_seen_at=timezone.now())


@transaction.atomic
def device_socket_changed(*, device_id: int, opened: bool) -> None:
    device = KioskDevice.objects.select_for_update().get(pk=device_id)
    open_sockets = device.open_sockets + 1 if opened else max(0, device.open_sockets - 1)
    _save_state(device, open_sockets=open_sockets, last_seen_at=timezone.now())


@transaction.atomic
def device_set_help_requested(*, device_id: int, requested: bool) -> None:
    """Called by chat when a kiosk conversation opens or ends."""
    device = KioskDevice.objects.select_for_update().get(pk=device_id)
    _save_state(device, help_requested=requested)


def visit_current(device: KioskDevice, public_id: str) -> KioskVisit | None:
    """The kiosk's open visit, if the browser's visit cookie names it."""
    if not public_id:
        return None
    return KioskVisit.objects.filter(device=device, public_id=public_id, ended_at__isnull=True).first()


@transaction.atomic
def visit_start(device: KioskDevice) -> KioskVisit:
    """The open visit of this kiosk, starting one if there is none (a first touch)."""
    locked = KioskDevice.objects.select_for_update().get(pk=device.pk)
    visit = KioskVisit.objects.filter(device=locked, ended_at__isnull=True).first()
    if visit is None:
        visit = KioskVisit.objects.create(device=locked, public_id=secrets.token_hex(16))
        _save_state(locked, activity=KioskDevice.Activity.IN_USE, last_seen_at=timezone.now())
    return visit


@transaction.atomic
def visit_end(*, device: KioskDevice, reason: str) -> KioskVisit | None:
    locked = KioskDevice.objects.select_for_update().get(pk=device.pk)
    return _visit_end_locked(locked, reason=reason)


def _visit_end_locked(device: KioskDevice, *, reason: str) -> KioskVisit | None:
    visit = KioskVisit.objects.filter(device=device, ended_at__isnull=True).first()
    if visit is not None:
        visit.ended_at = timezone.now()
        visit.end_reason = reason
        visit.save(update_fields=["ended_at", "end_reason"])
        # Hand-off links die with the visit: the next resident's phone must not open it.
        HandoffLink.objects.filter(visit=visit, used_at__isnull=True).update(expires_at=visit.ended_at)
        visit_id = visit.pk
        transaction.on_commit(lambda: signals.visit_ended.send(sender=KioskVisit, visit_id=visit_id, reason=reason))
        logger.info("kiosk %s visit %s ended: %s", device.pk, visit.pk, reason)
    _save_state(device, activity=KioskDevice.Activity.IDLE)
    return visit


# Chat registers how a visit's open conversation changes hands to a phone (it rotates the
# token and returns the new one, or None); kiosk, a lower app, never imports chat.
_conversation_handover: Callable[[int], str | None] | None = None


def register_conversation_handover(handover: Callable[[int], str | None]) -> None:
    global _conversation_handover
    _conversation_handover = handover


def handoff_create(*, visit: KioskVisit, path: str, with_conversation: bool) -> str:
    token = secrets.token_urlsafe(24)
    HandoffLink.objects.create(
        token_hash=secret_hash(token),
        visit=visit,
        path=path,
        with_conversation=with_conversation,
        expires_at=timezone.now() + HANDOFF_LIFETIME,
    )
    return token


def _usable_handoff_links(token: str, now: datetime.datetime):
    """The link `token` opens, if it is still unused and unexpired at `now`."""
    return HandoffLink.objects.filter(token_hash=secret_hash(token), used_at__isnull=True, expires_at__gt=now)


def handoff_usable(token: str) -> bool:
    """Whether the link would still open. Reading it uses nothing up."""
    return _usable_handoff_links(token, timezone.now()).exists()


@transaction.atomic
def handoff_redeem(token: str) -> tuple[HandoffLink, str | None] | None:
    """Use a hand-off link once: returns it with the conversation's new token, if it carries one.

    A second use, an expired link or an unknown token returns None. The update that marks
    it used is the guard, so two phones scanning at once cannot both get in.
    """
    now = timezone.now()
    claimed = _usable_handoff_links(token, now).update(used_at=now)
    if not claimed:
        return None
    link = HandoffLink.objects.select_related("visit").get(token_hash=secret_hash(token))
    chat_token = None
    if link.with_conversation and _conversation_handover is not None:
        chat_token = _conversation_handover(link.visit_id)
    return link, chat_token
