"""Time storing one chat message, as a consumer does it, one message after another, the
broadcast to the in-memory layer included: `chat.services.amessage_create` (on PostgreSQL, one
statement from the event loop) and, for comparison, the sync `message_create` through
`config.async_db.db` (a worker thread and Django's pooled connection), that one statement
alone (no message object, no broadcast), the same with a commit that does not wait for the
disk (`synchronous_commit` off for that transaction: what the flush costs; the product
never does it), and a bare round trip (`SELECT 1` through `config.async_db.fetchone`), the
floor under any statement. Prints wall time and this process's CPU time per message.

    .venv/bin/python bench/store_message.py --messages 1000
    .venv/bin/python bench/store_message.py --messages 1000 --gap 0.025 --conversations 100

Back to back (the default) the database stays busy and its caches warm. At the realistic rate
a server stores a message about every 25 ms (100 conversations) and the database sits idle in
between: `--gap` waits that long before each message, and `--conversations` spreads the
messages as a server's are (on one conversation each message's rate-limit count reads every
earlier message of the last minute).

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

from bench.chat_load import use_fresh_database  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_STORE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dioa_bench_store")


def prepare() -> None:
    use_fresh_database(DATABASE_URL, CHAT_MESSAGES_PER_MINUTE="1000000000")


async def measure(count: int, gap: float, conversations: int) -> dict[str, tuple[list[float], float]]:
    """For each way of storing: wall time of each message (ms), and CPU time per message (ms)."""
    from chat import services
    from chat.models import Conversation
    from config import async_db

    async def bare_round_trip(**_message) -> None:
        await async_db.fetchone("SELECT 1", {})

    async def statement_alone(**message) -> None:
        await async_db.fetchone(services.STORE_MESSAGE_SQL, services._message_store_params(author=None, **message))

    async def statement_without_flush(**message) -> None:
        # For comparison only: the commit does not wait for the WAL to reach the disk, so a
        # crash of the database could lose a message already announced. The product never does this.
        sql = services.STORE_MESSAGE_SQL.replace("SELECT", "SELECT set_config('synchronous_commit', 'off', true),", 1)
        await async_db.fetchone(sql, services._message_store_params(author=None, **message))

    results = {}
    for way, (name, store) in enumerate(
        (
            ("amessage_create (consumers)", services.amessage_create),
            ("message_create through db()", async_db.db(services.message_create)),
            ("the statement alone", statement_alone),
            ("the statement, commit not flushed", statement_without_flush),
            ("SELECT 1 through fetchone", bare_round_trip),
        )
    ):
        # Created directly: starting one through the service needs a helper online.
        conversation_ids = [
            (await async_db.db(Conversation.objects.create)(token_hash=f"bench-{way}-{number:06d}".ljust(64, "0"))).pk
            for number in range(conversations)
        ]
        timings, cpu = [], 0.0
        for number in range(count + 50):
            if gap:
                await asyncio.sleep(gap)
            cpu_started, started = time.process_time(), time.perf_counter()
            await store(
                conversation_id=conversation_ids[number % conversations],
                author_kind="visitor",
                body="x" * 60,
                client_id=f"m-{number}",
            )
            if number >= 50:  # the first ones warm the connections and the caches
                timings.append((time.perf_counter() - started) * 1000)
                cpu += time.process_time() - cpu_started
        results[name] = (sorted(timings), cpu * 1000 / count)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--gap", type=float, default=0.0, help="seconds idle before each message (default: none)")
    parser.add_argument("--conversations", type=int, default=1, help="conversations the messages take turns on")
    args = parser.parse_args()
    prepare()
    import django

    django.setup()
    for name, (timings, cpu_per_message) in asyncio.run(measure(args.messages, args.gap, args.conversations)).items():

        def pct(p: float, timings=timings) -> float:
            return timings[min(len(timings) - 1, int(p / 100 * len(timings)))]

        print(
            f"{name}: {len(timings)} messages, p50 {pct(50):.2f} ms, p90 {pct(90):.2f} ms, "
            f"p99 {pct(99):.2f} ms, mean {statistics.fmean(timings):.2f} ms, cpu {cpu_per_message:.2f} ms a message"
        )


if __name__ == "__main__":
    main()
