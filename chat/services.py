"""Writes to conversations and messages: each in one transaction, broadcast after commit."""

import datetime
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Collection

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Model, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import events, selectors, signals
from chat.availability import chat_availability
from chat.error_messages import error_message
from chat.models import CallbackRequest, CobrowseCodeMiss, CobrowseSession, Conversation, InternalNote, Message
from config import async_db, mail, realtime
from config.limits import client_address_hash, hourly_limit_reached
from kiosk import services as kiosk_services
from kiosk.models import KioskDevice, Service

logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 2000


def chat_error(code: str) -> ValidationError:
    return ValidationError(error_message(code), code=code)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _after_commit_kiosk_help_changed(device_id: int) -> None:
    """Tell the kiosk app whether its device still has a help request open."""

    def update() -> None:
        open_requests = Conversation.objects.filter(
            kiosk_visit__device_id=device_id,
            status__in=[Conversation.Status.WAITING, Conversation.Status.ACTIVE],
            handed_over_at__isnull=True,
        ).exists()
        kiosk_services.device_set_help_requested(device_id=device_id, requested=open_requests)

    transaction.on_commit(update)


def _rotate_token(conversation: Conversation) -> str:
    """Give the conversation a new token: the old one opens nothing from now on, and the
    resident sockets that opened it with the old one let it go."""
    token = secrets.token_urlsafe(32)
    conversation.token_hash = token_hash(token)
    conversation.save(update_fields=["token_hash"])
    events.broadcast_token_changed(conversation)
    return token


def kiosk_visit_wipe(*, visit_id: int) -> None:
    """A kiosk visit ended: end its open conversations and make all its tokens useless, but
    for one the resident took to their phone, which goes on there."""
    wiped = Conversation.objects.filter(kiosk_visit_id=visit_id, handed_over_at__isnull=True)
    for conversation_id in wiped.values_list("pk", flat=True):
        with transaction.atomic():
            conversation, _ended = conversation_end(
                conversation_id=conversation_id, ended_by=Conversation.EndedBy.SYSTEM, reason="kiosk_wiped"
            )
            _rotate_token(conversation)


@transaction.atomic
def kiosk_visit_handover(visit_id: int) -> str | None:
    """Move the visit's open conversation to the resident's phone: a new token, returned once;
    the kiosk's copy stops working, the kiosk no longer counts as asking for help, and help
    asked for in person goes on as a chat (a system message tells both sides)."""
    conversation = (
        # The conversation's row only: the visit's is the kiosk app's, which a wipe locks.
        Conversation.objects.select_for_update(of=("self",))
        .filter(kiosk_visit_id=visit_id, status__in=[Conversation.Status.WAITING, Conversation.Status.ACTIVE])
        .select_related("kiosk_visit")
        .order_by("-created_at")
        .first()
    )
    if conversation is None:
        return None
    conversation.handed_over_at = timezone.now()
    # The resident is leaving the kiosk: help asked for in person goes on as a chat.
    conversation.helper_in_person = False
    conversation.save(update_fields=["handed_over_at", "helper_in_person"])
    # The resident agreed to show the kiosk's screen, not their phone's: the phone would
    # otherwise take up a share it finds live, and the kiosk's screen is the next visitor's.
    # Stopped while the kiosk still follows the chat, so it stops sending its page too.
    _cobrowse_stop_live(
        conversation, text=_("Screen sharing stopped because the resident moved this chat to their phone.")
    )
    # The kiosk's sockets let go next (the token's change is announced before the message
    # below), so the kiosk never shows what follows.
    token = _rotate_token(conversation)
    _system_message(conversation, _("The resident moved this chat from the kiosk to their phone."))
    _after_commit_kiosk_help_changed(conversation.kiosk_visit.device_id)
    return token


def limited_address_hash(address: str | None, kiosk_device: KioskDevice | None) -> str:
    """What the per-address limits count a resident's socket by: its address's keyed hash,
    or none on an enrolled kiosk, which serves one resident after another from one address."""
    return "" if kiosk_device is not None else client_address_hash(address)


def _limit_per_address(
    models: list[type[Model]], address_hash: str, now: datetime.datetime, *, limit: int, refusal: str
) -> None:
    """Refuse (ValidationError `refusal`) once `limit` rows of `models` were created from one
    network address in the hour before `now`. No address (a kiosk's, see
    `limited_address_hash`, or none known): no limit."""
    if address_hash:
        counted = [model.objects.filter(client_address_hash=address_hash) for model in models]
        if hourly_limit_reached(counted, f"address:{address_hash}", now, limit=limit):
            raise chat_error(refusal)


def _locked_conversation(conversation_id: int, *, related: bool = True, token_hash: str | None = None) -> Conversation:
    """The conversation row, locked until the transaction ends (every state change takes it).

    `related=False` skips the joins for writes that need only the row's own fields (a note).
    `token_hash` is that of the token a resident's socket opened the conversation with: if
    the conversation has another now (it moved to another device), or that token has expired
    (the socket stayed open long after the end), that socket may no longer act in it, and
    gets `conversation_not_found` as if it resumed with that token now.
    """
    queryset = Conversation.objects.select_for_update(of=("self",))
    if related:
        queryset = queryset.select_related("assigned_helper", "service")
    try:
        conversation = queryset.get(pk=conversation_id)
    except Conversation.DoesNotExist:
        raise chat_error("conversation_not_found") from None
    if token_hash is not None and (
        token_hash != conversation.token_hash or selectors.conversation_token_expired(conversation)
    ):
        raise chat_error("conversation_not_found")
    return conversation


def _next_seq(conversation: Conversation) -> int:
    conversation.last_seq += 1
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=conversation.last_seq)
    return conversation.last_seq


def _system_message(conversation: Conversation, body: str) -> Message:
    message = Message.objects.create(
        conversation=conversation,
        seq=_next_seq(conversation),
        author_kind=Message.AuthorKind.SYSTEM,
        body=body,
    )
    events.broadcast_message_created(message)
    return message


@transaction.atomic
def conversation_start(
    *,
    channel: str = Conversation.Channel.WEB,
    visitor_name: str = "",
    visitor_email: str = "",
    service: Service | None = None,
    address_hash: str = "",
    kiosk_device: KioskDevice | None = None,
    helper_in_person: bool = False,
    start_key: str = "",
    now: datetime.datetime | None = None,
) -> tuple[Conversation, str]:
    """Open a conversation in the waiting queue and return it with the resident's secret token.

    A `start_key` (the client's secret for this start) makes a start sent again, after its
    answer was lost, return the conversation the first one opened, with a new token (only
    the old token's hash is kept), and change nothing else.

    The token is returned once and only its hash is stored. Helpers' consoles are told
    (`chat.conversation_queued`) and waiting residents see the queue move, after the commit.
    From an enrolled kiosk it is a kiosk help request, part of the kiosk's current visit
    (started if need be); only there may the resident ask for a helper in person.
    Raises ValidationError `chat_unavailable` outside opening hours or with no helper online,
    and `too_many_conversations` past the per-address hourly limit, which call-back requests share.
    """
    now = now or timezone.now()
    key_hash = token_hash(start_key) if start_key else ""
    if again := _start_again(key_hash, now):
        return again
    if not chat_availability(now=now).available:
        raise chat_error("chat_unavailable")
    visit = None
    if kiosk_device is not None:
        channel = Conversation.Channel.KIOSK
        visit = kiosk_services.visit_start(kiosk_device)
    else:
        helper_in_person = False
    try:
        _limit_per_address(
            [Conversation, CallbackRequest],
            address_hash,
            now,
            limit=settings.CHAT_STARTS_PER_ADDRESS_PER_HOUR,
            refusal="too_many_conversations",
        )
    except ValidationError:
        # The same start sent twice at once waited here for the first, which may have opened
        # the conversation it asks for (and counted against the address) meanwhile.
        if again := _start_again(key_hash, now):
            return again
        raise
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                channel=channel,
                token_hash=token_hash(token),
                start_key_hash=key_hash,
                visitor_name=visitor_name,
                visitor_email=visitor_email,
                service=service,
                client_address_hash=address_hash,
                waiting_since=now,
                queued_at=now,
                visitor_last_seen_at=now,
                kiosk_visit=visit,
                helper_in_person=helper_in_person,
            )
    except IntegrityError:
        # The same start twice at once, the other taken first (on another process, say).
        if again := _start_again(key_hash, now):
            return again
        raise
    if visit is not None:
        _after_commit_kiosk_help_changed(visit.device_id)
    events.broadcast_conversation_queued(conversation)
    events.signal_after_commit(signals.conversation_waiting, conversation_id=conversation.pk)
    logger.info("conversation %s started on %s", conversation.pk, channel)
    return conversation, token


def _start_again(key_hash: str, now: datetime.datetime) -> tuple[Conversation, str] | None:
    """The conversation a start with this key opened, with a new token, if its resident may
    still reach it.

    Not once its token has expired, nor once its kiosk visit was wiped (the key then belonged
    to a resident who has gone); the old conversation then gives the key up.
    """
    if not key_hash:
        return None
    started = Conversation.objects.select_for_update().filter(start_key_hash=key_hash).first()
    if started is None:
        return None
    if selectors.conversation_token_expired(started, now=now) or started.ended_reason == "kiosk_wiped":
        Conversation.objects.filter(pk=started.pk).update(start_key_hash="")
        return None
    logger.info("conversation %s start repeated", started.pk)
    return started, _rotate_token(started)


class _AlreadyStored(Exception):
    """A resend of a stored message; raised inside the generic path's transaction, it also
    gives back the sequence number taken."""

    def __init__(self, message: Message):
        self.message = message


def message_create(
    *,
    conversation_id: int,
    author_kind: str,
    body: str,
    client_id: str | None = None,
    author: AbstractBaseUser | None = None,
    token_hash: str | None = None,
) -> tuple[Message, bool]:
    """Store a message with the next sequence number and announce it to the conversation group.

    A resend with a `client_id` already stored returns the stored message and `False`, and
    announces it again: the process that stored it may have stopped before announcing it
    (the author resends because no answer came), and a socket never gets one `seq` twice,
    so only sockets that missed it see it. A resident's socket passes the `token_hash` it
    opened the conversation with, and is refused as `conversation_not_found` once the
    conversation has another (it moved to another device). Raises ValidationError
    `conversation_not_found`, `conversation_ended`, `not_assigned` (a helper who does not hold
    the conversation), `duplicate_client_id` (an id reused for other text) or `rate_limited`.
    """
    store = _message_store_postgresql if connection.vendor == "postgresql" else _message_store_generic
    params = _message_store_params(
        conversation_id=conversation_id,
        author_kind=author_kind,
        body=body,
        client_id=client_id,
        author=author,
        token_hash=token_hash,
    )
    try:
        message, created = store(params), True
    except _AlreadyStored as stored:
        message, created = stored.message, False
    events.broadcast_message_created(message)
    return message, created


async def amessage_create(
    *,
    conversation_id: int,
    author_kind: str,
    body: str,
    client_id: str | None = None,
    author: AbstractBaseUser | None = None,
    token_hash: str | None = None,
) -> tuple[Message, bool]:
    """`message_create` for consumers, from the event loop; the same rules and results.

    On PostgreSQL the one statement that stores the message runs on the loop
    (config.async_db) and the message is announced as soon as it returns, committed;
    elsewhere `message_create` runs in a worker thread.
    """
    fields = {
        "conversation_id": conversation_id,
        "author_kind": author_kind,
        "body": body,
        "client_id": client_id,
        "author": author,
        "token_hash": token_hash,
    }
    if not async_db.available():
        return await async_db.db(message_create)(**fields)
    params = _message_store_params(**fields)

    async def store() -> tuple[Message, bool]:
        # Stored once however often it runs with a client id: a resend returns the stored row.
        row = await async_db.fetchone(STORE_MESSAGE_SQL, params, idempotent=params["client_id"] is not None)
        message, created = _message_from_store_row(row, params), True
        if message is None:
            message, created = await async_db.db(_stored_resend)(params), False
        await events.asend_message_created(message)
        return message, created

    return await realtime.run_shielded(store)


# Every chat message is stored here, so this path is written in SQL rather than with the ORM,
# whose query building cost more than the database did (bench/store_message.py; the figures
# are in docs/performance.md). Whichever path, the steps are those of every other write
# here: lock the conversation row, check, number, insert.

# PostgreSQL: one round trip and no BEGIN/COMMIT; the function (migrations 0006, 0021) does the
# steps below in PL/pgSQL and refuses without writing anything.
STORE_MESSAGE_SQL = """
    SELECT outcome, message_id, message_seq, message_author_name, message_created_at
    FROM chat_message_store(
        %(conversation_id)s, %(author_kind)s, %(author_id)s, %(helper_name)s, %(body)s, %(client_id)s, %(limit)s,
        %(token_hash)s
    )
"""


def _message_store_postgresql(params: dict) -> Message:
    with connection.cursor() as cursor:
        cursor.execute(STORE_MESSAGE_SQL, params)
        row = cursor.fetchone()
    message = _message_from_store_row(row, params)
    if message is None:
        raise _AlreadyStored(_stored_resend(params))
    return message


def _message_store_params(
    *,
    conversation_id: int,
    author_kind: str,
    body: str,
    client_id: str | None,
    author: AbstractBaseUser | None,
    token_hash: str | None = None,
) -> dict:
    return {
        "conversation_id": conversation_id,
        "author_kind": author_kind,
        "author_id": author.pk if author is not None else None,
        "helper_name": events.helper_display_name(author) if author_kind == Message.AuthorKind.HELPER else None,
        "body": body,
        "client_id": client_id or None,
        # Counted in the database so the limit holds however many sockets or processes are used.
        "limit": settings.CHAT_MESSAGES_PER_MINUTE,
        "token_hash": token_hash,
    }


def _message_from_store_row(row: tuple, params: dict) -> Message | None:
    """The message `chat_message_store` created from `params`; None for a resend of a stored
    message (`_stored_resend` reads it); raises the refusal's ValidationError."""
    outcome, pk, seq, author_name, created_at = row
    if outcome == "stored":
        return None
    if outcome != "created":
        raise chat_error(outcome)
    return _stored_message(params, pk=pk, seq=seq, author_name=author_name, created_at=created_at)


def _stored_message(params: dict, **stored) -> Message:
    message = Message(
        conversation_id=params["conversation_id"],
        author_kind=params["author_kind"],
        author_id=params["author_id"],
        body=params["body"],
        client_id=params["client_id"],
        **stored,
    )
    # The row is stored: a later save() updates it rather than inserting another.
    message._state.adding = False
    message._state.db = connection.alias
    return message


def _stored_resend(params: dict) -> Message | None:
    """The stored message with the client id of `params`, if any: a resend gets it back,
    whatever has changed since; the same id with other text, or from the other side, is
    refused. Only on resends and refusals, so the ORM is fine here."""
    if params["client_id"] is None:
        return None
    stored = Message.objects.filter(conversation_id=params["conversation_id"], client_id=params["client_id"]).first()
    if stored is not None and (stored.author_kind, stored.body) != (params["author_kind"], params["body"]):
        raise chat_error("duplicate_client_id")
    return stored


# SQLite (and any other database): two statements in a transaction.
LOCK_AND_NUMBER_SQL = """
    UPDATE chat_conversation SET last_seq = last_seq + 1 WHERE id = %(conversation_id)s
    RETURNING last_seq, status, assigned_helper_id, visitor_name, token_hash
"""
# Inserts nothing when the client id is stored already or the author has reached the
# per-minute limit. Run after the lock is taken, it sees every message committed before.
INSERT_MESSAGE_SQL = """
    INSERT INTO chat_message (conversation_id, seq, author_kind, author_id, author_name, body, client_id, created_at)
    SELECT
        %(conversation_id)s, %(seq)s, %(author_kind)s, %(author_id)s, %(author_name)s, %(body)s, %(client_id)s,
        %(created_at)s
    WHERE NOT EXISTS (
        SELECT 1 FROM chat_message WHERE conversation_id = %(conversation_id)s AND client_id = %(client_id)s
    )
    AND (
        SELECT COUNT(*) FROM chat_message
        WHERE conversation_id = %(conversation_id)s AND author_kind = %(author_kind)s AND created_at >= %(since)s
    ) < %(limit)s
    RETURNING id
"""


@transaction.atomic
def _message_store_generic(params: dict) -> Message:
    """Lock, number, check and insert in a transaction; raises `_AlreadyStored` for a resend."""
    conversation_id, author_kind = params["conversation_id"], params["author_kind"]
    db_time = Message._meta.get_field("created_at").get_db_prep_value
    with connection.cursor() as cursor:
        # The update takes the row lock (SQLite: the write lock) and the next number at once;
        # every refusal below rolls the number back with the transaction.
        cursor.execute(LOCK_AND_NUMBER_SQL, {"conversation_id": conversation_id})
        row = cursor.fetchone()
        if row is None:
            raise chat_error("conversation_not_found")
        seq, status, assigned_helper_id, visitor_name, current_token_hash = row
        if params["token_hash"] not in (None, current_token_hash):
            raise chat_error("conversation_not_found")
        # Read once the lock is held, so times follow sequence numbers.
        now = timezone.now()
        if status == Conversation.Status.ENDED:
            _raise_if_stored(params)
            raise chat_error("conversation_ended")
        if author_kind == Message.AuthorKind.HELPER and assigned_helper_id != params["author_id"]:
            _raise_if_stored(params)
            raise chat_error("not_assigned")
        author_name = params["helper_name"] if author_kind == Message.AuthorKind.HELPER else visitor_name
        cursor.execute(
            INSERT_MESSAGE_SQL,
            {
                **params,
                "seq": seq,
                "author_name": author_name,
                "created_at": db_time(now, connection),
                "since": db_time(now - datetime.timedelta(minutes=1), connection),
            },
        )
        inserted = cursor.fetchone()
        if inserted is None:
            _raise_if_stored(params)
            raise chat_error("rate_limited")
    return _stored_message(params, pk=inserted[0], seq=seq, author_name=author_name, created_at=now)


def _raise_if_stored(params: dict) -> None:
    stored = _stored_resend(params)
    if stored is not None:
        raise _AlreadyStored(stored)


@transaction.atomic
def conversation_assign(*, conversation_id: int, helper: AbstractBaseUser, automatically: bool = False) -> Conversation:
    """Give a waiting conversation to `helper`; of two helpers accepting at once, one wins.

    `automatically` marks a routing decision: unanswered in time, it returns to the queue.
    Adds a "joined" system message, tells every console the conversation left the queue and
    tells the resident who is helping. Raises ValidationError `conversation_gone` when it is
    no longer waiting.
    """
    conversation = _locked_conversation(conversation_id)
    if conversation.status != Conversation.Status.WAITING:
        raise chat_error("conversation_gone")
    _give_to(conversation, helper, automatically=automatically)
    _system_message(conversation, _("%(name)s joined the conversation.") % {"name": events.helper_display_name(helper)})
    events.broadcast_conversation_assigned(conversation)
    logger.info("conversation %s assigned to helper %s", conversation.pk, helper.pk)
    return conversation


def _give_to(conversation: Conversation, helper: AbstractBaseUser, *, automatically: bool) -> None:
    conversation.status = Conversation.Status.ACTIVE
    conversation.assigned_helper = helper
    conversation.assigned_at = timezone.now()
    conversation.assigned_automatically = automatically
    conversation.save(update_fields=["status", "assigned_helper", "assigned_at", "assigned_automatically"])


def _back_to_queue(conversation: Conversation, *, helped: bool) -> None:
    """Waiting again, keeping its original `waiting_since`: it goes back to the head of the queue.

    After help (`helped`), a new wait begins now; a conversation nobody answered is still in
    the wait it began with, which the queue's estimate counts whole.
    """
    conversation.status = Conversation.Status.WAITING
    conversation.released_by_id = conversation.assigned_helper_id
    conversation.assigned_helper = None
    conversation.assigned_at = None
    conversation.assigned_automatically = False
    if helped:
        conversation.queued_at = timezone.now()
    conversation.save(
        update_fields=["status", "released_by", "assigned_helper", "assigned_at", "assigned_automatically", "queued_at"]
    )


@transaction.atomic
def conversation_transfer(
    *,
    conversation_id: int,
    by_helper: AbstractBaseUser,
    to_helper: AbstractBaseUser | None = None,
    note: str = "",
    by_supervisor: bool = False,
) -> Conversation:
    """Hand an active conversation to another helper, or back to the queue, with a note.

    Only its helper (or a supervisor, `by_supervisor`) may. The resident sees a system
    message; the note stays with the staff. Raises `not_assigned`, `conversation_ended`,
    `already_waiting` (back to a queue it is in would lose its place there) and
    `already_assigned` (to the helper who has it: the resident would be told of a move
    that is none, and lose a screen share).
    """
    conversation = _locked_conversation(conversation_id)
    if conversation.is_ended:
        raise chat_error("conversation_ended")
    if conversation.assigned_helper_id != by_helper.pk and not by_supervisor:
        raise chat_error("not_assigned")
    if to_helper is None and conversation.status == Conversation.Status.WAITING:
        raise chat_error("already_waiting")
    if to_helper is not None and conversation.assigned_helper_id == to_helper.pk:
        raise chat_error("already_assigned")
    # The staff hear of the note before the resident hears of the move, as the new helper
    # reads it before answering.
    if note:
        _note(conversation, by_helper, _("Transfer note: %(note)s") % {"note": note})
    if to_helper is not None:
        previous_helper_id = conversation.assigned_helper_id
        # Consent was given to one helper: it does not pass to the next.
        _cobrowse_stop_live(conversation, text=_("Screen sharing stopped because another helper is taking over."))
        _give_to(conversation, to_helper, automatically=False)
        _system_message(
            conversation, _("You are being transferred to %(name)s.") % {"name": events.helper_display_name(to_helper)}
        )
        events.broadcast_conversation_assigned(conversation)
        events.signal_after_commit(signals.conversation_released, helper_id=previous_helper_id)
    else:
        _return_to_queue(
            conversation, helped=True, text=_("You are back in the queue. The next available helper will join you.")
        )
    logger.info(
        "conversation %s transferred by %s to %s", conversation.pk, by_helper.pk, getattr(to_helper, "pk", "queue")
    )
    return conversation


def conversation_requeue_unanswered(*, answer_within_seconds: int, now: datetime.datetime | None = None) -> list[int]:
    """Return to the queue every conversation given automatically whose helper has not
    written within `answer_within_seconds`. Returns their ids."""
    before = (now or timezone.now()) - datetime.timedelta(seconds=answer_within_seconds)
    requeued = []
    for conversation_id in selectors.conversation_list_unanswered_assignments(before=before):
        with transaction.atomic():
            conversation = _locked_conversation(conversation_id)
            still_unanswered = (
                conversation.status == Conversation.Status.ACTIVE
                and conversation.assigned_automatically
                and conversation.assigned_at < before
                and not conversation.messages.filter(
                    author_kind=Message.AuthorKind.HELPER, created_at__gte=conversation.assigned_at
                ).exists()
            )
            if not still_unanswered:
                continue
            helper_id = conversation.assigned_helper_id
            _return_to_queue(
                conversation,
                helped=False,
                text=_("Sorry for the wait. You are back in the queue, ahead of those who came after you."),
            )
            requeued.append(conversation_id)
            logger.info("conversation %s returned to the queue unanswered by helper %s", conversation_id, helper_id)
    return requeued


def conversation_requeue_helper_gone(*, helper_ids_present: Callable[[], Collection[int]]) -> list[int]:
    """Put back in the queue, ahead of those who came after it, every active conversation
    whose helper is not among `helper_ids_present()` (no console of theirs open for longer
    than the council allows), and tell its resident, who would otherwise wait for ever for a
    reply. Asked again for each conversation, under its lock: a helper back meanwhile keeps
    it. A helper who went to a kiosk in person is not expected at a console. Returns their ids.
    """
    requeued = []
    for conversation_id in selectors.conversation_list_helper_gone(present_helper_ids=helper_ids_present()):
        with transaction.atomic():
            conversation = _locked_conversation(conversation_id)
            if (
                conversation.status != Conversation.Status.ACTIVE
                or conversation.helper_in_person
                or conversation.assigned_helper_id is None
                or conversation.assigned_helper_id in helper_ids_present()
            ):
                continue
            helper = conversation.assigned_helper
            _return_to_queue(
                conversation,
                helped=True,
                text=_("%(name)s has left the chat. You are back in the queue, ahead of those who came after you.")
                % {"name": events.helper_display_name(helper)},
            )
            requeued.append(conversation_id)
            logger.info("conversation %s returned to the queue: helper %s went offline", conversation_id, helper.pk)
    return requeued


def _return_to_queue(conversation: Conversation, *, helped: bool, text: str) -> None:
    """Back at the head of the queue, with a system message saying why: the consoles see it
    waiting, routing may give it to someone and fill the place its helper had. Screen
    sharing stops: consent was given to the helper it leaves."""
    helper_id = conversation.assigned_helper_id
    _cobrowse_stop_live(conversation, text=_("Screen sharing stopped because you are back in the queue."))
    _back_to_queue(conversation, helped=helped)
    _system_message(conversation, text)
    events.broadcast_conversation_queued(conversation)
    events.broadcast_conversation_changed(conversation)
    events.signal_after_commit(signals.conversation_released, helper_id=helper_id)
    events.signal_after_commit(signals.conversation_waiting, conversation_id=conversation.pk)


def _note(conversation: Conversation, author: AbstractBaseUser, body: str) -> InternalNote:
    note = InternalNote.objects.create(
        conversation=conversation, author=author, author_name=events.staff_display_name(author), body=body
    )
    events.broadcast_note_created(note)
    return note


@transaction.atomic
def note_create(
    *, conversation_id: int, author: AbstractBaseUser, body: str, by_supervisor: bool = False
) -> InternalNote:
    """Add an internal note, seen by the staff following the conversation and never by the
    resident. Its helper or a supervisor may; raises `not_assigned` otherwise."""
    conversation = _locked_conversation(conversation_id, related=False)
    if conversation.assigned_helper_id != author.pk and not by_supervisor:
        raise chat_error("not_assigned")
    return _note(conversation, author, body)


ENDED_TEXT = {
    "visitor": _("The resident ended the conversation."),
    "helper": _("The helper ended the conversation."),
    "system": _("The conversation was closed."),
    "unanswered": _("Nobody was free to answer in time. You can leave a message and we will get back to you."),
    "abandoned": _("The conversation was closed because the resident left."),
    "kiosk_wiped": _("The resident finished at the kiosk and their details were cleared."),
    "left_message": _("The resident left a message to be contacted instead of waiting."),
}


@transaction.atomic
def conversation_end(
    *,
    conversation_id: int,
    ended_by: str,
    helper: AbstractBaseUser | None = None,
    reason: str | None = None,
    token_hash: str | None = None,
) -> tuple[Conversation, bool]:
    """End a conversation; ending one already ended changes nothing and returns `False`.

    A helper may end only a conversation assigned to them (ValidationError `not_assigned`);
    a resident's socket passes its `token_hash` (`_locked_conversation`).
    Adds a system message saying why, tells the resident and every console, and emails the
    transcript to the resident if they asked for it and an advisor took part.
    """
    conversation = _locked_conversation(conversation_id, token_hash=token_hash)
    if conversation.is_ended:
        return conversation, False
    if ended_by == Conversation.EndedBy.HELPER and conversation.assigned_helper_id != helper.pk:
        raise chat_error("not_assigned")
    was_waiting = conversation.status == Conversation.Status.WAITING
    helper_id = conversation.assigned_helper_id
    # Only after an advisor took part, by writing or by ending it: otherwise anyone could have
    # the council email a stranger whatever they typed, by giving the stranger's address and
    # ending the chat before anyone answered. Being assigned is not taking part: automatic
    # routing assigns a chat as it starts.
    email_transcript = bool(conversation.visitor_email) and (
        ended_by == Conversation.EndedBy.HELPER
        or conversation.messages.filter(author_kind=Message.AuthorKind.HELPER).exists()
    )
    conversation.status = Conversation.Status.ENDED
    conversation.ended_at = timezone.now()
    conversation.ended_by = ended_by
    conversation.ended_reason = reason or ended_by
    ended_fields = ["status", "ended_at", "ended_by", "ended_reason"]
    if email_transcript:
        # The first try, made at once beside the end (below), is this one.
        conversation.transcript_email_tries = 1
        conversation.transcript_email_due_at = conversation.ended_at + TRANSCRIPT_EMAIL_TRY_TIMEOUT
        ended_fields += ["transcript_email_tries", "transcript_email_due_at"]
    conversation.save(update_fields=ended_fields)
    _cobrowse_stop_live(conversation, text=_("Screen sharing stopped because the conversation ended."))
    _system_message(conversation, str(ENDED_TEXT[reason or ended_by]))
    events.broadcast_conversation_ended(conversation, was_waiting=was_waiting)
    if conversation.kiosk_visit_id:
        _after_commit_kiosk_help_changed(conversation.kiosk_visit.device_id)
    if helper_id and not was_waiting:
        events.signal_after_commit(signals.conversation_released, helper_id=helper_id)
    if email_transcript:
        transaction.on_commit(lambda: _email_transcript_in_background(conversation.pk))
    logger.info("conversation %s ended by %s", conversation.pk, reason or ended_by)
    return conversation, True


TRANSCRIPT_EMAIL_INTRO = _(
    "You asked for a copy of your webchat with %(council)s. If that was not you, you can ignore this email."
)


# A transcript email is tried at once, beside the end, then by the sweep
# (`transcript_emails_retry`) until it goes: a mail server down for a while, or a process
# stopped before its try reported, loses nothing.
TRANSCRIPT_EMAIL_MAX_TRIES = 5
# A try not reported after this long is taken for lost (its process stopped) and made again.
# Sending gives up after EMAIL_TIMEOUT, seconds, so a try still under way by then is unlikely.
TRANSCRIPT_EMAIL_TRY_TIMEOUT = datetime.timedelta(minutes=10)
# After a failed try the next waits this long times the tries made: 5, 10, 15, 20 minutes.
TRANSCRIPT_EMAIL_RETRY_AFTER = datetime.timedelta(minutes=5)


def _transcript_email(conversation_id: int) -> EmailMessage:
    conversation = selectors.conversation_get(conversation_id=conversation_id)
    return EmailMessage(
        subject=_("Your conversation with %(council)s") % {"council": settings.COUNCIL_NAME},
        body="\n".join(
            [
                str(TRANSCRIPT_EMAIL_INTRO % {"council": settings.COUNCIL_NAME}),
                "",
                selectors.conversation_transcript_text(conversation=conversation),
            ]
        ),
        to=[conversation.visitor_email],
    )


def _email_transcript_in_background(conversation_id: int) -> None:
    # The conversation has ended whatever the mail server says, and nobody waits for it to
    # answer; a failure is logged and tried again by the sweep.
    def tried(sent: bool) -> None:
        try:
            _transcript_email_tried(conversation_id, sent=sent, now=timezone.now())
        finally:
            # The mail pool's thread is not a request's: nothing else closes its connection.
            connection.close()

    mail.send_in_background(
        _transcript_email(conversation_id), what=f"the transcript of conversation {conversation_id}", on_done=tried
    )


def _transcript_email_tried(conversation_id: int, *, sent: bool, now: datetime.datetime) -> None:
    unsent = Conversation.objects.filter(pk=conversation_id, transcript_emailed_at__isnull=True)
    if sent:
        unsent.update(transcript_emailed_at=now, transcript_email_due_at=None)
        return
    tries = unsent.values_list("transcript_email_tries", flat=True).first()
    if tries is None:
        return
    if tries >= TRANSCRIPT_EMAIL_MAX_TRIES:
        unsent.update(transcript_email_due_at=None)
        logger.error("gave up emailing the transcript of conversation %s after %s tries", conversation_id, tries)
    else:
        unsent.update(transcript_email_due_at=now + TRANSCRIPT_EMAIL_RETRY_AFTER * tries)


def transcript_emails_retry(*, now: datetime.datetime | None = None) -> list[int]:
    """Try again each transcript email that failed, or whose try never reported, and is due
    by `now`; the ids of the conversations whose transcript went. For the sweep: it sends
    here, one after another, each bounded by EMAIL_TIMEOUT.

    Each is claimed before it is sent (its due time moved on, its try counted), so two
    sweeps never send one twice. Not once the resident's address has been deleted. The first
    failure ends the pass: a mail server that is down would otherwise hold the sweep, and the
    timeouts and routing it runs, for EMAIL_TIMEOUT a message.
    """
    now = now or timezone.now()
    due = Conversation.objects.filter(transcript_email_due_at__lte=now, transcript_emailed_at__isnull=True).exclude(
        visitor_email=""
    )
    sent = []
    for conversation_id in list(due.order_by("transcript_email_due_at").values_list("pk", flat=True)[:50]):
        # The time of this claim (sending the ones before took some), never before `now`.
        at = max(now, timezone.now())
        claimed = due.filter(pk=conversation_id).update(
            transcript_email_tries=F("transcript_email_tries") + 1,
            transcript_email_due_at=at + TRANSCRIPT_EMAIL_TRY_TIMEOUT,
        )
        if not claimed:
            continue
        try:
            _transcript_email(conversation_id).send()
        except Exception:
            logger.exception("sending the transcript of conversation %s failed", conversation_id)
            _transcript_email_tried(conversation_id, sent=False, now=at)
            break
        _transcript_email_tried(conversation_id, sent=True, now=at)
        sent.append(conversation_id)
    return sent


def conversation_end_expired(*, now: datetime.datetime | None = None) -> list[int]:
    """End conversations nobody answered in time and those whose resident has left.

    Returns the ids ended. Each ends in its own transaction, with the usual notifications.
    """
    now = now or timezone.now()
    ended = []
    for reason, minutes in (
        ("unanswered", settings.CHAT_WAITING_TIMEOUT_MINUTES),
        ("abandoned", settings.CHAT_ABANDONED_TIMEOUT_MINUTES),
    ):
        before = now - datetime.timedelta(minutes=minutes)
        for conversation_id in selectors.conversation_list_expired(reason, before=before):
            if conversation_id not in ended and _conversation_end_if_expired(conversation_id, reason, before):
                ended.append(conversation_id)
    return ended


@transaction.atomic
def _conversation_end_if_expired(conversation_id: int, reason: str, before: datetime.datetime) -> bool:
    """End the conversation if it is still `reason` ("unanswered" or "abandoned") as of
    `before`, checked under its lock: since it was listed a helper may have accepted it, or
    its resident come back."""
    _locked_conversation(conversation_id, related=False)
    expired = Conversation.objects.filter(selectors.conversation_expired_q(reason, before=before), pk=conversation_id)
    if not expired.exists():
        return False
    _conversation, changed = conversation_end(
        conversation_id=conversation_id, ended_by=Conversation.EndedBy.SYSTEM, reason=reason
    )
    return changed


# Conversations purged in one transaction: a backlog (the first run after an upgrade) is
# worked through over several sweeps rather than in one long transaction.
PURGE_BATCH = 500


@transaction.atomic
def personal_data_purge(*, now: datetime.datetime | None = None) -> tuple[list[int], list[int]]:
    """Delete what identifies a resident once `CHAT_RETENTION_DAYS` have passed: from each
    conversation ended before then, its messages, staff notes, the resident's name, email and
    rating comment and the hashes that tied it to them; from each call back done before then,
    the resident's details, message and what they wrote in the chat before. The rest (channel,
    service, times, rating, helper, assisted transaction) stays: anonymous figures for
    management information.

    Call backs still open are kept whatever their age: a resident is still waiting for them.
    Returns the ids of the conversations and call backs purged.
    """
    now = now or timezone.now()
    before = now - datetime.timedelta(days=settings.CHAT_RETENTION_DAYS)
    conversation_ids = list(
        Conversation.objects.filter(ended_at__lt=before, purged_at__isnull=True)
        .order_by("ended_at")
        .values_list("pk", flat=True)[:PURGE_BATCH]
    )
    Message.objects.filter(conversation_id__in=conversation_ids).delete()
    InternalNote.objects.filter(conversation_id__in=conversation_ids).delete()
    Conversation.objects.filter(pk__in=conversation_ids).update(
        visitor_name="", visitor_email="", rating_comment="", client_address_hash="", start_key_hash="", purged_at=now
    )
    # Marked done in the admin, a call back has no `done_at`: its age counts from when it was left.
    done = CallbackRequest.objects.filter(
        Q(done_at__lt=before) | Q(done_at__isnull=True, created_at__lt=before),
        status=CallbackRequest.Status.DONE,
        purged_at__isnull=True,
    ).order_by("created_at")
    callback_ids = list(done.values_list("pk", flat=True)[:PURGE_BATCH])
    CallbackRequest.objects.filter(pk__in=callback_ids).update(
        name="", phone="", email="", message="", earlier_messages=[], client_address_hash="", purged_at=now
    )
    CobrowseSession.objects.filter(created_at__lt=before).exclude(client_address_hash="").update(client_address_hash="")
    CobrowseCodeMiss.objects.filter(created_at__lt=before).delete()
    if conversation_ids or callback_ids:
        logger.info("purged %s conversations and %s call backs", len(conversation_ids), len(callback_ids))
    return conversation_ids, callback_ids


@transaction.atomic
def conversation_touch_visitor(
    *,
    conversation_id: int,
    token_hash: str | None = None,
    now: datetime.datetime | None = None,
    announce: bool = False,
) -> bool:
    """Record that the resident has an open conversation's chat open (an abandoned one times
    out). If they counted as gone (a socket closed, or silent too long), the staff following it
    are told they are here; with `announce`, they are told anyway: the answer to another
    socket's "left", which may reach them after this socket's own "here".

    A resident's socket passes the `token_hash` it opened the conversation with: False, and
    nothing recorded, if that no longer opens it (it moved to another device, or it ended more
    than the token's lifetime ago) or it is gone.
    """
    now = now or timezone.now()
    conversation = Conversation.objects.filter(pk=conversation_id)
    if token_hash is not None:
        # In the statements themselves, so a token changed meanwhile is never counted.
        conversation = conversation.filter(token_hash=token_hash)
    open_conversation = conversation.not_ended()
    still_here = open_conversation.filter(
        visitor_left_at__isnull=True, visitor_last_seen_at__gte=now - events.VISITOR_SILENT_AFTER
    )
    if still_here.update(visitor_last_seen_at=now):
        if not announce:
            return True
    elif not open_conversation.update(visitor_left_at=None, visitor_last_seen_at=now):
        # Ended (nobody is waiting for them any more), or not this token's: only a socket's
        # token needs telling apart.
        return token_hash is None or conversation.exclude(ended_at__lt=selectors.token_expired_before(now)).exists()
    events.broadcast_visitor_presence_changed(conversation_id=conversation_id, connected=True, at=now)
    return True


@transaction.atomic
def conversation_visitor_left(*, conversation_id: int, channel_name: str, now: datetime.datetime | None = None) -> None:
    """One of the resident's sockets closed (`channel_name`). The staff following an open
    conversation are told the resident left; a socket of theirs still open answers that it is
    there (`conversation_touch_visitor`), so a second tab or a page change shows no absence."""
    now = now or timezone.now()
    still_open = Conversation.objects.not_ended().filter(pk=conversation_id)
    if still_open.update(visitor_last_seen_at=now, visitor_left_at=now):
        events.broadcast_visitor_presence_changed(
            conversation_id=conversation_id, connected=False, at=now, channel_name=channel_name
        )


def waiting_residents_update() -> None:
    """Tell the residents waiting, if any, the queue's state again.

    Whether webchat is open changes with time alone too: the day's opening hours end, or a
    helper whose console closed passes the grace period and no longer counts as online.
    Nothing commits then to announce it, so the periodic sweep does. A socket sends its
    resident a new `queue.position` only when something in it changed.
    """
    events.broadcast_queue_moved()


def conversation_mark_silent_visitors_gone(*, now: datetime.datetime | None = None) -> list[int]:
    """Mark gone the residents of open conversations whose sockets stopped pinging without
    closing (their server process died, their network dropped), from when they were last
    seen, and tell their staff. Returns the conversations' ids."""
    now = now or timezone.now()
    marked = []
    for conversation_id, last_seen in selectors.conversation_list_silent_visitors(
        before=now - events.VISITOR_SILENT_AFTER
    ):
        with transaction.atomic():
            # Unless a ping or a closing socket got there first.
            unchanged = Conversation.objects.not_ended().filter(
                pk=conversation_id, visitor_left_at__isnull=True, visitor_last_seen_at=last_seen
            )
            if unchanged.update(visitor_left_at=last_seen):
                events.broadcast_visitor_presence_changed(
                    conversation_id=conversation_id, connected=False, at=last_seen
                )
                marked.append(conversation_id)
    return marked


@transaction.atomic
def conversation_mark_read(
    *,
    conversation_id: int,
    reader: str,
    seq: int,
    helper: AbstractBaseUser | None = None,
    token_hash: str | None = None,
) -> Conversation:
    """Move the reader's "seen up to" mark forward (never back, never past the last message)
    and tell the other side. A helper's mark is `helper`'s, who must hold the conversation
    (`not_assigned` otherwise): a supervisor who only watched never marks it read. The
    resident's socket passes its `token_hash` (`_locked_conversation`)."""
    conversation = _locked_conversation(conversation_id, token_hash=token_hash)
    if reader == Message.AuthorKind.HELPER and (helper is None or conversation.assigned_helper_id != helper.pk):
        raise chat_error("not_assigned")
    field = "visitor_read_seq" if reader == Message.AuthorKind.VISITOR else "helper_read_seq"
    seq = min(seq, conversation.last_seq)
    if seq > getattr(conversation, field):
        setattr(conversation, field, seq)
        conversation.save(update_fields=[field])
        events.broadcast_read_changed(conversation, reader=reader, seq=seq)
    return conversation


@transaction.atomic
def conversation_rate(
    *, conversation_id: int, rating: int, comment: str = "", token_hash: str | None = None
) -> Conversation:
    """Store the resident's rating of an ended conversation, once.

    Raises ValidationError `conversation_not_ended` before the end, `already_rated` after a
    rating was given, `nothing_to_rate` for one no helper had, and `conversation_not_found`
    once the resident's `token_hash` has expired or no longer opens it (`_locked_conversation`).
    Nobody is notified: ratings feed reports, not the helper's screen.
    """
    conversation = _locked_conversation(conversation_id, token_hash=token_hash)
    if not conversation.is_ended:
        raise chat_error("conversation_not_ended")
    if conversation.rating is not None:
        raise chat_error("already_rated")
    # Closed before any helper had it, or given up for a message left instead: the widget
    # offers no rating, and a report must not count one sent all the same.
    unanswered = conversation.ended_by == Conversation.EndedBy.SYSTEM and conversation.assigned_helper_id is None
    if unanswered or conversation.ended_reason == "left_message":
        raise chat_error("nothing_to_rate")
    conversation.rating = rating
    conversation.rating_comment = comment
    conversation.save(update_fields=["rating", "rating_comment"])
    return conversation


@transaction.atomic
def callback_request_create(
    *,
    name: str,
    message: str,
    phone: str = "",
    email: str = "",
    service: Service | None = None,
    address_hash: str = "",
    instead_of: int | None = None,
    token_hash: str | None = None,
    client_id: str = "",
    now: datetime.datetime | None = None,
) -> CallbackRequest:
    """Leave a message for a helper to answer later; every console sees it in the queue.

    A request with a `client_id` already kept (sent again after its answer was lost) returns
    the one kept and changes nothing else.

    Needs a phone number or an email (ValidationError `contact_required`); shares the
    per-address hourly limit with conversations (`too_many_conversations`).

    Left `instead_of` the resident's conversation, the message replaces it: while it still
    waits, the same transaction ends it (reason `left_message`, and the message does not
    count against the address, whose start already did), so the resident stops waiting
    exactly when the message is kept; once a helper has it, nothing is kept
    (`already_answered`): the resident is in the chat. Whoever calls back sees what the
    resident wrote in that chat (its last `EARLIER_MESSAGES_KEPT` messages). A resident's
    socket passes the `token_hash` it opened that conversation with (`_locked_conversation`).
    """
    if not phone and not email:
        raise chat_error("contact_required")
    now = now or timezone.now()
    if kept := _callback_kept(client_id):
        return kept
    # Locked first, as a start does: the conversation row, then the address.
    replaced = (
        _locked_conversation(instead_of, related=False, token_hash=token_hash) if instead_of is not None else None
    )
    if replaced is not None and replaced.status == Conversation.Status.ACTIVE:
        raise chat_error("already_answered")
    waiting = replaced is not None and replaced.status == Conversation.Status.WAITING
    if not waiting:
        try:
            _limit_per_address(
                [CallbackRequest, Conversation],
                address_hash,
                now,
                limit=settings.CHAT_STARTS_PER_ADDRESS_PER_HOUR,
                refusal="too_many_conversations",
            )
        except ValidationError:
            # The same request sent twice at once waited here for the first, which was kept
            # (and counted against the address) meanwhile.
            if kept := _callback_kept(client_id):
                return kept
            raise
    try:
        with transaction.atomic():
            callback = CallbackRequest.objects.create(
                name=name,
                message=message,
                earlier_messages=_resident_messages(replaced) if replaced is not None else [],
                phone=phone,
                email=email,
                # What the chat it replaces was about, whatever page the resident is on now.
                service=replaced.service if replaced is not None and replaced.service_id else service,
                client_address_hash=address_hash,
                client_id=client_id,
            )
    except IntegrityError:
        # The same request twice at once, the other kept first.
        if kept := _callback_kept(client_id):
            return kept
        raise
    events.broadcast_callback_requested(callback)
    if waiting:
        conversation_end(conversation_id=instead_of, ended_by=Conversation.EndedBy.VISITOR, reason="left_message")
    logger.info("callback request %s left", callback.pk)
    return callback


def callbacks_announce_again(*, callback_ids: Collection[int]) -> None:
    """Tell every console again about these call-back requests, after the commit: their
    helper has left (deactivated or deleted), so they are open to anyone (`claimer_left`)."""
    for callback in CallbackRequest.objects.filter(pk__in=callback_ids).select_related("service", "claimed_by"):
        events.broadcast_callback_changed(callback)


def _callback_kept(client_id: str) -> CallbackRequest | None:
    """The request already kept with this `client_id`, if any."""
    return CallbackRequest.objects.filter(client_id=client_id).first() if client_id else None


EARLIER_MESSAGES_KEPT = 20


def _resident_messages(conversation: Conversation) -> list[str]:
    """The resident's own last messages in a conversation, oldest first."""
    latest = conversation.messages.filter(author_kind=Message.AuthorKind.VISITOR).order_by("-seq")
    return list(reversed(latest.values_list("body", flat=True)[:EARLIER_MESSAGES_KEPT]))


def _locked_callback(callback_id: int, helper: AbstractBaseUser, *, by_supervisor: bool) -> CallbackRequest:
    """The request, locked, if this helper may act on it: not done, and nobody else has it on.
    A supervisor may take over one another helper has on (who may have gone home with it),
    and one whose helper has left (`claimer_left`) is open again."""
    callback = (
        CallbackRequest.objects.select_for_update(of=("self",))
        .select_related("claimed_by")
        .filter(pk=callback_id)
        .first()
    )
    if callback is None:
        raise chat_error("callback_not_found")
    taken_by_another = (
        callback.status == CallbackRequest.Status.CLAIMED
        and callback.claimed_by_id != helper.pk
        and not callback.claimer_left
        and not by_supervisor
    )
    if callback.status == CallbackRequest.Status.DONE or taken_by_another:
        raise chat_error("callback_taken")
    return callback


@transaction.atomic
def callback_claim(*, callback_id: int, helper: AbstractBaseUser, by_supervisor: bool = False) -> CallbackRequest:
    """A helper takes a call-back request on, so that no one else calls the resident too
    (or a supervisor takes it over, `by_supervisor`). Raises `callback_not_found`,
    `callback_taken`."""
    callback = _locked_callback(callback_id, helper, by_supervisor=by_supervisor)
    callback.status = CallbackRequest.Status.CLAIMED
    callback.claimed_by = helper
    callback.save(update_fields=["status", "claimed_by"])
    events.broadcast_callback_changed(callback)
    logger.info("callback request %s taken on by %s", callback.pk, helper.pk)
    return callback


@transaction.atomic
def callback_complete(*, callback_id: int, helper: AbstractBaseUser, by_supervisor: bool = False) -> CallbackRequest:
    """The resident has been called or written back. By whoever took it on (or, if nobody
    had, by this helper at once; or by a supervisor, `by_supervisor`). Raises
    `callback_not_found`, `callback_taken`."""
    callback = _locked_callback(callback_id, helper, by_supervisor=by_supervisor)
    callback.status = CallbackRequest.Status.DONE
    callback.claimed_by = helper
    callback.done_at = timezone.now()
    callback.save(update_fields=["status", "claimed_by", "done_at"])
    events.broadcast_callback_changed(callback)
    logger.info("callback request %s done by %s", callback.pk, helper.pk)
    return callback


# --- Co-browse ------------------------------------------------------------------------------

COBROWSE_CODE_LIFETIME = datetime.timedelta(minutes=20)
LIVE_COBROWSE = [CobrowseSession.Status.REQUESTED, CobrowseSession.Status.ACTIVE]


def cobrowse_code_hash(code: str) -> str:
    """Keyed, because a million six-digit codes are quickly hashed: without the key a copy of
    the database gives no code away."""
    return hmac.new(settings.SECRET_KEY.encode(), f"cobrowse:{code}".encode(), hashlib.sha256).hexdigest()


def _cobrowse_stop_live(conversation: Conversation, *, text, stopped_by: str = Conversation.EndedBy.SYSTEM) -> None:
    """Stop any sharing in this conversation (ended, transferred): the helper sees no more."""
    for session in conversation.cobrowse_sessions.select_for_update().filter(status__in=LIVE_COBROWSE):
        session.status = CobrowseSession.Status.STOPPED
        session.stopped_at = timezone.now()
        session.stopped_by = stopped_by
        session.save(update_fields=["status", "stopped_at", "stopped_by"])
        _system_message(conversation, str(text))
        events.broadcast_cobrowse_changed(session)


@transaction.atomic
def cobrowse_request(*, conversation_id: int, helper: AbstractBaseUser) -> CobrowseSession:
    """The helper holding the conversation asks to see the resident's page.

    Asking again while a request or a share is live returns that session. Raises
    ValidationError `conversation_ended` or `not_assigned`.
    """
    conversation = _locked_conversation(conversation_id)
    if conversation.is_ended:
        raise chat_error("conversation_ended")
    if conversation.assigned_helper_id != helper.pk:
        raise chat_error("not_assigned")
    live = conversation.cobrowse_sessions.filter(status__in=LIVE_COBROWSE).first()
    if live is not None:
        return live
    session = CobrowseSession.objects.create(
        conversation=conversation, status=CobrowseSession.Status.REQUESTED, helper=helper, requested_at=timezone.now()
    )
    name = events.helper_display_name(helper)
    _system_message(conversation, _("%(helper)s asked to see your screen.") % {"helper": name})
    events.broadcast_cobrowse_changed(session)
    logger.info("co-browse %s requested in conversation %s by %s", session.pk, conversation.pk, helper.pk)
    return session


@transaction.atomic
def cobrowse_respond(
    *, conversation_id: int, session_id: int, accept: bool, token_hash: str | None = None
) -> CobrowseSession:
    """The resident's answer. Raises ValidationError `cobrowse_not_found` (not this
    conversation's), `cobrowse_not_requested` (already answered, stopped) or
    `conversation_not_found` (`token_hash`, as in `_locked_conversation`)."""
    conversation = _locked_conversation(conversation_id, token_hash=token_hash)
    session = conversation.cobrowse_sessions.select_for_update().filter(pk=session_id).first()
    if session is None:
        raise chat_error("cobrowse_not_found")
    if session.status != CobrowseSession.Status.REQUESTED or conversation.is_ended:
        raise chat_error("cobrowse_not_requested")
    session.status = CobrowseSession.Status.ACTIVE if accept else CobrowseSession.Status.DECLINED
    session.responded_at = timezone.now()
    session.save(update_fields=["status", "responded_at"])
    text = (
        _("The resident agreed to share their screen.") if accept else _("The resident declined to share their screen.")
    )
    _system_message(conversation, str(text))
    events.broadcast_cobrowse_changed(session)
    logger.info("co-browse %s %s", session.pk, "accepted" if accept else "declined")
    return session


@transaction.atomic
def cobrowse_stop(
    *,
    conversation_id: int,
    session_id: int,
    stopped_by: str,
    helper: AbstractBaseUser | None = None,
    token_hash: str | None = None,
) -> CobrowseSession:
    """Either side stops sharing (or withdraws the request); stopping twice changes nothing.
    Raises ValidationError `cobrowse_not_found`, `not_assigned` for another helper, or
    `conversation_not_found` (`token_hash`, as in `_locked_conversation`)."""
    conversation = _locked_conversation(conversation_id, token_hash=token_hash)
    session = conversation.cobrowse_sessions.select_for_update().filter(pk=session_id).first()
    if session is None:
        raise chat_error("cobrowse_not_found")
    if stopped_by == Conversation.EndedBy.HELPER and conversation.assigned_helper_id != helper.pk:
        raise chat_error("not_assigned")
    if not session.is_live:
        return session
    session.status = CobrowseSession.Status.STOPPED
    session.stopped_at = timezone.now()
    session.stopped_by = stopped_by
    session.save(update_fields=["status", "stopped_at", "stopped_by"])
    who = _("the resident") if stopped_by == Conversation.EndedBy.VISITOR else _("the helper")
    _system_message(conversation, _("Screen sharing was stopped by %(who)s.") % {"who": who})
    events.broadcast_cobrowse_changed(session)
    return session


@transaction.atomic
def cobrowse_code_issue(*, address_hash: str = "", now: datetime.datetime | None = None) -> tuple[CobrowseSession, str]:
    """A six-digit code a resident reads out on the phone; it works once, for 20 minutes.

    One network address gets `COBROWSE_CODES_PER_ADDRESS_PER_HOUR` (ValidationError
    `too_many_codes`): every socket may ask for one, and a million codes are soon all taken.
    """
    now = now or timezone.now()
    _limit_per_address(
        [CobrowseSession],
        address_hash,
        now,
        limit=settings.COBROWSE_CODES_PER_ADDRESS_PER_HOUR,
        refusal="too_many_codes",
    )
    for _attempt in range(20):
        code = f"{secrets.randbelow(10**6):06d}"
        hashed = cobrowse_code_hash(code)
        clash = CobrowseSession.objects.filter(
            code_hash=hashed, status=CobrowseSession.Status.CODE_ISSUED, code_expires_at__gt=now
        ).exists()
        if not clash:
            session = CobrowseSession.objects.create(
                status=CobrowseSession.Status.CODE_ISSUED,
                code_hash=hashed,
                code_expires_at=now + COBROWSE_CODE_LIFETIME,
                client_address_hash=address_hash,
            )
            return session, code
    raise chat_error("server_error")


def cobrowse_code_join(*, code: str, helper: AbstractBaseUser, now: datetime.datetime | None = None) -> CobrowseSession:
    """A helper types the resident's code: a conversation between them starts, held by the
    helper, and consent is asked as in any chat. Raises ValidationError
    `cobrowse_code_invalid` for a wrong, used or expired code, which is recorded
    (`CobrowseCodeMiss`), and `too_many_code_misses`, whatever the code, once the helper has
    had `COBROWSE_CODE_MISSES_PER_HELPER_PER_HOUR` misses in the hour before `now`.

    Not inside another transaction: the miss is committed before the refusal is raised, and
    an outer rollback would take it back."""
    now = now or timezone.now()
    with transaction.atomic():
        session = _cobrowse_code_redeem(code=code, helper=helper, now=now)
    # Raised after the commit: the miss must be kept, not rolled back with the refusal.
    if session is None:
        logger.warning("wrong or expired co-browse code tried by user %s", helper.pk)
        raise chat_error("cobrowse_code_invalid")
    return session


def _cobrowse_code_redeem(*, code: str, helper: AbstractBaseUser, now: datetime.datetime) -> CobrowseSession | None:
    if hourly_limit_reached(
        [CobrowseCodeMiss.objects.filter(helper=helper)],
        f"code-misses:{helper.pk}",
        now,
        limit=settings.COBROWSE_CODE_MISSES_PER_HELPER_PER_HOUR,
    ):
        logger.warning("co-browse code refused to user %s: too many wrong codes", helper.pk)
        raise chat_error("too_many_code_misses")
    code = code.strip().replace(" ", "")
    session = None
    if len(code) == 6 and code.isdigit():
        session = (
            CobrowseSession.objects.select_for_update()
            .filter(
                code_hash=cobrowse_code_hash(code),
                status=CobrowseSession.Status.CODE_ISSUED,
                code_expires_at__gt=now,
            )
            .first()
        )
    if session is None:
        CobrowseCodeMiss.objects.create(helper=helper, created_at=now)
        return None
    token = secrets.token_urlsafe(32)
    conversation = Conversation.objects.create(
        channel=Conversation.Channel.WEB,
        status=Conversation.Status.ACTIVE,
        token_hash=token_hash(token),
        assigned_helper=helper,
        assigned_at=now,
        waiting_since=now,
        queued_at=now,
        visitor_last_seen_at=now,
    )
    session.conversation = conversation
    session.status = CobrowseSession.Status.REQUESTED
    session.helper = helper
    session.requested_at = now
    session.code_hash = ""
    session.save(update_fields=["conversation", "status", "helper", "requested_at", "code_hash"])
    name = events.helper_display_name(helper)
    _system_message(conversation, _("%(helper)s used your code and asked to see your screen.") % {"helper": name})
    events.broadcast_conversation_assigned(conversation)
    events.broadcast_cobrowse_joined(session, token=token)
    events.broadcast_cobrowse_changed(session)
    logger.info("co-browse %s joined by code by %s in conversation %s", session.pk, helper.pk, conversation.pk)
    return session


def cobrowse_live_for(conversation_id: int) -> CobrowseSession | None:
    return (
        CobrowseSession.objects.select_related("helper")
        .filter(conversation_id=conversation_id, status__in=LIVE_COBROWSE)
        .first()
    )


def cobrowse_viewable(*, session_id: int, helper: AbstractBaseUser) -> CobrowseSession | None:
    """The live session this helper may watch: theirs, in a conversation they still hold."""
    return (
        CobrowseSession.objects.select_related("conversation")
        .filter(
            pk=session_id,
            status=CobrowseSession.Status.ACTIVE,
            helper_id=helper.pk,
            conversation__assigned_helper_id=helper.pk,
        )
        .first()
    )
