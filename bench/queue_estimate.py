"""Time the queue's wait estimate, `chat.selectors.queue_seconds_per_place`, which runs on
every change to the queue (each start, acceptance, end or put-back) and for each resident who
joins it, against a database holding a busy council's history: `--conversations` started
evenly over `--days` up to 40 minutes ago, nine in ten accepted within ten minutes and ended,
and `--waiting` still in the queue now. Prints the estimate's wall time (p50, p95, max), its
queries, and the estimate itself.

    .venv/bin/python bench/queue_estimate.py --conversations 40000

It creates (and drops first) its own PostgreSQL database, so it can run beside the other
benchmarks.
"""

import argparse
import datetime
import os
import random
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.chat_load import use_fresh_database  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_QUEUE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dioa_bench_queue")


def fill(conversations: int, days: float, waiting: int) -> None:
    from django.db import connection

    from chat.models import Conversation

    now = datetime.datetime.now(datetime.UTC)
    # The history ends 40 minutes ago, so that every acceptance (within 10 minutes) and end
    # (within 30 more) in it is in the past.
    ends = now - datetime.timedelta(minutes=40)
    rows = []
    step = datetime.timedelta(days=days) / max(conversations, 1)
    for index in range(conversations):
        joined = ends - datetime.timedelta(days=days) + index * step
        row = Conversation(token_hash=f"bench-{index}", waiting_since=joined, queued_at=joined)
        if random.random() < 0.9:
            row.assigned_at = joined + datetime.timedelta(seconds=random.uniform(10, 600))
        row.status = Conversation.Status.ENDED
        row.ended_at = (row.assigned_at or joined) + datetime.timedelta(minutes=random.uniform(2, 30))
        rows.append(row)
    for index in range(waiting):
        joined = now - datetime.timedelta(seconds=30 * (waiting - index))
        rows.append(Conversation(token_hash=f"bench-waiting-{index}", waiting_since=joined, queued_at=joined))
    Conversation.objects.bulk_create(rows, batch_size=5000)
    # created_at is set on insert; the estimate does not read it. Statistics as a database
    # that has lived with these rows would have, for its plans.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE chat_conversation")


def measure(repeats: int) -> tuple[list[float], int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chat import selectors

    selectors.queue_seconds_per_place()  # connection and plans warm
    times = []
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            estimate = selectors.queue_seconds_per_place()
            times.append((time.perf_counter() - started) * 1000)
    return times, len(queries), estimate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=40000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--waiting", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    use_fresh_database(DATABASE_URL)
    import django

    django.setup()
    random.seed(1)
    fill(args.conversations, args.days, args.waiting)
    times, queries, estimate = measure(args.repeats)
    ordered = sorted(times)
    print(
        f"queue_seconds_per_place conversations={args.conversations} days={args.days} waiting={args.waiting} "
        f"repeats={args.repeats} p50_ms={statistics.median(times):.2f} "
        f"p95_ms={ordered[int(0.95 * (len(ordered) - 1))]:.2f} max_ms={ordered[-1]:.2f} "
        f"queries={queries} estimate_s={estimate}"
    )


if __name__ == "__main__":
    main()
