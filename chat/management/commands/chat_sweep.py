"""End conversations that nobody answered in time and those their resident left."""

import time

from django.core.management.base import BaseCommand

from chat.services import conversation_end_expired


class Command(BaseCommand):
    help = "End unanswered and abandoned conversations. Run once (cron) or with --every N as a process."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=int, default=0, help="Repeat every N seconds until stopped.")

    def handle(self, *args, every: int, **options):
        while True:
            ended = conversation_end_expired()
            if ended:
                self.stdout.write(f"ended {len(ended)} conversation(s): {', '.join(map(str, ended))}")
            if every <= 0:
                return
            time.sleep(every)
