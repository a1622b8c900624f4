"""Reads of the service catalogue and the kiosk devices."""

import datetime
from typing import Any

from django.db.models import Case, Prefetch, QuerySet, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kiosk.models import KioskDevice, Service, ServiceCategory


def service_list_active() -> QuerySet[Service]:
    return Service.objects.filter(is_active=True).select_related("category")


def service_category_list_for_kiosk() -> QuerySet[ServiceCategory]:
    """Categories holding at least one active kiosk service, each with those services prefetched."""
    kiosk_services = Service.objects.filter(is_active=True, kiosk_allowed=True)
    return (
        ServiceCategory.objects.filter(services__in=kiosk_services)
        .distinct()
        .prefetch_related(Prefetch("services", queryset=kiosk_services, to_attr="kiosk_services"))
    )


def kiosk_service_paths() -> list[str]:
    """Paths on this site of the services kiosks may open; a kiosk may open these and below."""
    urls = Service.objects.filter(is_active=True, kiosk_allowed=True).values_list("url", flat=True)
    return sorted({url for url in urls if url.startswith("/")})


def path_allowed_on_kiosk(path: str, service_paths: list[str] | None = None) -> bool:
    """The shell's own paths, or a kiosk service's (read from the catalogue only when needed:
    the middleware asks on every request an enrolled kiosk makes)."""
    if path.startswith(KIOSK_SHELL_PREFIXES):
        return True
    if service_paths is None:
        service_paths = kiosk_service_paths()
    return any(path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in service_paths)


# The shell itself, its assets and the chat widget's endpoints.
KIOSK_SHELL_PREFIXES = ("/kiosk/", "/static/", "/chat/widget/", "/healthz")

# With no heartbeat for this long a kiosk counts as offline even if a socket looks open
# (a process that died cannot close its sockets' count).
OFFLINE_AFTER = datetime.timedelta(seconds=90)


def device_state(device: KioskDevice, *, now: datetime.datetime | None = None) -> str:
    """offline, needs_help, in_use or idle: what a supervisor sees on the kiosks page."""
    now = now or timezone.now()
    if device.status != KioskDevice.Status.ACTIVE:
        return device.status
    if not device.open_sockets or not device.last_seen_at or device.last_seen_at < now - OFFLINE_AFTER:
        return "offline"
    if device.help_requested:
        return "needs_help"
    return device.activity


DEVICE_STATE_LABELS = {
    "offline": _("Offline"),
    "needs_help": _("Needs help"),
    "in_use": _("In use"),
    "idle": _("Idle"),
    "pending": _("Waiting for approval"),
    "revoked": _("Revoked"),
}


# GOV.UK Frontend tag colours; "in use" keeps the default blue.
DEVICE_STATE_TAGS = {
    "offline": "govuk-tag--grey",
    "needs_help": "govuk-tag--red",
    "in_use": "",
    "idle": "govuk-tag--green",
    "pending": "govuk-tag--yellow",
    "revoked": "govuk-tag--grey",
}


def device_payload(device: KioskDevice) -> dict[str, Any]:
    state = device_state(device)
    return {
        "id": device.pk,
        "name": device.name,
        "location": device.location,
        "status": device.status,
        "state": state,
        "state_label": str(DEVICE_STATE_LABELS[state]),
        "state_tag": DEVICE_STATE_TAGS[state],
        "pairing_code": device.pairing_code,
        "last_seen_at": device.last_seen_at.isoformat() if device.last_seen_at else None,
    }


def device_list() -> QuerySet[KioskDevice]:
    """Enrolled kiosks first, then those waiting for approval, then revoked ones."""
    now = timezone.now()
    return KioskDevice.objects.exclude(status=KioskDevice.Status.PENDING, pairing_expires_at__lt=now).order_by(
        Case(
            When(status=KioskDevice.Status.ACTIVE, then=0),
            When(status=KioskDevice.Status.PENDING, then=1),
            default=2,
        ),
        "name",
        "pk",
    )
