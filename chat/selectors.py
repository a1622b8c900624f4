"""Reads of conversations and messages."""

import datetime
from collections.abc import Collection
from typing import Any, Literal

from django.conf import settings
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from chat.availability import chat_availability
from chat.models import CallbackRequest, Conversation, Message
from config.clock import clock_text, date_text, date_time_text

SNAPSHOT_MESSAGE_LIMIT = 200


# What the conversation payloads read (chat.events): fetched with the row, not per payload.
PAYLOAD_RELATIONS = ("assigned_helper", "service", "kiosk_visit__device")


def conversation_get_by_token(*, token_hash: str, now: datetime.datetime | None = None) -> Conversation | None:
    """The conversation this token opens, or None once it ended more than the token's lifetime ago."""
    conversation = Conversation.objects.select_related(*PAYLOAD_RELATIONS).filter(token_hash=token_hash).first()
    if conversation is None or conversation_token_expired(conversation, now=now):
        return None
    return conversation


def token_expired_before(now: datetime.datetime | None = None) -> datetime.datetime:
    """The tokens of conversations that ended before this moment have expired."""
    return (now or timezone.now()) - datetime.timedelta(minutes=settings.CHAT_TOKEN_TTL_MINUTES)


def conversation_token_expired(conversation: Conversation, *, now: datetime.datetime | None = None) -> bool:
    """Whether the conversation ended more than the token's lifetime ago: its resident can no
    longer reach it, even from a socket that has stayed open since."""
    return conversation.ended_at is not None and conversation.ended_at < token_expired_before(now)


def conversation_helper_id(*, conversation_id: int) -> int | None:
    """Who holds the conversation now (None: nobody, or no such conversation)."""
    return Conversation.objects.filter(pk=conversation_id).values_list("assigned_helper_id", flat=True).first()


def conversation_token_hash(*, conversation_id: int) -> str | None:
    return Conversation.objects.filter(pk=conversation_id).values_list("token_hash", flat=True).first()


def conversation_get(*, conversation_id: int) -> Conversation | None:
    return Conversation.objects.select_related(*PAYLOAD_RELATIONS).filter(pk=conversation_id).first()


def queue_state() -> dict[str, Any]:
    """What a waiting resident is told: the queue's order, the wait a place, and whether
    webchat is open with a helper online (if not, they may leave a message instead); only
    the order when nobody waits."""
    waiting = list(conversation_list_waiting().values_list("pk", flat=True))
    if not waiting:
        # Nobody to tell (every console reconnecting after a restart asks at once).
        return {"waiting": [], "seconds_per_place": 0, "available": None, "reason": None}
    availability = chat_availability()
    return {
        "waiting": waiting,
        "seconds_per_place": queue_seconds_per_place(),
        "available": availability.available,
        "reason": availability.reason,
    }


def conversation_list_waiting() -> QuerySet[Conversation]:
    """The queue, oldest first."""
    return (
        Conversation.objects.filter(status=Conversation.Status.WAITING)
        .select_related(*PAYLOAD_RELATIONS)
        .order_by("waiting_since", "pk")
    )


def conversation_list_active() -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(status=Conversation.Status.ACTIVE)
        .select_related(*PAYLOAD_RELATIONS)
        .order_by("assigned_at", "pk")
    )


def conversation_list_active_for_helper(*, helper_id: int) -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(status=Conversation.Status.ACTIVE, assigned_helper_id=helper_id)
        .select_related(*PAYLOAD_RELATIONS)
        .order_by("assigned_at", "pk")
    )


def message_list_after(*, conversation_id: int, after_seq: int, limit: int = SNAPSHOT_MESSAGE_LIMIT) -> list[Message]:
    """Up to `limit` messages with a sequence number above `after_seq`, in order."""
    return list(Message.objects.filter(conversation_id=conversation_id, seq__gt=after_seq).order_by("seq")[:limit])


def conversation_last_seqs(*, conversation_ids: list[int]) -> dict[int, int]:
    return dict(Conversation.objects.filter(pk__in=conversation_ids).values_list("pk", "last_seq"))


def conversation_get_for_helper(*, conversation_id: int, helper_id: int) -> Conversation | None:
    """The conversation if it is assigned to this helper, else None."""
    return (
        Conversation.objects.select_related(*PAYLOAD_RELATIONS)
        .filter(pk=conversation_id, assigned_helper_id=helper_id)
        .first()
    )


ExpiryReason = Literal["unanswered", "abandoned"]


def conversation_expired_q(reason: ExpiryReason, *, before: datetime.datetime) -> Q:
    """Conversations that time out for `reason` as of `before`. "unanswered": still waiting,
    the current wait begun before then (help given before a helper put one back in the queue
    does not count); "abandoned": open, the resident without a connection since before then."""
    if reason == "unanswered":
        return Q(status=Conversation.Status.WAITING, queued_at__lt=before)
    if reason == "abandoned":
        return ~Q(status=Conversation.Status.ENDED) & Q(visitor_last_seen_at__lt=before)
    raise ValueError(f"no such expiry: {reason!r}")


def conversation_list_expired(reason: ExpiryReason, *, before: datetime.datetime) -> list[int]:
    """Ids of the conversations `conversation_expired_q` matches."""
    return list(Conversation.objects.filter(conversation_expired_q(reason, before=before)).values_list("pk", flat=True))


def conversation_list_silent_visitors(*, before: datetime.datetime) -> list[tuple[int, datetime.datetime]]:
    """(id, last seen) of open conversations whose resident counts as present but has not been
    seen since before `before`."""
    return list(
        Conversation.objects.not_ended()
        .filter(visitor_left_at__isnull=True, visitor_last_seen_at__lt=before)
        .values_list("pk", "visitor_last_seen_at")
    )


RECENT_WAITS = 50
MIN_SECONDS_PER_PLACE = 30
MAX_SECONDS_PER_PLACE = 15 * 60
# Routed this soon after it queued, a chat went to an advisor who was free: nobody waited.
ROUTED_AT_ONCE = datetime.timedelta(seconds=2)


def queue_seconds_per_place(*, now: datetime.datetime | None = None) -> int:
    """How long each place in the queue has recently taken, or the configured default without
    history.

    Each of the last conversations accepted in the past two hours waited some time from some
    place: behind everyone still waiting when its wait began. Its wait divided by that place is
    what one place took then, and the estimate is the mean of those. (The mean wait alone, times
    a resident's place, counted the places ahead twice: a busy queue's estimate came out several
    times too long.) A wait begins at `queued_at`, so the help given before a helper handed a
    conversation back to the queue is not counted as waiting. Conversations that never queued
    (started by a helper from a screen-sharing code) say nothing about the queue and are left out,
    and so do those routed to a free advisor as they queued: a resident is shown an estimate
    only when nobody was free, and those near-zero waits would pull it far below the waits of
    anyone who did wait.
    The places are counted in the database, one indexed range of `queued_at` each: in Python
    they cost tens of milliseconds a queue change at busy times (bench/queue_estimate.py).
    """
    now = now or timezone.now()
    began = OuterRef("queued_at")
    # Who was ahead when that wait began: in the queue's order (who has waited since first, then
    # who was created first), waiting then, and not for longer than a conversation may wait.
    ahead = (
        Conversation.objects.filter(
            Q(waiting_since__lt=OuterRef("waiting_since"))
            | Q(waiting_since=OuterRef("waiting_since"), pk__lt=OuterRef("pk")),
            queued_at__lte=began,
            queued_at__gte=began - datetime.timedelta(minutes=settings.CHAT_WAITING_TIMEOUT_MINUTES),
        )
        .exclude(queued_at=F("assigned_at"))
        .filter(Q(assigned_at__isnull=True) | Q(assigned_at__gt=began))
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=began))
        .order_by()
        .values(counted=Value(1))
        .annotate(number=Count("*"))
        .values("number")
    )
    accepted = list(
        Conversation.objects.filter(assigned_at__gte=now - datetime.timedelta(hours=2), queued_at__lt=F("assigned_at"))
        .exclude(assigned_automatically=True, assigned_at__lt=F("queued_at") + ROUTED_AT_ONCE)
        .order_by("-assigned_at")
        .annotate(ahead=Coalesce(Subquery(ahead), 0))
        .values_list("queued_at", "assigned_at", "ahead")[:RECENT_WAITS]
    )
    if not accepted:
        return settings.CHAT_DEFAULT_WAIT_MINUTES * 60
    per_place = [(assigned - began).total_seconds() / (ahead + 1) for began, assigned, ahead in accepted]
    return int(min(MAX_SECONDS_PER_PLACE, max(MIN_SECONDS_PER_PLACE, sum(per_place) / len(per_place))))


TRANSCRIPT_INDENT = "    "


def conversation_transcript_text(*, conversation: Conversation) -> str:
    """The conversation as plain text, for download or email."""
    lines = [
        f"{settings.COUNCIL_NAME}: conversation {conversation.pk}",
        f"Started {date_time_text(conversation.created_at)}",
        "",
    ]
    day = timezone.localdate(conversation.created_at)
    for message in Message.objects.filter(conversation=conversation).order_by("seq"):
        # Entries carry only the time, so a chat running past midnight says when a new day begins.
        if timezone.localdate(message.created_at) != day:
            day = timezone.localdate(message.created_at)
            lines += ["", date_text(day)]
        when = clock_text(message.created_at)
        # A message's further lines are indented: only an entry starts a line with its time, so
        # nobody can write what reads as another entry ("[10am] Advisor: pay at …").
        body = ("\n" + TRANSCRIPT_INDENT).join(message.body.splitlines())
        if message.author_kind == Message.AuthorKind.SYSTEM:
            lines.append(f"[{when}] {body}")
        else:
            name = message.author_name or ("You" if message.author_kind == Message.AuthorKind.VISITOR else "Advisor")
            lines.append(f"[{when}] {name}: {body}")
    return "\n".join(lines) + "\n"


def callback_ids_in_hand(*, helpers: QuerySet) -> list[int]:
    """Call-back requests these helpers have taken on and not done."""
    in_hand = CallbackRequest.objects.filter(claimed_by__in=helpers, status=CallbackRequest.Status.CLAIMED)
    return list(in_hand.values_list("pk", flat=True))


def callback_list_pending() -> QuerySet[CallbackRequest]:
    """Call-back requests not done yet: waiting for someone, or taken on by someone."""
    return CallbackRequest.objects.exclude(status=CallbackRequest.Status.DONE).select_related("service", "claimed_by")


def conversation_list_unanswered_assignments(*, before: datetime.datetime) -> list[int]:
    """Ids of conversations routing gave a helper before `before` (candidates to requeue)."""
    return list(
        Conversation.objects.filter(
            status=Conversation.Status.ACTIVE, assigned_automatically=True, assigned_at__lt=before
        ).values_list("pk", flat=True)
    )


def conversation_list_helper_gone(*, present_helper_ids: Collection[int]) -> list[int]:
    """Ids of active conversations whose helper is not among `present_helper_ids`, but for
    kiosk requests a helper answers in person."""
    return list(
        Conversation.objects.filter(status=Conversation.Status.ACTIVE, helper_in_person=False)
        .exclude(assigned_helper_id__in=present_helper_ids)
        .values_list("pk", flat=True)
    )


def conversation_active_counts(*, helper_ids: list[int]) -> dict[int, int]:
    """How many active conversations each of these helpers holds."""
    from django.db.models import Count

    rows = (
        Conversation.objects.filter(status=Conversation.Status.ACTIVE, assigned_helper_id__in=helper_ids)
        .values("assigned_helper_id")
        .annotate(count=Count("pk"))
    )
    return {row["assigned_helper_id"]: row["count"] for row in rows}


def note_list(*, conversation_id: int):
    from chat.models import InternalNote

    return InternalNote.objects.filter(conversation_id=conversation_id).order_by("created_at")
