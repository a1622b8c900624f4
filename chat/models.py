"""Conversations between a resident and a helper, and the messages in them."""

import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.clock import hours_text


class ConversationQuerySet(models.QuerySet):
    def not_ended(self) -> "ConversationQuerySet":
        """Waiting or active: a resident or a helper may still act in them."""
        return self.exclude(status=self.model.Status.ENDED)


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
    # The key the client sent with its `conversation.start`, hashed as the token is: a start
    # sent again after its answer was lost finds this conversation instead of opening another.
    start_key_hash = models.CharField(max_length=64, blank=True, editable=False)
    visitor_name = models.CharField(_("resident's name"), max_length=80, blank=True)
    # Only for sending the transcript; purged with the conversation.
    visitor_email = models.EmailField(_("resident's email"), blank=True)
    # A keyed hash of the resident's network address, for per-address limits: the address
    # itself is never stored.
    client_address_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    service = models.ForeignKey(
        "kiosk.Service",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("service"),
    )
    kiosk_visit = models.ForeignKey(
        "kiosk.KioskVisit",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("kiosk visit"),
    )
    # A kiosk resident may ask for a helper to walk over instead of chatting on screen.
    helper_in_person = models.BooleanField(_("helper asked to come over"), default=False)
    # When a kiosk resident took the conversation to their phone: from then on it is the
    # phone's, and the kiosk's wipe at the end of the visit leaves it open.
    handed_over_at = models.DateTimeField(_("continued on a phone"), null=True, blank=True, editable=False)
    assigned_helper = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
        verbose_name=_("assigned helper"),
    )
    # Set when routing, not a person, chose the helper: unanswered, it returns to the queue.
    assigned_automatically = models.BooleanField(default=False, editable=False)
    # The helper it last went back to the queue from (unanswered, put back, gone): routing does
    # not give it straight back to them, though they may still accept it by hand.
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    # The highest message sequence number handed out; incremented under the row lock.
    last_seq = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # Its place in the queue: a conversation put back keeps it, and goes to the head.
    waiting_since = models.DateTimeField(_("waiting since"), null=True, blank=True)
    # When its current wait began: as `waiting_since` unless a helper handed it back to the
    # queue, when the wait starts again (the help in between was no wait).
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("assigned"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    ended_by = models.CharField(_("ended by"), max_length=16, choices=EndedBy, blank=True)
    # Why, more exactly than who: one of services.ENDED_TEXT's keys ("unanswered", "abandoned"…).
    ended_reason = models.CharField(_("end reason"), max_length=16, blank=True)
    # When the resident last had a socket open on it: an abandoned conversation times out.
    visitor_last_seen_at = models.DateTimeField(_("resident last seen"), null=True, blank=True)
    # When the resident's last open socket closed, until one opens again: their helper sees
    # at once that they left the page, not only when the conversation times out.
    visitor_left_at = models.DateTimeField(_("resident left"), null=True, blank=True)
    # The highest sequence number each side has seen, for "Read" marks.
    visitor_read_seq = models.PositiveIntegerField(default=0, editable=False)
    helper_read_seq = models.PositiveIntegerField(default=0, editable=False)
    rating = models.PositiveSmallIntegerField(
        _("rating"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    rating_comment = models.CharField(_("rating comment"), max_length=500, blank=True)
    # The transcript email of a resident who asked for one: when a try is next due (each try
    # moves it on first, so one whose process stopped mid-way is made again), the tries made,
    # and when it went.
    transcript_email_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    transcript_email_tries = models.PositiveSmallIntegerField(default=0, editable=False)
    transcript_emailed_at = models.DateTimeField(_("transcript emailed"), null=True, blank=True, editable=False)
    # When its messages, notes and the resident's details were deleted, the retention period
    # after it ended (services.personal_data_purge); what is left is anonymous.
    purged_at = models.DateTimeField(_("personal data deleted"), null=True, blank=True, editable=False)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["status", "waiting_since"]),
            # What the retention sweep still has to purge.
            models.Index(
                fields=["ended_at"], condition=models.Q(purged_at__isnull=True), name="chat_conversation_to_purge"
            ),
            # The queue's wait estimate (selectors.queue_seconds_per_place), on every queue
            # change: the recent acceptances, and who was waiting then.
            models.Index(fields=["assigned_at"], name="chat_conversation_assigned_at"),
            models.Index(fields=["queued_at"], name="chat_conversation_queued"),
            # The transcript emails the sweep may have to try again: a handful at most.
            models.Index(
                fields=["transcript_email_due_at"],
                condition=models.Q(transcript_email_due_at__isnull=False),
                name="chat_conversation_email_due",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["start_key_hash"], condition=~models.Q(start_key_hash=""), name="chat_conversation_start_key"
            )
        ]
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

    # No index of its own: the unique (conversation, seq) index leads with it.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False)
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
        indexes = [
            # The per-minute limit counts one author's recent messages in a conversation on
            # every send: read from this index, that costs the minute's messages, not the
            # whole conversation's (which grew with every message, docs/performance.md).
            models.Index(fields=["conversation", "author_kind", "created_at"], name="chat_message_rate_window"),
        ]
        verbose_name = _("message")
        verbose_name_plural = _("messages")

    def __str__(self) -> str:
        return f"Message {self.conversation_id}#{self.seq}"


class InternalNote(models.Model):
    """A helper's note on a conversation: for staff only, never sent to the resident."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    author_name = models.CharField(max_length=150, blank=True)
    body = models.TextField(_("note"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "created_at"]
        verbose_name = _("internal note")
        verbose_name_plural = _("internal notes")

    def __str__(self) -> str:
        return f"Note on conversation {self.conversation_id}"


class OpeningHours(models.Model):
    """When helpers answer webchat on one day of the week. No rows at all means always open.

    A closing time at or before the opening time is on the next day, so a row can run to
    midnight (9am to 00:00) or overnight (10pm to 2am); midnight to midnight is the whole day.
    """

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    weekday = models.PositiveSmallIntegerField(_("day"), choices=Weekday)
    opens_at = models.TimeField(_("opens"))
    closes_at = models.TimeField(
        _("closes"),
        help_text=_(
            "A time at or before the opening time is on the next day: 00:00 closes at midnight, "
            "02:00 after a 22:00 opening closes overnight; 00:00 to 00:00 is open all day."
        ),
    )

    class Meta:
        ordering = ["weekday", "opens_at"]
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {hours_text(self.opens_at, self.closes_at)}"

    def span_from(self, day: datetime.date, zone: datetime.tzinfo) -> tuple[datetime.datetime, datetime.datetime]:
        """When this row opens and closes if it starts on `day`, its clock times read in `zone`,
        as instants (UTC): on the night the clocks go back, a 1:30am closing is the first 1:30."""
        closes_on = day if self.closes_at > self.opens_at else day + datetime.timedelta(days=1)
        return (
            datetime.datetime.combine(day, self.opens_at, tzinfo=zone).astimezone(datetime.UTC),
            datetime.datetime.combine(closes_on, self.closes_at, tzinfo=zone).astimezone(datetime.UTC),
        )


class ClosureDate(models.Model):
    """A day the webchat is closed whatever the weekly hours say (bank holidays, training)."""

    date = models.DateField(_("date"), unique=True)
    reason = models.CharField(_("reason"), max_length=120, blank=True)

    class Meta:
        ordering = ["date"]
        verbose_name = _("closure date")
        verbose_name_plural = _("closure dates")

    def __str__(self) -> str:
        return f"{self.date:%d %B %Y}" + (f" ({self.reason})" if self.reason else "")


class CallbackRequest(models.Model):
    """A message left when nobody could chat, for a helper to answer by phone or email."""

    class Status(models.TextChoices):
        OPEN = "open", _("Waiting for a call back")
        CLAIMED = "claimed", _("Being handled")
        DONE = "done", _("Done")

    name = models.CharField(_("name"), max_length=80)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("email"), blank=True)
    message = models.TextField(_("message"))
    # Left in place of a chat, what the resident had written in it (the last few messages), so
    # that whoever calls back knows what they already said.
    earlier_messages = models.JSONField(_("written in the chat before"), default=list, blank=True)
    service = models.ForeignKey(
        "kiosk.Service", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("service")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.OPEN)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="claimed_callbacks"
    )
    client_address_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    # Chosen by the resident's client, so that the same request sent again after its answer
    # was lost (the connection went, the page reloaded) is recognised, not kept twice.
    client_id = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("left"), auto_now_add=True)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    # When the resident's details and message were deleted, the retention period after it was done.
    purged_at = models.DateTimeField(_("personal data deleted"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["client_id"], condition=~models.Q(client_id=""), name="chat_callbackrequest_client_id"
            )
        ]
        verbose_name = _("callback request")
        verbose_name_plural = _("callback requests")

    def __str__(self) -> str:
        return f"Callback request {self.pk} ({self.get_status_display()})"

    @property
    def claimer_left(self) -> bool:
        """Taken on by a helper whose account has since been deleted or deactivated: nobody
        will call back, so it is open to anyone again."""
        return self.status == self.Status.CLAIMED and (self.claimed_by_id is None or not self.claimed_by.is_active)


class CobrowseSession(models.Model):
    """A helper seeing a resident's page, with the resident's consent: the audit record.

    The page events themselves are relayed, never stored. A resident who starts from a code
    (on the phone to the council, no chat yet) has a session before any conversation: joining
    by the code gives it one, so the rest follows the same path as a request in a chat.
    """

    class Status(models.TextChoices):
        CODE_ISSUED = "code_issued", _("Code shown, waiting for a helper")
        REQUESTED = "requested", _("Consent asked")
        ACTIVE = "active", _("Sharing")
        DECLINED = "declined", _("Declined")
        STOPPED = "stopped", _("Stopped")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, null=True, blank=True, related_name="cobrowse_sessions"
    )
    status = models.CharField(_("status"), max_length=16, choices=Status)
    helper = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # A keyed hash of the six-digit code; the code itself is shown to the resident only.
    code_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    code_expires_at = models.DateTimeField(null=True, blank=True)
    # Who asked for the code, as a keyed hash of their network address, to limit codes per address.
    client_address_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    requested_at = models.DateTimeField(_("consent asked"), null=True, blank=True)
    responded_at = models.DateTimeField(_("resident answered"), null=True, blank=True)
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    stopped_by = models.CharField(_("stopped by"), max_length=16, choices=Conversation.EndedBy, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("co-browse session")
        verbose_name_plural = _("co-browse sessions")

    def __str__(self) -> str:
        return f"Co-browse {self.pk} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in (self.Status.REQUESTED, self.Status.ACTIVE)


class CobrowseCodeMiss(models.Model):
    """A screen-sharing code a helper typed that opened nothing.

    Six digits can be guessed, and a helper who guesses a live code is shown that resident's
    screen as soon as they agree, which a resident waiting for the council's call would do.
    So each helper gets only so many misses an hour, counted here across every socket and
    process.
    """

    helper = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(_("tried"), default=timezone.now)

    class Meta:
        verbose_name = _("wrong co-browse code")
        verbose_name_plural = _("wrong co-browse codes")
        indexes = [models.Index(fields=["helper", "created_at"], name="chat_cobrowse_miss_window")]

    def __str__(self) -> str:
        return f"Wrong code by user {self.helper_id} at {self.created_at:%Y-%m-%d %H:%M}"
