"""Transcript emails: sent beside the end, only after an advisor took part, and tried again by
the sweep until they go. Transactional: the mail pool's thread records each try on its own
database connection, which must see what the test committed."""

import datetime
import logging
import smtplib
import threading

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from chat import events, services
from chat.models import Conversation
from config import mail as background_mail

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_transcript_is_emailed_when_the_resident_asked_for_it(advisor, broadcasts):
    conversation, _token = services.conversation_start(visitor_name="Pat", visitor_email="pat@example.com")
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="My bin was missed")
    services.conversation_end(conversation_id=conversation.pk, ended_by="helper", helper=advisor)

    assert background_mail.wait_for_pending(timeout=30)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["pat@example.com"]
    assert "Pat: My bin was missed" in mail.outbox[0].body
    assert "Alex joined the conversation." in mail.outbox[0].body
    assert mail.outbox[0].body.startswith("You asked for a copy of your webchat with"), "says why it came"


def test_no_email_of_a_chat_no_advisor_took_part_in(broadcasts):
    """Else anyone could have the council email a stranger whatever they typed."""
    conversation, _token = services.conversation_start(visitor_email="someone.else@example.com")
    services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="Click https://bad.example")
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
    assert background_mail.wait_for_pending(timeout=30)
    assert mail.outbox == []


def test_no_email_of_a_chat_given_to_an_advisor_who_never_wrote(advisor, broadcasts):
    """Automatic routing assigns a chat as it starts: the resident could still end it at once."""
    conversation, _token = services.conversation_start(visitor_email="someone.else@example.com")
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="Click https://bad.example")
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
    assert background_mail.wait_for_pending(timeout=30)
    assert mail.outbox == []


def test_no_email_without_an_address(broadcasts):
    conversation, _token = services.conversation_start()
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
    assert background_mail.wait_for_pending(timeout=30)
    assert mail.outbox == []


class MailServerThatHolds(BaseEmailBackend):
    """Answers only when the test lets it (or after 30 s)."""

    answer = threading.Event()
    answered = threading.Event()

    def send_messages(self, messages):
        self.answer.wait(30)
        mail.outbox.extend(messages)
        self.answered.set()
        return len(messages)


class MailServerThatRefuses(BaseEmailBackend):
    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def test_ending_a_chat_does_not_wait_for_the_mail_server(settings, advisor, broadcasts):
    settings.EMAIL_BACKEND = f"{__name__}.MailServerThatHolds"
    MailServerThatHolds.answer.clear()
    MailServerThatHolds.answered.clear()
    conversation, _token = services.conversation_start(visitor_email="pat@example.com")
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    services.message_create(conversation_id=conversation.pk, author_kind="helper", author=advisor, body="Hello")

    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")

    # Ended, and its announcement sent, while the mail server still holds the transcript.
    assert not MailServerThatHolds.answered.is_set()
    assert Conversation.objects.get(pk=conversation.pk).status == Conversation.Status.ENDED
    assert events.conversation_group(conversation.pk) in broadcasts.groups(events.CONVERSATION_CHANGED)
    MailServerThatHolds.answer.set()
    assert background_mail.wait_for_pending(timeout=30)
    assert [message.to for message in mail.outbox] == [["pat@example.com"]]


def test_a_mail_server_failure_is_logged_and_the_chat_still_ends(settings, advisor, broadcasts, caplog):
    settings.EMAIL_BACKEND = f"{__name__}.MailServerThatRefuses"
    conversation, _token = services.conversation_start(visitor_email="pat@example.com")
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    services.message_create(conversation_id=conversation.pk, author_kind="helper", author=advisor, body="Hello")

    with caplog.at_level(logging.ERROR, logger="config.mail"):
        services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
        assert background_mail.wait_for_pending(timeout=30)

    assert Conversation.objects.get(pk=conversation.pk).status == Conversation.Status.ENDED
    failures = [record for record in caplog.records if record.name == "config.mail"]
    assert [record.getMessage() for record in failures] == [
        f"sending the transcript of conversation {conversation.pk} failed"
    ]
    assert failures[0].exc_info[0] is smtplib.SMTPServerDisconnected
    assert mail.outbox == []


def ended_with_a_failed_email(advisor, settings) -> Conversation:
    """Pat's chat with Alex, ended while the mail server refused the transcript."""
    settings.EMAIL_BACKEND = f"{__name__}.MailServerThatRefuses"
    conversation, _token = services.conversation_start(visitor_name="Pat", visitor_email="pat@example.com")
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    services.message_create(conversation_id=conversation.pk, author_kind="helper", author=advisor, body="Hello")
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
    assert background_mail.wait_for_pending(timeout=30)
    conversation.refresh_from_db()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return conversation


def test_a_transcript_the_mail_server_refused_goes_with_a_later_sweep_once(advisor, settings, broadcasts):
    conversation = ended_with_a_failed_email(advisor, settings)
    assert (conversation.transcript_email_tries, conversation.transcript_emailed_at) == (1, None)
    retry_at = conversation.transcript_email_due_at
    waited = retry_at - conversation.ended_at
    assert abs(waited - services.TRANSCRIPT_EMAIL_RETRY_AFTER) < datetime.timedelta(seconds=30), waited

    assert services.transcript_emails_retry(now=retry_at - datetime.timedelta(seconds=1)) == [], "not due yet"
    assert services.transcript_emails_retry(now=retry_at) == [conversation.pk]
    assert services.transcript_emails_retry(now=retry_at + datetime.timedelta(days=1)) == [], "sent once"

    assert [message.to for message in mail.outbox] == [["pat@example.com"]]
    assert "Alex: Hello" in mail.outbox[0].body
    conversation.refresh_from_db()
    assert conversation.transcript_emailed_at == retry_at and conversation.transcript_email_due_at is None


def test_a_try_that_never_reported_is_made_again(advisor, broadcasts, monkeypatch):
    """The process that ended the chat stopped before its mail thread sent anything."""
    monkeypatch.setattr(services, "_email_transcript_in_background", lambda conversation_id: None)
    conversation, _token = services.conversation_start(visitor_email="pat@example.com")
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    conversation, _ended = services.conversation_end(conversation_id=conversation.pk, ended_by="helper", helper=advisor)

    # A try still under way is left to finish.
    assert services.transcript_emails_retry(now=conversation.ended_at + datetime.timedelta(minutes=9)) == []
    later = conversation.ended_at + services.TRANSCRIPT_EMAIL_TRY_TIMEOUT
    assert services.transcript_emails_retry(now=later) == [conversation.pk]
    assert [message.to for message in mail.outbox] == [["pat@example.com"]]


def test_sending_gives_up_after_its_tries_and_says_so(advisor, settings, broadcasts, caplog):
    conversation = ended_with_a_failed_email(advisor, settings)
    settings.EMAIL_BACKEND = f"{__name__}.MailServerThatRefuses"
    now = conversation.ended_at
    with caplog.at_level(logging.ERROR, logger="chat.services"):
        for _sweep in range(20):
            now += datetime.timedelta(minutes=30)
            assert services.transcript_emails_retry(now=now) == []

    conversation.refresh_from_db()
    assert conversation.transcript_email_tries == services.TRANSCRIPT_EMAIL_MAX_TRIES
    assert conversation.transcript_email_due_at is None and conversation.transcript_emailed_at is None
    gave_up = [record.getMessage() for record in caplog.records if record.getMessage().startswith("gave up")]
    assert gave_up == [f"gave up emailing the transcript of conversation {conversation.pk} after 5 tries"]
    assert mail.outbox == []


def test_an_address_deleted_meanwhile_is_never_emailed(advisor, settings, broadcasts):
    conversation = ended_with_a_failed_email(advisor, settings)
    Conversation.objects.filter(pk=conversation.pk).update(visitor_email="")

    assert services.transcript_emails_retry(now=conversation.transcript_email_due_at) == []
    assert mail.outbox == []


def test_two_sweeps_at_once_send_a_transcript_once(advisor, settings, broadcasts):
    conversation = ended_with_a_failed_email(advisor, settings)
    settings.EMAIL_BACKEND = f"{__name__}.MailServerThatHolds"
    MailServerThatHolds.answer.clear()
    MailServerThatHolds.answered.clear()
    due = conversation.transcript_email_due_at
    first: list[list[int]] = []
    sweep = threading.Thread(target=lambda: first.append(services.transcript_emails_retry(now=due)))
    sweep.start()
    try:
        # The first sweep holds it, sending: the second finds it claimed.
        wait_until = timezone.now() + datetime.timedelta(seconds=10)
        while Conversation.objects.get(pk=conversation.pk).transcript_email_tries < 2 and timezone.now() < wait_until:
            pass
        assert services.transcript_emails_retry(now=due) == []
    finally:
        MailServerThatHolds.answer.set()
        sweep.join(timeout=30)
    assert first == [[conversation.pk]]
    assert [message.to for message in mail.outbox] == [["pat@example.com"]]


def test_a_mail_server_that_is_down_holds_the_sweep_for_one_try_not_for_every_email(advisor, settings, broadcasts):
    first = ended_with_a_failed_email(advisor, settings)
    second = ended_with_a_failed_email(advisor, settings)
    settings.EMAIL_BACKEND = f"{__name__}.MailServerThatRefuses"
    due = max(first.transcript_email_due_at, second.transcript_email_due_at)

    assert services.transcript_emails_retry(now=due) == []

    both = Conversation.objects.filter(pk__in=[first.pk, second.pk])
    tries = sorted(both.values_list("transcript_email_tries", flat=True))
    assert tries == [1, 2], "the second waits for the next pass"


def test_a_sending_whose_outcome_cannot_be_recorded_is_logged_and_the_pool_goes_on(caplog):
    def record(sent: bool) -> None:
        raise RuntimeError("the database is restarting")

    with caplog.at_level(logging.ERROR, logger="config.mail"):
        background_mail.send_in_background(
            mail.EmailMessage(subject="Hi", body="Hello", to=["pat@example.com"]), what="a test message", on_done=record
        )
        assert background_mail.wait_for_pending(timeout=30)

    assert [message.to for message in mail.outbox] == [["pat@example.com"]]
    failures = [record for record in caplog.records if record.name == "config.mail"]
    assert [record.getMessage() for record in failures] == ["recording whether a test message was sent failed"]
    assert failures[0].exc_info[0] is RuntimeError
