"""The council's service catalogue and the reception kiosk devices."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


def validate_service_url(value: str) -> None:
    """A service lives on this site (a path) or on an http(s) address."""
    if not (value.startswith("/") or value.startswith("https://") or value.startswith("http://")):
        raise ValidationError(_("Enter a path on this site (starting with /) or an http(s) address."))


class ServiceCategory(models.Model):
    name = models.CharField(_("name"), max_length=80, unique=True)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("service category")
        verbose_name_plural = _("service categories")

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    """One of the council's online services, as residents and helpers know it."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    category = models.ForeignKey(
        ServiceCategory, on_delete=models.PROTECT, related_name="services", verbose_name=_("category")
    )
    url = models.CharField(_("address"), max_length=500, validators=[validate_service_url])
    summary = models.CharField(_("summary"), max_length=240, blank=True)
    kiosk_allowed = models.BooleanField(
        _("kiosks may open it"), default=False, help_text=_("Only these services appear on kiosks.")
    )
    helper_guidance = models.TextField(
        _("guidance for helpers"), blank=True, help_text=_("Shown to advisors and volunteers, never to residents.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["category__position", "position", "name"]
        verbose_name = _("service")
        verbose_name_plural = _("services")

    def __str__(self) -> str:
        return self.name


class KioskDevice(models.Model):
    """A "Do It Online" touch screen in a council building.

    A browser that opens the kiosk address unenrolled becomes a pending device showing a
    pairing code; a supervisor approves it and names its location. Secrets (the pairing
    secret, the device credential) are kept only as SHA-256 hashes.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for approval")
        ACTIVE = "active", _("Enrolled")
        REVOKED = "revoked", _("Revoked")

    class Activity(models.TextChoices):
        IDLE = "idle", _("Idle")
        IN_USE = "in_use", _("In use")

    name = models.CharField(_("name"), max_length=80, blank=True)
    location = models.CharField(_("location"), max_length=160, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.PENDING)
    pairing_code = models.CharField(_("pairing code"), max_length=16, unique=True, null=True, blank=True)
    pairing_secret_hash = models.CharField(max_length=64, blank=True, editable=False)
    pairing_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    credential_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    idle_timeout_seconds = models.PositiveIntegerField(
        _("idle time before the privacy wipe (seconds)"),
        default=120,
        validators=[MinValueValidator(30), MaxValueValidator(1800)],
        help_text=_("After this long without a touch the kiosk asks whether the resident is still there."),
    )
    # What the kiosk last reported, and whether its socket is open: the console derives
    # idle / in use / needs help / offline from these (see `kiosk.selectors.device_state`).
    activity = models.CharField(max_length=16, choices=Activity, default=Activity.IDLE, editable=False)
    open_sockets = models.PositiveSmallIntegerField(default=0, editable=False)
    help_requested = models.BooleanField(default=False, editable=False)
    # Where its pairing began, keyed (config.limits): each address may start only so many.
    client_address_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("kiosk")
        verbose_name_plural = _("kiosks")

    def __str__(self) -> str:
        if self.status == self.Status.PENDING:
            return str(_("Pending kiosk %(code)s") % {"code": self.pairing_code})
        return f"{self.name} ({self.location})"


class KioskVisit(models.Model):
    """One resident's use of a kiosk, from the first touch to the wipe."""

    class EndReason(models.TextChoices):
        FINISHED = "finished", _("Resident finished")
        IDLE = "idle", _("Idle timeout")
        REMOTE = "remote", _("Wiped from the console")
        REVOKED = "revoked", _("Kiosk revoked")

    device = models.ForeignKey(KioskDevice, on_delete=models.CASCADE, related_name="visits")
    # The value of the kiosk browser's visit cookie; not a secret (the device credential is).
    public_id = models.CharField(max_length=32, unique=True, editable=False)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=EndReason, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["device"], condition=models.Q(ended_at__isnull=True), name="one_open_visit_per_kiosk"
            )
        ]

    def __str__(self) -> str:
        return f"Visit {self.pk} at {self.device}"


class HandoffLink(models.Model):
    """A one-time, short-lived link (shown as a QR code) that continues a visit on a phone."""

    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    visit = models.ForeignKey(KioskVisit, on_delete=models.CASCADE, related_name="handoff_links")
    path = models.CharField(max_length=500)
    # Carry the visit's open conversation over too: its token is rotated when the link is used.
    with_conversation = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Hand-off of {self.path}"


class ServiceSubmission(models.Model):
    """A completed sample online service: what the resident sent and its reference number."""

    service_slug = models.SlugField(max_length=80)
    reference = models.CharField(max_length=20, unique=True)
    data = models.JSONField(default=dict)
    visit = models.ForeignKey(KioskVisit, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.reference
