"""Writes to conversations and messages: each in one transaction, broadcast after commit."""

import hashlib
import logging
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import events
from chat.error_messages import error_message
from chat.models import Conversation, Message
from kiosk.models import Service

logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 2000


def chat_error(code: str) -> ValidationError:
    return ValidationError(error_message(code), code=code)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _locked_conversation(conversation_id: int) -> Conversation:
    """The conversation row, locked until the transaction ends (every state change takes it)."""
    try:
        return (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("assigned_helper", "service")
            .get(pk=conversation_id)
        )
    except Conversation.DoesNotExist:
        raise chat_error("conversation_not_found") from None


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
    *, channel: str = Conversation.Channel.WEB, visitor_name: str = "", service: Service | None = None
) -> tuple[Conversation, str]:
    """Open a conversation in the waiting queue and return it with the resident's secret token.

    The token is returned once and only its hash is stored. Helpers' consoles are told
    (`chat.conversation_queued` to the queue group) after the commit.
    """
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    conversation = Conversation.objects.create(
        channel=channel,
        token_hash=token_hash(token),
        visitor_name=visitor_name,
        service=service,
        waiting_since=now,
    )
    events.broadcast_conversation_queued(conversation)
    logger.info("conversation %s started on %s", conversation.pk, channel)
    return conversation, token


@transaction.atomic
def message_create(
    *,
    conversation_id: int,
    author_kind: str,
    body: str,
    client_id: str | None = None,
    author: AbstractBaseUser | None = None,
) -> tuple[Message, bool]:
    """Store a message with the next sequence number and announce it to the conversation group.

    A resend with a `client_id` already stored returns the stored message and `False`, and
    announces nothing. Raises ValidationError `conversation_ended`, `not_assigned` (a helper
    who does not hold the conversation) or `duplicate_client_id` (an id reused for other text).
    """
    conversation = _locked_conversation(conversation_id)
    if client_id:
        existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
        if existing is not None:
            if existing.author_kind != author_kind or existing.body != body:
                raise chat_error("duplicate_client_id")
            return existing, False
    if conversation.is_ended:
        raise chat_error("conversation_ended")
    if author_kind == Message.AuthorKind.HELPER and conversation.assigned_helper_id != author.pk:
        raise chat_error("not_assigned")
    author_name = (
        events.helper_display_name(author) if author_kind == Message.AuthorKind.HELPER else conversation.visitor_name
    )
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation,
                seq=_next_seq(conversation),
                author_kind=author_kind,
                author=author,
                author_name=author_name,
                body=body,
                client_id=client_id or None,
            )
    except IntegrityError:
        # Only reachable if a database without row locks let two writers past the check above.
        raise chat_error("duplicate_client_id") from None
    events.broadcast_message_created(message)
    return message, True


@transaction.atomic
def conversation_assign(*, conversation_id: int, helper: AbstractBaseUser) -> Conversation:
    """Give a waiting conversation to `helper`; of two helpers accepting at once, one wins.

    Adds a "joined" system message, tells every console the conversation left the queue and
    tells the resident who is helping. Raises ValidationError `conversation_gone` when it is
    no longer waiting.
    """
    conversation = _locked_conversation(conversation_id)
    if conversation.status != Conversation.Status.WAITING:
        raise chat_error("conversation_gone")
    conversation.status = Conversation.Status.ACTIVE
    conversation.assigned_helper = helper
    conversation.assigned_at = timezone.now()
    conversation.save(update_fields=["status", "assigned_helper", "assigned_at"])
    _system_message(conversation, _("%(name)s joined the conversation.") % {"name": events.helper_display_name(helper)})
    events.broadcast_conversation_assigned(conversation)
    logger.info("conversation %s assigned to helper %s", conversation.pk, helper.pk)
    return conversation


@transaction.atomic
def conversation_end(
    *, conversation_id: int, ended_by: str, helper: AbstractBaseUser | None = None
) -> tuple[Conversation, bool]:
    """End a conversation; ending one already ended changes nothing and returns `False`.

    A helper may end only a conversation assigned to them (ValidationError `not_assigned`).
    Adds an "ended" system message and tells the resident and every console.
    """
    conversation = _locked_conversation(conversation_id)
    if conversation.is_ended:
        return conversation, False
    if ended_by == Conversation.EndedBy.HELPER and conversation.assigned_helper_id != helper.pk:
        raise chat_error("not_assigned")
    conversation.status = Conversation.Status.ENDED
    conversation.ended_at = timezone.now()
    conversation.ended_by = ended_by
    conversation.save(update_fields=["status", "ended_at", "ended_by"])
    text = {
        Conversation.EndedBy.VISITOR: _("The resident ended the conversation."),
        Conversation.EndedBy.HELPER: _("The helper ended the conversation."),
        Conversation.EndedBy.SYSTEM: _("The conversation was closed."),
    }[ended_by]
    _system_message(conversation, text)
    events.broadcast_conversation_ended(conversation)
    logger.info("conversation %s ended by %s", conversation.pk, ended_by)
    return conversation, True
