"""Writes of the advisor console: the assisted transaction log."""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from agents_console.error_messages import ERRORS
from agents_console.models import AssistedTransaction
from agents_console.roles import Role, helper_role
from chat.models import Conversation
from kiosk.models import Service

logger = logging.getLogger(__name__)

BARRIERS = ("access", "skills", "confidence", "motivation")


@transaction.atomic
def assisted_transaction_create(
    *,
    helper: AbstractBaseUser,
    services: list[Service],
    outcome: str,
    barriers: list[str],
    typed_by: str,
    can_do_alone_next_time: str,
    minutes_spent: int,
    reference: str = "",
    conversation: Conversation | None = None,
    channel: str | None = None,
) -> AssistedTransaction:
    """Log help given, from a conversation's wrap-up or for a walk-in without a chat.

    Without a conversation, `channel` says where the help was given. For a conversation
    the channel is the conversation's; it must have ended, belong to `helper` (or `helper` is a supervisor)
    and not be logged already. Raises ValidationError otherwise; nothing is broadcast.
    """
    if conversation is None and not channel:
        raise ValueError("channel is required for help given without a conversation")
    if not services:
        raise ValidationError(ERRORS["service_required"], code="service_required")
    if conversation is not None:
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if conversation.status != Conversation.Status.ENDED:
            raise ValidationError(ERRORS["wrap_up_not_ended"], code="wrap_up_not_ended")
        if conversation.assigned_helper_id != helper.pk and helper_role(helper) != Role.SUPERVISOR:
            raise ValidationError(ERRORS["wrap_up_not_yours"], code="wrap_up_not_yours")
        if AssistedTransaction.objects.filter(conversation=conversation).exists():
            raise ValidationError(ERRORS["wrap_up_exists"], code="wrap_up_exists")
        channel = conversation.channel
    record = AssistedTransaction.objects.create(
        helper=helper,
        conversation=conversation,
        channel=channel,
        outcome=outcome,
        typed_by=typed_by,
        can_do_alone_next_time=can_do_alone_next_time,
        minutes_spent=minutes_spent,
        reference=reference,
        **{f"barrier_{name}": name in barriers for name in BARRIERS},
    )
    record.services.set(services)
    logger.info("assisted transaction %s logged by helper %s", record.pk, helper.pk)
    return record
