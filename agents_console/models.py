"""The record of help given: one assisted transaction per conversation or walk-in."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AssistedTransaction(models.Model):
    """What a helper did with a resident, logged at wrap-up for management information."""

    class Channel(models.TextChoices):
        WEB = "web", _("Webchat")
        KIOSK = "kiosk", _("Kiosk")
        DROP_IN = "drop_in", _("Drop-in day")
        WALK_IN = "walk_in", _("Walk-in at reception")

    class Outcome(models.TextChoices):
        DONE_ALONE = "done_alone", _("Done by the resident alone")
        DONE_WITH_GUIDANCE = "done_with_guidance", _("Done with guidance")
        DONE_ON_BEHALF = "done_on_behalf", _("Done on the resident's behalf")
        REFERRED = "referred", _("Referred elsewhere")
        NOT_COMPLETED = "not_completed", _("Not completed")

    class TypedBy(models.TextChoices):
        RESIDENT = "resident", _("The resident")
        HELPER = "helper", _("The helper")
        BOTH = "both", _("Both")

    class NextTime(models.TextChoices):
        YES = "yes", _("Yes")
        MORE_PRACTICE = "more_practice", _("With more practice")
        NO = "no", _("No")

    helper = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="assisted_transactions",
        verbose_name=_("helper"),
    )
    conversation = models.OneToOneField(
        "chat.Conversation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assisted_transaction",
        verbose_name=_("conversation"),
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel)
    services = models.ManyToManyField("kiosk.Service", related_name="assisted_transactions", verbose_name=_("services"))
    outcome = models.CharField(_("outcome"), max_length=32, choices=Outcome)
    barrier_access = models.BooleanField(_("access"), default=False)
    barrier_skills = models.BooleanField(_("skills"), default=False)
    barrier_confidence = models.BooleanField(_("confidence"), default=False)
    barrier_motivation = models.BooleanField(_("motivation"), default=False)
    typed_by = models.CharField(_("who typed"), max_length=16, choices=TypedBy)
    can_do_alone_next_time = models.CharField(_("could do it alone next time"), max_length=16, choices=NextTime)
    reference = models.CharField(_("reference number"), max_length=64, blank=True)
    minutes_spent = models.PositiveSmallIntegerField(_("time spent (minutes)"))
    created_at = models.DateTimeField(_("logged"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("assisted transaction")
        verbose_name_plural = _("assisted transactions")

    def __str__(self) -> str:
        return f"Assisted transaction {self.pk} ({self.get_outcome_display()})"


class ConsoleConnection(models.Model):
    """One open console socket, on any server process: the ground truth for who is online.

    A process that dies leaves its rows behind; they stop counting once `last_seen_at` is
    older than the heartbeat allows, so no cleanup is needed for correctness.
    """

    channel_name = models.CharField(max_length=200, unique=True)
    helper = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_connections")
    connected_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["helper", "last_seen_at"])]

    def __str__(self) -> str:
        return f"Console connection of {self.helper_id}"
