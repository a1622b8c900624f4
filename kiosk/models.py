"""The council's service catalogue and the reception kiosk devices."""

from django.core.exceptions import ValidationError
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
    """A "Do It Online" touch screen in a council building."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    location = models.CharField(_("location"), max_length=160)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("kiosk")
        verbose_name_plural = _("kiosks")

    def __str__(self) -> str:
        return f"{self.name} ({self.location})"
