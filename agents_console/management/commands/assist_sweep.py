"""The periodic work no socket triggers: timeouts, residents gone without a word, helpers gone
offline mid-chat, automatic routing, telling waiting residents when webchat closes, transcript
emails that failed, deleting personal data once its retention period is over, and forgetting
kiosk pairings that expired unapproved."""

import logging
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from agents_console.assignment import queue_requeue_helper_gone, queue_requeue_unanswered, queue_route_waiting
from chat.services import (
    conversation_end_expired,
    conversation_mark_silent_visitors_gone,
    personal_data_purge,
    transcript_emails_retry,
    waiting_residents_update,
)
from kiosk.services import device_pairings_expired_delete

logger = logging.getLogger(__name__)

# Retention is counted in days: deleting personal data once an hour is soon enough, and spares
# the frequent passes the purge's queries.
PURGE_EVERY_SECONDS = 60 * 60


class Command(BaseCommand):
    help = (
        "End unanswered and abandoned conversations, mark gone residents whose pages stopped "
        "pinging, return unanswered automatic assignments and the conversations of helpers gone "
        "offline to the queue, route waiting "
        "conversations, tell waiting residents whether webchat is still open, try again transcript "
        "emails that failed, and delete "
        "personal data past CHAT_RETENTION_DAYS and kiosk pairings that expired unapproved. "
        "Run once (cron) or with --every N as a process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--every", type=int, default=0, help="Repeat every N seconds until stopped.")

    def handle(self, *args, every: int, **options):
        if every <= 0:
            self.sweep(purge=True)
            return
        purged_at = None
        while True:
            purge = purged_at is None or time.monotonic() - purged_at >= PURGE_EVERY_SECONDS
            try:
                self.sweep(purge=purge)
                if purge:
                    purged_at = time.monotonic()
            except Exception:
                # One failed pass (the database restarting, say) must not stop every timeout
                # and all routing until someone notices: it is logged and tried again.
                logger.exception("sweep failed; trying again in %s s", every)
            finally:
                # Not reused: a connection the failure broke, or one kept past its age.
                close_old_connections()
            time.sleep(every)

    def sweep(self, *, purge: bool) -> None:
        ended = conversation_end_expired()
        silent = conversation_mark_silent_visitors_gone()
        requeued = queue_requeue_unanswered()
        helper_gone = queue_requeue_helper_gone()
        routed = queue_route_waiting()
        waiting_residents_update()
        emailed = transcript_emails_retry()
        purged_conversations, purged_callbacks = personal_data_purge() if purge else ([], [])
        pairings = device_pairings_expired_delete() if purge else []
        for label, ids in (
            ("ended", ended),
            ("resident gone silent", silent),
            ("returned to the queue", requeued),
            ("returned to the queue, helper offline", helper_gone),
            ("routed", routed),
            ("transcript emailed on a later try", emailed),
            ("personal data deleted from conversations", purged_conversations),
            ("personal data deleted from call backs", purged_callbacks),
            ("expired kiosk pairings deleted", pairings),
        ):
            if ids:
                self.stdout.write(f"{label}: {', '.join(map(str, ids))}")
