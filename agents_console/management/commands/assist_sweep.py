"""The periodic work no socket triggers: timeouts, residents gone without a word, and
automatic routing."""

import time

from django.core.management.base import BaseCommand

from agents_console.assignment import queue_requeue_unanswered, queue_route_waiting
from chat.services import conversation_end_expired, conversation_mark_silent_visitors_gone


class Command(BaseCommand):
    help = (
        "End unanswered and abandoned conversations, mark gone residents whose pages stopped "
        "pinging, return unanswered automatic assignments to the queue and route waiting "
        "conversations. Run once (cron) or with --every N as a process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--every", type=int, default=0, help="Repeat every N seconds until stopped.")

    def handle(self, *args, every: int, **options):
        while True:
            ended = conversation_end_expired()
            silent = conversation_mark_silent_visitors_gone()
            requeued = queue_requeue_unanswered()
            routed = queue_route_waiting()
            for label, ids in (
                ("ended", ended),
                ("resident gone silent", silent),
                ("returned to the queue", requeued),
                ("routed", routed),
            ):
                if ids:
                    self.stdout.write(f"{label}: {', '.join(map(str, ids))}")
            if every <= 0:
                return
            time.sleep(every)
