"""Chat load benchmark: N conversations, each a resident socket and a helper socket.

Starts its own Daphne (pinned to CPU 0; the load generator runs on CPU 1) against
PostgreSQL and, for the Redis layers, Redis, all on 127.0.0.1. While it runs, PostgreSQL's and
Redis's processes are kept on the load generator's core too (and put back as they were when
it ends; `--services-anywhere` leaves them be): the server is what is measured, and a
database backend woken by it would otherwise be placed on its core, where the pinned server
cannot move away from it. For each rate it drives the
real chat protocol and then, on the same server, the thinnest relay (bench/relay.py) at the
same rate, and prints latency percentiles, throughput, errors, lost and duplicated messages
and the server's memory, with the chat-to-relay ratios. It stops by itself.

    .venv/bin/python bench/chat_load.py --layer pubsub --conversations 100 --rate 0.2 --duration 30
    .venv/bin/python bench/chat_load.py --layer core --conversations 500 --saturate

`--rate` is messages per second from *each side* of each conversation (0.2: one every five
seconds); each side keeps its own schedule, or with `--lockstep` both sides send at the same
instant every time (the worst case for the chat, whose two messages then queue on one row
lock). `--saturate` raises the total rate step by step and reports the highest that keeps p99
under 100 ms with nothing lost, for the chat and for the relay; a failing step is run once
more before the climb stops (`--retries`), so that one stall of a shared machine (a slow
disk flush, another process) does not decide a row. Each kind first runs five unmeasured
seconds at the first rate (`--warmup`): a fresh server opens its database connections on
its first messages, a cost of the first seconds, not of the rate.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field, fields
from pathlib import Path

import websockets

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

SECRET_KEY = "bench-only-secret-key-" + "b" * 40
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dioa_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
P99_CEILING_MS = 100.0
SETUP_BATCH = 50
# How long one socket's set-up step (online, started, accepted) may take before the run stops.
SETUP_TIMEOUT = 60.0


@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)
    sent: int = 0
    received: int = 0
    duplicates: int = 0
    errors: int = 0
    expected: set[str] = field(default_factory=set)
    # Of the phase measured: seconds under load and the CPU the server and the database used.
    seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    database_cpu_seconds: float = 0.0

    def lost(self) -> int:
        return len(self.expected)

    @classmethod
    def pooled(cls, phases: list["Stats"]) -> "Stats":
        """One measurement of several phases at the same rate, as if they had run as one."""
        pool = cls()
        for phase in phases:
            # Every field adds up: counts and times are summed, latencies joined, expected ids united.
            for name in (stat.name for stat in fields(cls)):
                mine, theirs = getattr(pool, name), getattr(phase, name)
                setattr(pool, name, mine | theirs if isinstance(mine, set) else mine + theirs)
        return pool

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)

        def pct(p):
            return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 1) if lat else None

        # Both sides' messages, each stored (chat) and delivered to two sockets.
        offered = max(1, 2 * self.sent)
        return {
            "sent": self.sent,
            "received": self.received,
            "msgs_per_s": round(self.received / self.seconds, 1),
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "max_ms": round(lat[-1], 1) if lat else None,
            "errors": self.errors,
            "lost": self.lost(),
            "duplicated": self.duplicates,
            "server_cpu_ms_per_msg": round(self.server_cpu_seconds * 1000 / offered, 2),
            "db_cpu_ms_per_msg": round(self.database_cpu_seconds * 1000 / offered, 2),
        }


def server_env(layer: str, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": DATABASE_URL,
        "CHANNEL_LAYER_PREFIX": f"dioa-bench-{port}",
        "BENCH_RELAY": "1",
        "DJANGO_LOG_LEVEL": "WARNING",
        # The benchmark measures throughput, not the abuse limits.
        "CHAT_STARTS_PER_ADDRESS_PER_HOUR": "1000000",
        "CHAT_MESSAGES_PER_MINUTE": "1000000",
        "CHAT_ABANDONED_TIMEOUT_MINUTES": "600",
        "CHAT_WAITING_TIMEOUT_MINUTES": "600",
    }
    env.pop("REDIS_URL", None)
    env.pop("CHANNEL_LAYER", None)
    if layer != "memory":
        env["REDIS_URL"] = REDIS_URL
        env["CHANNEL_LAYER"] = layer
    return env


def prepare_database(env: dict[str, str]) -> None:
    """A fresh, migrated database at the env's DATABASE_URL (dropped first if it exists)."""
    import psycopg

    server_url, name = env["DATABASE_URL"].rsplit("/", 1)
    admin_url = server_url + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=BASE_DIR, env=env, check=True)


def use_fresh_database(url: str, **overrides: str) -> None:
    """Point this process's Django at a fresh, migrated database at `url`, for a benchmark
    that times the code in-process rather than through a server; `overrides` are settings'
    environment variables."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": url,
            "DJANGO_LOG_LEVEL": "WARNING",
            **overrides,
        }
    )
    os.environ.pop("REDIS_URL", None)
    prepare_database(dict(os.environ))


def helper_sessions(env: dict[str, str], count: int) -> list[str]:
    """Create `count` advisors with signed-in sessions; return their session cookies."""
    os.environ.update({k: v for k, v in env.items() if k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CHANNEL"))})
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore

    group = Group.objects.get(name="advisor")
    cookies = []
    for index in range(count):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-{index}", defaults={"first_name": "Bench"})
        user.groups.add(group)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
    return cookies


def process_stat(stat: Path) -> tuple[str, list[str]]:
    """A /proc/<pid>/stat file's command name and the fields after it (utime is [11])."""
    head, tail = stat.read_text().rsplit(")", 1)
    return head.split("(", 1)[1], tail.split()


def processes_named(names: tuple[str, ...]):
    """Each running process whose command is one of `names`: its /proc folder and stat fields."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = process_stat(stat)
        except (OSError, ValueError):
            continue  # gone meanwhile
        if name in names:
            yield stat.parent, fields


def cpu_ticks(pid: int) -> int:
    _, fields = process_stat(Path(f"/proc/{pid}/stat"))
    return int(fields[11]) + int(fields[12])  # utime + stime


def database_cpu_ticks() -> int:
    """CPU ticks of every PostgreSQL process on this machine (backends, WAL writer…): the
    database's share of a chat message, which the server's own figure leaves out and which
    competes for the same two cores."""
    # utime and stime, and cutime and cstime: the postmaster's holds the backends and
    # autovacuum workers that exited meanwhile.
    return sum(sum(int(ticks) for ticks in fields[11:15]) for _, fields in processes_named(("postgres",)))


async def wait_until_quiet(pid: int, limit: float = 60.0) -> None:
    """Wait until the server has used under 10 % of a core for a second: the set-up's queue
    events (every console hears every arrival) must drain before anything is measured."""
    hz = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + limit
    before = cpu_ticks(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        now = cpu_ticks(pid)
        if now - before < 0.1 * hz:
            return
        before = now


SERVICES = ("postgres", "redis-server")


class ServicesBesideLoad:
    """Keeps the machine's PostgreSQL and Redis processes (every thread, and the backends
    PostgreSQL forks meanwhile, which inherit it) on `cpus` while the benchmark runs, then
    gives each thread back the CPUs it had; one forked meanwhile gets those the services had.
    Where that is not permitted (the services belong to another user) it says so and changes
    nothing."""

    def __init__(self, cpus: set[int]):
        self.cpus = cpus
        self.before: dict[int, set[int]] = {}

    @staticmethod
    def service_threads() -> list[int]:
        threads = []
        for folder, _ in processes_named(SERVICES):
            with contextlib.suppress(OSError):  # gone meanwhile
                threads += [int(task.name) for task in (folder / "task").iterdir()]
        return threads

    def __enter__(self) -> "ServicesBesideLoad":
        for tid in self.service_threads():
            try:
                had = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, self.cpus)
            except ProcessLookupError:
                continue
            except PermissionError:
                print(
                    f"  note: not permitted to move PostgreSQL and Redis to CPU {sorted(self.cpus)}; left as they are"
                )
                self.__exit__()
                return self
            self.before[tid] = had
        return self

    def __exit__(self, *_exc) -> None:
        if not self.before:
            return
        original = set().union(*self.before.values())
        for tid in self.service_threads():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.sched_setaffinity(tid, self.before.get(tid, original))
        self.before.clear()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Server:
    """Daphne on a socket this process binds on `port` (0: any free one) and keeps.

    Binding here leaves no moment in which another process can take the port before the
    server does, and whose health check would then answer for it (the tests run these
    benchmarks beside other servers).
    """

    def __init__(self, layer: str, port: int = 0):
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", port))
        # Twisted's backlog for the ports Daphne binds itself, so the set-up's bursts of
        # connections meet the server they met before.
        self.socket.listen(50)
        self.port = self.socket.getsockname()[1]
        self.env = server_env(layer, self.port)
        self.process = None

    def start(self) -> None:
        command = ["taskset", "-c", "0", sys.executable, "-m", "daphne", "--fd", str(self.socket.fileno())]
        self.process = subprocess.Popen(
            [*command, "config.asgi:application"],
            cwd=BASE_DIR,
            env=self.env,
            pass_fds=[self.socket.fileno()],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def read_frames(connection, on_frame) -> None:
    try:
        async for text in connection:
            on_frame(json.loads(text))
    except websockets.ConnectionClosed:
        pass


# Reader tasks, kept so they are not garbage-collected while they run.
READERS: set[asyncio.Task] = set()


def start_reader(connection, on_frame) -> None:
    task = asyncio.create_task(read_frames(connection, on_frame))
    READERS.add(task)
    task.add_done_callback(READERS.discard)


class HelperConnection:
    """One helper's console socket, carrying every conversation that helper accepted, as a
    real helper's tab does. Frames go to the conversation they name."""

    def __init__(self, cookie: str):
        self.cookie = cookie
        self.pairs: dict[int, ChatPair] = {}
        self.online = asyncio.Event()

    async def open(self, base: str) -> None:
        self.socket = await websockets.connect(
            f"{base}/ws/console/", origin="http://127.0.0.1", additional_headers={"Cookie": self.cookie}, max_queue=None
        )
        start_reader(self.socket, self.on_frame)
        # The server accepts the socket before it records the helper as online, and a resident
        # may start only once someone is: a start in between is refused `chat_unavailable`.
        await asyncio.wait_for(self.online.wait(), SETUP_TIMEOUT)

    def on_frame(self, frame) -> None:
        if frame["type"] == "queue.snapshot":
            self.online.set()
            return
        data = frame["data"]
        conversation_id = data.get("conversation_id") or (data.get("conversation") or {}).get("id")
        pair = self.pairs.get(conversation_id)
        if pair is not None:
            pair.on_helper(frame)
        elif frame["type"] == "error" and self.pairs:
            # An error names no conversation: count it against one of this helper's.
            next(iter(self.pairs.values())).stats.errors += 1


class LoadPair:
    """Drives both sides of one conversation; only the resident's messages are timed."""

    lockstep = False

    async def drive(self, rate: float, until: float) -> None:
        if self.lockstep:
            # The worst case: both people send at the same instant, every time.
            offset = random.uniform(0, 1 / rate)
            await asyncio.gather(self.drive_side("v", rate, until, offset), self.drive_side("h", rate, until, offset))
        else:
            # Each side keeps its own schedule, as two people typing do.
            await asyncio.gather(
                self.drive_side("v", rate, until, random.uniform(0, 1 / rate)),
                self.drive_side("h", rate, until, random.uniform(0, 1 / rate)),
            )

    async def drive_side(self, side: str, rate: float, until: float, offset: float) -> None:
        await asyncio.sleep(offset)
        socket = self.visitor if side == "v" else self.helper
        number = 0
        while time.monotonic() < until:
            number += 1
            client_id = f"{side}-{self.step}-{self.index}-{number}"
            if side == "v":
                self.sent_at[client_id] = time.monotonic()
                self.stats.expected.add(client_id)
                self.stats.sent += 1
            await socket.send(self.frame(side, client_id))
            await asyncio.sleep(1 / rate)


class ChatPair(LoadPair):
    """One conversation: a resident socket and the helper connection that accepted it."""

    def __init__(self, index: int, stats: Stats):
        self.index = index
        self.stats = stats
        self.seen_by_helper: set[int] = set()
        self.seen_by_visitor: set[int] = set()
        self.conversation_id = None
        self.ready = asyncio.Event()
        self.refusal: str | None = None
        self.sent_at: dict[str, float] = {}

    def on_visitor(self, frame) -> None:
        kind, data = frame["type"], frame["data"]
        if kind == "state.snapshot":
            self.conversation_id = data["conversation"]["id"]
            self.ready.set()
        elif kind == "message.created":
            if data["seq"] in self.seen_by_visitor:
                self.stats.duplicates += 1
            self.seen_by_visitor.add(data["seq"])
        elif kind == "error":
            self.stats.errors += 1
            if not self.ready.is_set():
                self.refusal = data.get("code")
                self.ready.set()

    def on_helper(self, frame) -> None:
        kind, data = frame["type"], frame["data"]
        if kind == "message.created" and data["conversation_id"] == self.conversation_id:
            if data["seq"] in self.seen_by_helper:
                self.stats.duplicates += 1
                return
            self.seen_by_helper.add(data["seq"])
            client_id = data["client_id"] or ""
            if client_id.startswith("v-") and client_id in self.sent_at:
                self.stats.latencies_ms.append((time.monotonic() - self.sent_at.pop(client_id)) * 1000)
                self.stats.received += 1
                self.stats.expected.discard(client_id)
        elif kind == "state.snapshot" and data["conversation"]["id"] == self.conversation_id:
            self.seen_by_helper.update(m["seq"] for m in data["messages"])
            self.accepted.set()
        elif kind == "error":
            self.stats.errors += 1

    async def connect(self, base: str, helper: HelperConnection) -> None:
        self.visitor = await websockets.connect(f"{base}/ws/chat/", origin="http://127.0.0.1", max_queue=None)
        start_reader(self.visitor, self.on_visitor)
        await self.visitor.send(json.dumps({"type": "conversation.start", "data": {"name": f"Bench {self.index}"}}))
        await asyncio.wait_for(self.ready.wait(), SETUP_TIMEOUT)
        if self.refusal is not None:
            raise SystemExit(f"resident {self.index}: conversation.start refused: {self.refusal}")
        self.helper = helper.socket
        self.accepted = asyncio.Event()
        helper.pairs[self.conversation_id] = self
        await self.helper.send(
            json.dumps({"type": "conversation.accept", "data": {"conversation_id": self.conversation_id}})
        )
        await asyncio.wait_for(self.accepted.wait(), SETUP_TIMEOUT)

    def frame(self, side: str, client_id: str) -> str:
        data = {"client_id": client_id, "body": ("x" if side == "v" else "y") * 60}
        if side == "h":
            data["conversation_id"] = self.conversation_id
        return json.dumps({"type": "message.send", "data": data})


class RelayPair(LoadPair):
    """The baseline: a resident-side and a helper-side socket on one relay group."""

    def __init__(self, index: int, stats: Stats):
        self.index = index
        self.stats = stats
        self.sent_at: dict[str, float] = {}
        self.seen: set[str] = set()

    def on_helper(self, text) -> None:
        if not text["id"].startswith("v-"):
            return
        if text["id"] in self.seen:
            self.stats.duplicates += 1
            return
        self.seen.add(text["id"])
        if text["id"] in self.sent_at:
            self.stats.latencies_ms.append((time.monotonic() - self.sent_at.pop(text["id"])) * 1000)
            self.stats.received += 1
            self.stats.expected.discard(text["id"])

    async def connect(self, base: str, _helper: None) -> None:
        url = f"{base}/ws/bench/relay/{self.index}/"
        self.visitor = await websockets.connect(url, origin="http://127.0.0.1", max_queue=None)
        self.helper = await websockets.connect(url, origin="http://127.0.0.1", max_queue=None)
        start_reader(self.visitor, lambda frame: None)
        start_reader(self.helper, self.on_helper)

    def frame(self, side: str, client_id: str) -> str:
        return json.dumps({"id": client_id, "body": ("x" if side == "v" else "y") * 60})


async def open_pairs(kind, base, cookies, conversations, server, per_helper=1):
    """Connect every pair once; the same sockets then carry each rate step. Helpers' consoles
    open first (chat needs a helper online), each then accepting `per_helper` residents."""
    pairs = [kind(index, Stats()) for index in range(conversations)]
    setup_started = time.monotonic()
    helpers = []
    if kind is ChatPair:
        helpers = [HelperConnection(cookie) for cookie in cookies[: math.ceil(conversations / per_helper)]]
        await asyncio.gather(*(helper.open(base) for helper in helpers))
    for start in range(0, conversations, SETUP_BATCH):
        batch = pairs[start : start + SETUP_BATCH]
        await asyncio.gather(
            *(pair.connect(base, helpers[pair.index // per_helper] if helpers else None) for pair in batch)
        )
    await wait_until_quiet(server.process.pid)
    return pairs, helpers, time.monotonic() - setup_started


async def close_pairs(pairs, helpers) -> None:
    for pair in pairs:
        await pair.visitor.close()
        if isinstance(pair, RelayPair):
            await pair.helper.close()
    for helper in helpers:
        await helper.socket.close()


async def drive_step(pairs, rate, duration, server, setup_seconds, step, grace=3.0) -> tuple[Stats, dict]:
    """Drive every pair at `rate` for `duration` seconds; the step's stats and the server's
    figures after it (set-up time, memory)."""
    stats = Stats()
    for pair in pairs:
        pair.stats = stats
        pair.step = step
    rss_before = rss_kib(server.process.pid)
    cpu_before = cpu_ticks(server.process.pid)
    database_before = database_cpu_ticks()
    started = time.monotonic()
    until = started + duration
    await asyncio.gather(*(pair.drive(rate, until) for pair in pairs))
    await asyncio.sleep(grace)
    hz = os.sysconf("SC_CLK_TCK")
    stats.server_cpu_seconds = (cpu_ticks(server.process.pid) - cpu_before) / hz
    stats.database_cpu_seconds = (database_cpu_ticks() - database_before) / hz
    stats.seconds = time.monotonic() - started - grace
    # The next step starts from a quiet server too.
    await wait_until_quiet(server.process.pid)
    return stats, {
        "setup_s": round(setup_seconds, 1),
        "server_rss_mib": round(rss_kib(server.process.pid) / 1024, 1),
        "server_rss_before_mib": round(rss_before / 1024, 1),
    }


def passes(result: dict) -> bool:
    return (
        result["lost"] == 0
        and result["duplicated"] == 0
        and result["p99_ms"] is not None
        and result["p99_ms"] < P99_CEILING_MS
    )


def show(label: str, rate: float, args, chat: dict, relay: dict) -> None:
    total = round(rate * 2 * args.conversations, 1)
    print(f"\n== {label}: layer={args.layer} conversations={args.conversations} rate/side={rate}/s total={total} msg/s")
    for name, result in (("chat", chat), ("relay", relay)):
        print(f"  {name:5} " + " ".join(f"{key}={value}" for key, value in result.items()))
    if chat["p99_ms"] and relay["p99_ms"]:
        print(
            f"  ratio chat/relay: p50 x{chat['p50_ms'] / max(relay['p50_ms'], 0.1):.2f}"
            f" p99 x{chat['p99_ms'] / max(relay['p99_ms'], 0.1):.2f}"
            f" throughput x{chat['msgs_per_s'] / max(relay['msgs_per_s'], 0.1):.2f}"
        )
    sys.stdout.flush()


KINDS = (("chat", ChatPair), ("relay", RelayPair))


async def open_and_warm(kind, args, base: str, cookies: list[str], server: Server, rate: float):
    pairs, helpers, setup_seconds = await open_pairs(kind, base, cookies, args.conversations, server, args.per_helper)
    if args.warmup:
        # Not measured: the first messages open the server's database connections.
        await drive_step(pairs, rate, args.warmup, server, setup_seconds, step="warmup")
    return pairs, helpers, setup_seconds


def print_step(name: str, total: float, rate: float, result: dict) -> None:
    print(f"  {name:5} total={total} msg/s rate/side={rate:.3f}/s " + " ".join(f"{k}={v}" for k, v in result.items()))
    sys.stdout.flush()


async def fixed_rate(args, server: Server, base: str, cookies: list[str]) -> None:
    """The chat and then the relay on fresh sockets, `--rounds` times over, each kind's rounds
    pooled into one row: a stall of the shared machine weighs as a share of one round, and a
    drift of its speed falls on both kinds alike rather than on whichever ran second."""
    total = args.rate * 2 * args.conversations
    helpers_per_round = math.ceil(args.conversations / args.per_helper)
    phases: dict[str, list[Stats]] = {"chat": [], "relay": []}
    server_after: dict[str, dict] = {}
    for round_number in range(args.rounds):
        # Each round's residents go to helpers of their own, who hold no earlier round's chats.
        round_cookies = cookies[round_number * helpers_per_round : (round_number + 1) * helpers_per_round]
        for name, kind in KINDS:
            pairs, helpers, setup_seconds = await open_and_warm(kind, args, base, round_cookies, server, args.rate)
            stats, server_after[name] = await drive_step(
                pairs, args.rate, args.duration, server, setup_seconds, f"r{round_number}"
            )
            print_step(name, total, args.rate, stats.summary() | server_after[name] | {"round": round_number + 1})
            phases[name].append(stats)
            await close_pairs(pairs, helpers)
    pooled = {name: Stats.pooled(phases[name]).summary() | server_after[name] for name in phases}
    label = f"fixed rate, per_helper={args.per_helper} lockstep={args.lockstep}, {args.rounds} round(s) pooled"
    show(label, args.rate, args, pooled["chat"], pooled["relay"])


async def saturate(args, server: Server, base: str, cookies: list[str]) -> None:
    totals, total = [], args.start_total
    while total <= args.max_total:
        totals.append(total)
        total = round(total * args.step)
    results: dict[str, list] = {"chat": [], "relay": []}
    # Each kind keeps its sockets for every step; it stops at its first failing step.
    for name, kind in KINDS:
        first_rate = totals[0] / (2 * args.conversations)
        pairs, helpers, setup_seconds = await open_and_warm(kind, args, base, cookies, server, first_rate)
        for total in totals:
            rate = total / (2 * args.conversations)
            for attempt in range(1 + args.retries):
                stats, server_after = await drive_step(
                    pairs, rate, args.duration, server, setup_seconds, f"{len(results[name])}.{attempt}"
                )
                result = stats.summary() | server_after
                print_step(name, total, rate, result)
                if passes(result):
                    break
            results[name].append((total, rate, result))
            if not passes(result):
                break
        await close_pairs(pairs, helpers)
    print(
        f"\n== saturation: layer={args.layer} conversations={args.conversations} per_helper={args.per_helper}"
        f" lockstep={args.lockstep}"
    )
    best = {name: next((r for r in reversed(steps) if passes(r[2])), None) for name, steps in results.items()}
    for name, found in best.items():
        if found:
            print(
                f"  {name:5} highest passing: {found[0]} msg/s offered: "
                + " ".join(f"{k}={v}" for k, v in found[2].items())
            )
        else:
            print(f"  {name:5} none of the rates tried passed")
    if best["chat"] and best["relay"]:
        print(f"  ratio chat/relay throughput x{best['chat'][2]['msgs_per_s'] / best['relay'][2]['msgs_per_s']:.2f}")


async def main_async(args, server: Server, cookies: list[str]) -> None:
    LoadPair.lockstep = args.lockstep
    server.start()
    base = f"ws://127.0.0.1:{args.port}"
    try:
        await (saturate if args.saturate else fixed_rate)(args, server, base, cookies)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", choices=["memory", "core", "pubsub"], default="pubsub")
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.2, help="messages per second from each side")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per phase")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--per-helper", type=int, default=1, help="conversations each helper's console holds (a floor has few helpers)"
    )
    parser.add_argument("--saturate", action="store_true")
    parser.add_argument(
        "--services-anywhere",
        action="store_true",
        help="leave PostgreSQL and Redis where the scheduler puts them, the server's core included "
        "(runs A to F of docs/performance.md)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="at a fixed rate, times the chat and then the relay are run, each on fresh sockets; each kind's "
        "rounds are pooled into one row",
    )
    parser.add_argument(
        "--lockstep", action="store_true", help="both sides of a conversation send at the same instant (worst case)"
    )
    parser.add_argument("--start-total", type=int, default=100, help="first total msg/s when saturating")
    parser.add_argument("--max-total", type=int, default=3000)
    parser.add_argument("--step", type=float, default=1.5)
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds of load before measuring, at the first rate (0: none)"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=1,
        help="when saturating, times a failing step is run again before the climb stops (one stall of the "
        "machine then does not decide a row)",
    )
    args = parser.parse_args()
    place = hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1
    if place:
        os.sched_setaffinity(0, {1})
    server = Server(args.layer, args.port)
    args.port = server.port
    prepare_database(server.env)
    rounds = 1 if args.saturate else args.rounds
    cookies = helper_sessions(server.env, rounds * math.ceil(args.conversations / args.per_helper))
    with ServicesBesideLoad({1}) if place and not args.services_anywhere else contextlib.nullcontext():
        asyncio.run(main_async(args, server, cookies))


if __name__ == "__main__":
    main()
