"""The benchmarks under bench/ run end to end, briefly, and report what they measured.

Each uses a database of its own on the real PostgreSQL; the chat and co-browse benchmarks
start their own Daphne against it (and Redis for the Redis layers), as docs/performance.md's
runs do, only with a few conversations for a few seconds. The figures are not judged (tests
never assert on time). What is checked is that every message the benchmark sent was counted
as delivered, once, with a latency, and that the relay baseline ran beside the chat: a
benchmark that silently lost its own bookkeeping would report a result that means nothing.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.services

BASE_DIR = Path(__file__).resolve().parent.parent.parent
FIGURE = re.compile(r"(\w+)=(\S+)")


@pytest.fixture
def bench_env(postgres, redis_url):
    """The benchmarks' variables, naming a database of their own that is dropped afterwards."""
    server_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    names = {
        "BENCH_DATABASE_URL": f"dioa_bench_selftest_{os.getpid()}",
        "BENCH_STORE_DATABASE_URL": f"dioa_bench_store_selftest_{os.getpid()}",
    }
    yield {**os.environ, **{key: f"{server_url}/{name}" for key, name in names.items()}, "BENCH_REDIS_URL": redis_url}
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as connection:
        for name in names.values():
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_bench(env: dict[str, str], script: str, *arguments: str) -> str:
    finished = subprocess.run(
        [sys.executable, f"bench/{script}", *arguments],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout


def figures(line: str) -> dict[str, str]:
    return dict(FIGURE.findall(line))


def report_line(output: str, after: str, name: str) -> dict[str, str]:
    """The figures on `name`'s line in the report that starts with the heading `after`."""
    report = output.split(after, 1)[1]
    return figures(next(line for line in report.splitlines() if line.strip().startswith(name + " ")))


def assert_every_message_delivered_once(result: dict[str, str]) -> None:
    assert int(result["sent"]) > 0
    assert result["received"] == result["sent"]
    assert (result["lost"], result["duplicated"], result["errors"]) == ("0", "0", "0")
    assert float(result["p99_ms"]) > 0
    assert float(result["msgs_per_s"]) > 0


def test_the_chat_benchmark_at_a_fixed_rate_measures_the_chat_and_the_relay(bench_env):
    output = run_bench(
        bench_env,
        "chat_load.py",
        *("--layer", "pubsub", "--conversations", "3", "--rate", "2", "--duration", "2"),
        *("--warmup", "0", "--rounds", "2", "--services-anywhere"),
    )

    for name in ("chat", "relay"):
        assert_every_message_delivered_once(report_line(output, "== fixed rate", name))
        rounds = [figures(line) for line in output.splitlines() if line.strip().startswith(name + " ")]
        assert [result.get("round") for result in rounds[:2]] == ["1", "2"]
        # Two rounds pooled: the pooled row counts every round's messages.
        pooled = report_line(output, "== fixed rate", name)
        assert int(pooled["sent"]) == sum(int(result["sent"]) for result in rounds[:2])
    assert re.search(r"ratio chat/relay: p50 x[\d.]+ p99 x[\d.]+ throughput x[\d.]+", output)
    # The database's CPU is every PostgreSQL process's on the machine, counted in 10 ms ticks:
    # reported for both kinds, but a few seconds' worth is not something to compare.
    for name in ("chat", "relay"):
        assert float(report_line(output, "== fixed rate", name)["db_cpu_ms_per_msg"]) >= 0


def test_the_chat_benchmark_saturating_climbs_and_reports_the_highest_passing_rate(bench_env):
    output = run_bench(
        bench_env,
        "chat_load.py",
        *("--layer", "memory", "--conversations", "2", "--saturate", "--start-total", "8", "--max-total", "12"),
        *("--step", "1.5", "--duration", "2", "--warmup", "0", "--retries", "0", "--services-anywhere"),
    )

    for name in ("chat", "relay"):
        steps = [
            figures(line)
            for line in output.split("== saturation", 1)[0].splitlines()
            if line.strip().startswith(name + " ") and "rate/side=" in line
        ]
        # The climb starts at 8 msg/s and goes on to 12 only from a step that passed.
        assert steps[0]["total"] == "8"
        first = steps[0]
        first_passed = first["lost"] == first["duplicated"] == "0" and first["p99_ms"] != "None"
        first_passed = first_passed and float(first["p99_ms"]) < 100
        assert [step["total"] for step in steps] == (["8", "12"] if first_passed else ["8"])
        if first_passed:
            assert_every_message_delivered_once(report_line(output, "== saturation", name))


def test_the_co_browse_benchmark_delivers_every_batch_whole(bench_env):
    output = run_bench(
        bench_env, "cobrowse_load.py", "--layer", "memory", "--sessions", "2", "--duration", "2", "--no-inline-css"
    )

    batches = figures(next(line for line in output.splitlines() if line.strip().startswith("batches:")))
    assert int(batches["sent"]) > 2  # the two snapshots and incremental batches every 100 ms
    assert batches["received"] == batches["sent"]
    assert (batches["lost"], batches["duplicated"], batches["corrupt"], batches["stray"]) == ("0", "0", "0", "0")
    assert "errors: none" in output
    latency = figures(next(line for line in output.splitlines() if "incremental latency ms:" in line))
    assert float(latency["p99"]) > 0


def test_the_store_benchmark_times_every_way_and_really_stores(bench_env):
    output = run_bench(bench_env, "store_message.py", "--messages", "20", "--conversations", "3")

    rows = dict(re.findall(r"^(.+): 20 messages, .* p99 ([\d.]+) ms", output, re.MULTILINE))
    assert list(rows) == [
        "amessage_create (consumers)",
        "message_create through db()",
        "the statement alone",
        "the statement, commit not flushed",
        "SELECT 1 through fetchone",
    ]
    assert all(float(p99) > 0 for p99 in rows.values())
    # Each of the four storing ways stored its 20 measured and 50 warming messages, numbered in turn.
    with psycopg.connect(bench_env["BENCH_STORE_DATABASE_URL"]) as connection:
        stored = connection.execute("SELECT count(*), count(DISTINCT (conversation_id, seq)) FROM chat_message")
        assert stored.fetchone() == (4 * 70, 4 * 70)
