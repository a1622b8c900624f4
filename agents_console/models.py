"""Helpers, how work reaches them, what they can insert, and the log of help given."""

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


class HelperProfile(models.Model):
    """A helper's console settings: how many conversations at once, and their presence."""

    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        BUSY = "busy", _("Busy")
        AWAY = "away", _("Away")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="helper_profile")
    capacity = models.PositiveSmallIntegerField(
        _("conversations at once"), default=3, help_text=_("Automatic routing never gives this helper more.")
    )
    # What the helper chose; with no console open they are offline whatever it says.
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.AVAILABLE)
    status_changed_at = models.DateTimeField(_("status changed"), auto_now_add=True)

    class Meta:
        verbose_name = _("helper profile")
        verbose_name_plural = _("helper profiles")

    def __str__(self) -> str:
        return f"Helper profile of {self.user}"


class ConsoleSettings(models.Model):
    """How the console hands out work; one row, edited by supervisors in the admin."""

    class Routing(models.TextChoices):
        MANUAL = "manual", _("Helpers pick from the queue")
        AUTOMATIC = "automatic", _("Give each new conversation to the least busy available helper")

    routing = models.CharField(_("routing"), max_length=16, choices=Routing, default=Routing.MANUAL)
    answer_within_seconds = models.PositiveIntegerField(
        _("answer within (seconds)"),
        default=120,
        help_text=_("A conversation given automatically and not answered in this time goes back to the queue."),
    )
    presence_grace_seconds = models.PositiveIntegerField(
        _("offline after (seconds)"),
        default=30,
        help_text=_("How long after closing the last console tab a helper still counts as online."),
    )
    # Longer than the grace period: a helper logging one chat on the wrap-up page, with no
    # console open, still holds their others.
    requeue_after_seconds = models.PositiveIntegerField(
        _("chats go back to the queue after (seconds)"),
        default=300,
        help_text=_(
            "When a helper has had no console open for this long (closed, or its connection lost), "
            "the chats they hold go back to the queue, ahead of everyone who came after their residents, "
            "and the residents are told."
        ),
    )

    class Meta:
        verbose_name = _("console settings")
        verbose_name_plural = _("console settings")

    def __str__(self) -> str:
        return "Console settings"

    @classmethod
    def load(cls) -> "ConsoleSettings":
        settings_row, _created = cls.objects.get_or_create(pk=1)
        return settings_row


class CannedResponse(models.Model):
    """A ready answer a helper inserts into the reply box in one action."""

    title = models.CharField(_("title"), max_length=120)
    body = models.TextField(_("text"))
    service = models.ForeignKey(
        "kiosk.Service", on_delete=models.CASCADE, null=True, blank=True, related_name="canned_responses"
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["title"]
        verbose_name = _("canned response")
        verbose_name_plural = _("canned responses")

    def __str__(self) -> str:
        return self.title


class Guide(models.Model):
    """Step-by-step guidance for helping a resident through one service."""

    service = models.ForeignKey("kiosk.Service", on_delete=models.CASCADE, related_name="guides")
    title = models.CharField(_("title"), max_length=120)
    steps = models.TextField(_("steps"), help_text=_("One step a line."))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["service__name", "title"]
        verbose_name = _("guide")
        verbose_name_plural = _("guides")

    def __str__(self) -> str:
        return self.title

    def step_list(self) -> list[str]:
        return [line.strip() for line in self.steps.splitlines() if line.strip()]


class ConsoleConnection(models.Model):
    """One open console socket, on any server process: the ground truth for who is online.

    A process that dies leaves its rows behind; they stop counting once `last_seen_at` is
    older than the heartbeat allows, so no cleanup is needed for correctness.
    """

    channel_name = models.CharField(max_length=200, unique=True)
    helper = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_connections")
    connected_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    # Set when the tab closes; the helper stays online through the grace period after it.
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["helper", "last_seen_at"])]

    def __str__(self) -> str:
        return f"Console connection of {self.helper_id}"
