"""Time storing one chat message, as a consumer does it, one message after another on one
conversation, the broadcast to the in-memory layer included: `chat.services.amessage_create`
(on PostgreSQL, one statement from the event loop) and, for comparison, the sync
`message_create` through `config.async_db.db` (a worker thread and Django's pooled
connection). Prints wall time and this process's CPU time per message.

    .venv/bin/python bench/store_message.py --messages 1000

It creates (and drops first) its own database, so it can run beside bench/chat_load.py. Run
it pinned to one core (`taskset -c 0`) to compare with the figures in docs/performance.md.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.chat_load import prepare_database  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_STORE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dioa_bench_store")


def prepare() -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-only-secret-key-" + "s" * 40,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": DATABASE_URL,
            "CHAT_MESSAGES_PER_MINUTE": "1000000000",
            "DJANGO_LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("REDIS_URL", None)
    prepare_database(dict(os.environ))


async def measure(count: int) -> dict[str, tuple[list[float], float]]:
    """For each way of storing: wall time of each message (ms), and CPU time per message (ms)."""
    from chat import services
    from chat.models import Conversation
    from config.async_db import db

    results = {}
    for name, store in (
        ("amessage_create (consumers)", services.amessage_create),
        ("message_create through db()", db(services.message_create)),
    ):
        # Created directly: starting one through the service needs a helper online.
        conversation = await db(Conversation.objects.create)(token_hash=f"bench-{name[:8]}".ljust(64, "0"))
        timings = []
        for number in range(count + 50):
            if number == 50:  # the first ones warm the connections and the caches
                cpu_started = time.process_time()
            started = time.perf_counter()
            await store(conversation_id=conversation.pk, author_kind="visitor", body="x" * 60, client_id=f"m-{number}")
            if number >= 50:
                timings.append((time.perf_counter() - started) * 1000)
        results[name] = (sorted(timings), (time.process_time() - cpu_started) * 1000 / count)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    prepare()
    import django

    django.setup()
    for name, (timings, cpu_per_message) in asyncio.run(measure(args.messages)).items():

        def pct(p: float, timings=timings) -> float:
            return timings[min(len(timings) - 1, int(p / 100 * len(timings)))]

        print(
            f"{name}: {len(timings)} messages, p50 {pct(50):.2f} ms, p90 {pct(90):.2f} ms, "
            f"p99 {pct(99):.2f} ms, mean {statistics.fmean(timings):.2f} ms, cpu {cpu_per_message:.2f} ms a message"
        )


if __name__ == "__main__":
    main()
