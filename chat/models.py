"""Conversations between a resident and a helper, and the messages in them."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Conversation(models.Model):
    """One resident's request for help, from joining the queue to the end."""

    class Channel(models.TextChoices):
        WEB = "web", _("Webchat")
        KIOSK = "kiosk", _("Kiosk")
        DROP_IN = "drop_in", _("Drop-in")

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        ACTIVE = "active", _("Active")
        ENDED = "ended", _("Ended")

    class EndedBy(models.TextChoices):
        VISITOR = "visitor", _("Resident")
        HELPER = "helper", _("Helper")
        SYSTEM = "system", _("System")

    channel = models.CharField(_("channel"), max_length=16, choices=Channel, default=Channel.WEB)
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.WAITING)
    # Only the SHA-256 of the resident's token is kept, so a copy of the database does not
    # hand anyone the right to read or post in a conversation.
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    visitor_name = models.CharField(_("resident's name"), max_length=80, blank=True)
    service = models.ForeignKey(
        "kiosk.Service",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("service"),
    )
    assigned_helper = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
        verbose_name=_("assigned helper"),
    )
    # The highest message sequence number handed out; incremented under the row lock.
    last_seq = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    waiting_since = models.DateTimeField(_("waiting since"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("assigned"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    ended_by = models.CharField(_("ended by"), max_length=16, choices=EndedBy, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "waiting_since"])]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")

    def __str__(self) -> str:
        return f"Conversation {self.pk} ({self.get_channel_display()}, {self.get_status_display()})"

    @property
    def is_ended(self) -> bool:
        return self.status == self.Status.ENDED


class Message(models.Model):
    """A plain-text line in a conversation, numbered without gaps per conversation."""

    class AuthorKind(models.TextChoices):
        VISITOR = "visitor", _("Resident")
        HELPER = "helper", _("Helper")
        SYSTEM = "system", _("System")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField(_("sequence number"))
    author_kind = models.CharField(_("author"), max_length=16, choices=AuthorKind)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The name shown with the message, fixed when it was sent.
    author_name = models.CharField(max_length=150, blank=True)
    body = models.TextField(_("text"))
    # Chosen by the sending client so that a resend after a lost connection is recognised.
    # NULL rather than "" for system messages, so the unique constraint ignores them.
    client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(_("sent"), auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="chat_message_unique_seq"),
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="chat_message_unique_client_id",
            ),
        ]
        verbose_name = _("message")
        verbose_name_plural = _("messages")

    def __str__(self) -> str:
        return f"Message {self.conversation_id}#{self.seq}"
