"""Co-browse load benchmark: resident-to-helper page-event latency and bytes a second.

Starts its own Daphne as bench/chat_load.py does (pinned to CPU 0, the load generator on
CPU 1; PostgreSQL and, for the Redis layers, Redis on 127.0.0.1, from the same BENCH_*
variables) and drives the real websocket protocol. Unlike the chat benchmark it leaves
PostgreSQL and Redis wherever the scheduler puts them, as when the co-browse figures in
docs/performance.md were measured. It stops by itself.

    .venv/bin/python bench/cobrowse_load.py --layer memory --sessions 20 --duration 20
    .venv/bin/python bench/cobrowse_load.py --layer pubsub --sessions 20 --duration 30

Workload. `--sessions` resident/helper pairs, all at once. Set-up, per pair: a console socket
signed in as its own advisor; a resident socket starts a conversation about the resident
parking permit; the helper accepts it, asks to co-browse, the resident consents, the helper
opens the view and the resident is asked for a full snapshot. Nothing is measured until the
server is quiet again. Then, for `--duration` seconds, each resident (starting at a random
point of its first 100 ms) sends:

- one full-snapshot batch: a Meta event and an rrweb-like FullSnapshot whose node tree is
  the HTML of /services/resident-parking-permit/ as this server serves it (fetched once over
  HTTP; about 6 kB of HTML) with the page's same-origin stylesheet inlined as rrweb does (the
  council's CSS, 146 kB): a 161 kB snapshot in 14 parts of at most 12,000 characters, cut as
  the widget cuts them (`--no-inline-css`: 15 kB in two parts);
- every 100 ms (the widget's batching interval) one incremental batch: one to three mouse
  move events of three positions each and an input event, 300-720 characters of JSON.

Latency runs from handing a batch's first part to the resident socket to the helper socket
receiving its last part, and is reported for incremental batches; the snapshots' delivery
is reported apart. Bytes a second count the `data` strings the helpers received (the JSON is
ASCII, so characters are bytes) over the sending time. A batch not fully received three
seconds after the last send counts as lost; one whose parts join into anything other than
what was sent counts as corrupt. Errors are counted by code.
"""

import argparse
import asyncio
import json
import math
import os
import random
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import websockets

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.chat_load import (  # noqa: E402
    SETUP_BATCH,
    SETUP_TIMEOUT,
    Server,
    Stats,
    helper_sessions,
    prepare_database,
    rss_kib,
    start_reader,
    wait_until_quiet,
)

PAGE_PATH = "/services/resident-parking-permit/"
SERVICE_SLUG = "resident-parking-permit"
# As chat/static/chat/js/cobrowse.js (BATCH_MS, PART_CHARS) and chat/protocol.py.
BATCH_SECONDS = 0.1
PART_CHARS = 12000
MAX_FRAME_BYTES = 16 * 1024
GRACE_SECONDS = 3.0
VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
REGISTRATIONS = ["A", "AB", "AB1", "AB12", "AB12 ", "AB12 C", "AB12 CD", "AB12 CDE"]


def percentile(values: list[float], p: float) -> float | None:
    """The same nearest-rank rule as chat_load.Stats.summary, for any p."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1) if ordered else None


def catalogue_service_ensure() -> None:
    """The catalogue row the resident's conversation is about (demo_data is not loaded)."""
    from kiosk.models import Service, ServiceCategory

    category, _ = ServiceCategory.objects.get_or_create(slug="parking", defaults={"name": "Parking"})
    Service.objects.get_or_create(
        slug=SERVICE_SLUG,
        defaults={
            "name": "Apply for a resident parking permit",
            "category": category,
            "url": PAGE_PATH,
            "kiosk_allowed": True,
        },
    )


def http_get(port: int, path: str) -> str:
    """The body of a page this server serves; stops the benchmark clearly if it is not a 200."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        hint = ""
        if error.code == 500:
            hint = " With DJANGO_DEBUG=0 the page needs the static files manifest (see collectstatic above)."
        raise SystemExit(f"GET {url} returned {error.code}, not 200.{hint}") from None
    except OSError as error:
        raise SystemExit(f"GET {url} failed: {error}") from None


class SnapshotBuilder(HTMLParser):
    """Turns HTML into a node tree in rrweb-snapshot's serialised format, ids in document order."""

    def __init__(self, stylesheet=None):
        super().__init__(convert_charrefs=True)
        # href -> CSS text, or None: rrweb inlines a same-origin stylesheet as `_cssText`.
        self.stylesheet = stylesheet
        self.inlined_css_chars = 0
        self.next_id = 1
        self.document = self.node(type=0, childNodes=[])
        self.stack = [self.document]
        self.element_ids: list[int] = []
        self.field_ids: list[int] = []

    def node(self, **fields) -> dict:
        fields["id"] = self.next_id
        self.next_id += 1
        return fields

    def append(self, node: dict) -> None:
        self.stack[-1]["childNodes"].append(node)

    def handle_decl(self, decl: str) -> None:
        if decl.lower().startswith("doctype"):
            self.append(self.node(type=1, name="html", publicId="", systemId=""))

    def element(self, tag: str, attrs: list[tuple[str, str | None]]) -> dict:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "link" and attributes.get("rel") == "stylesheet" and attributes.get("href") and self.stylesheet:
            css = self.stylesheet(attributes.pop("href"))
            attributes.pop("rel")
            attributes["_cssText"] = css
            self.inlined_css_chars += len(css)
        fields = {"type": 2, "tagName": tag, "attributes": attributes, "childNodes": []}
        if tag == "svg" or self.stack[-1].get("isSVG"):
            fields["isSVG"] = True
        element = self.node(**fields)
        self.append(element)
        self.element_ids.append(element["id"])
        if tag in ("input", "textarea", "select"):
            self.field_ids.append(element["id"])
        return element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = self.element(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.element(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].get("tagName") == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        parent = self.stack[-1].get("tagName")
        # rrweb never records script source.
        text = "SCRIPT_PLACEHOLDER" if parent == "script" else data
        fields = {"type": 3, "textContent": text}
        if parent == "style":
            fields["isStyle"] = True
        self.append(self.node(**fields))

    def handle_comment(self, data: str) -> None:
        self.append(self.node(type=5, textContent=data))


def now_ms() -> int:
    return int(time.time() * 1000)


def full_snapshot_events(tree: dict, href: str) -> list[dict]:
    stamp = now_ms()
    return [
        {"type": 4, "data": {"href": href, "width": 1280, "height": 900}, "timestamp": stamp},
        {"type": 2, "data": {"node": tree, "initialOffset": {"left": 0, "top": 0}}, "timestamp": stamp},
    ]


def incremental_events(page: SnapshotBuilder) -> list[dict]:
    """Mouse moves over the page's elements and typing in one of its fields."""
    stamp = now_ms()
    events = []
    for _ in range(random.randint(1, 3)):
        count = 3
        positions = [
            {
                "x": random.randint(0, 1279),
                "y": random.randint(0, 2400),
                "id": random.choice(page.element_ids),
                "timeOffset": -20 * (count - i),
            }
            for i in range(count)
        ]
        events.append({"type": 3, "data": {"source": 1, "positions": positions}, "timestamp": stamp})
    field = random.choice(page.field_ids or page.element_ids)
    text = random.choice(REGISTRATIONS)
    events.append({"type": 3, "data": {"source": 5, "text": text, "isChecked": False, "id": field}, "timestamp": stamp})
    return events


def dumps(value) -> str:
    # Compact, as JSON.stringify; ASCII, so a frame's characters are its bytes.
    return json.dumps(value, separators=(",", ":"))


class Peer:
    """One websocket: frames during set-up are awaited with `expect`; errors are counted."""

    def __init__(self, name: str, errors: Counter, on_frame=None):
        self.name = name
        self.errors = errors
        self.on_frame = on_frame
        self.waiters: list[tuple] = []

    async def open(self, url: str, origin: str, cookie: str | None = None) -> None:
        headers = {"Cookie": cookie} if cookie else {}
        self.connection = await websockets.connect(url, origin=origin, additional_headers=headers, max_queue=None)
        start_reader(self.connection, self.dispatch)

    def dispatch(self, frame: dict) -> None:
        if frame["type"] == "error":
            self.errors[f"{self.name}:{frame['data'].get('code')}"] += 1
            # During set-up any error means the set-up failed: say which, instead of timing out.
            for _, future in self.waiters:
                if not future.done():
                    future.set_exception(RuntimeError(f"{self.name} got error {frame['data']}"))
            self.waiters.clear()
            return
        for waiter in list(self.waiters):
            predicate, future = waiter
            if not future.done() and predicate(frame):
                future.set_result(frame)
                self.waiters.remove(waiter)
        if self.on_frame is not None:
            self.on_frame(frame)

    def expect(self, predicate) -> asyncio.Future:
        """Register before sending what causes the frame, so it cannot slip past."""
        future = asyncio.get_running_loop().create_future()
        self.waiters.append((predicate, future))
        return future

    async def send(self, frame_type: str, data: dict) -> None:
        await self.connection.send(dumps({"type": frame_type, "data": data}))

    async def close(self) -> None:
        await self.connection.close()


async def arrival(future: asyncio.Future, what: str) -> dict:
    try:
        return await asyncio.wait_for(future, SETUP_TIMEOUT)
    except TimeoutError:
        raise RuntimeError(f"set-up: no {what} within {SETUP_TIMEOUT:.0f} s") from None


def is_type(frame_type: str, **data):
    return lambda frame: frame["type"] == frame_type and all(frame["data"].get(k) == v for k, v in data.items())


def is_cobrowse(status: str, session_id: int | None = None):
    def predicate(frame):
        cobrowse = frame["data"].get("cobrowse") if frame["type"] == "cobrowse.updated" else None
        return bool(cobrowse) and cobrowse["status"] == status and session_id in (None, cobrowse["id"])

    return predicate


class CobrowsePair:
    """One co-browse session: the resident's socket sends page events, its helper's receives them."""

    def __init__(self, index: int, page: SnapshotBuilder, href: str, run: "Run"):
        self.index = index
        self.page = page
        self.href = href
        self.run = run
        self.page_id = os.urandom(9).hex()
        self.sent_at: dict[int, float] = {}
        self.sent_text: dict[int, str] = {}
        self.pieces: dict[int, list[str]] = {}
        self.complete: set[int] = set()

    async def connect_helper(self, base: str, origin: str, cookie: str) -> None:
        self.helper = Peer("helper", self.run.errors, self.on_helper)
        ready = self.helper.expect(is_type("queue.snapshot"))
        await self.helper.open(f"{base}/ws/console/", origin, cookie)
        await arrival(ready, "queue.snapshot on the console")

    async def start_sharing(self, base: str, origin: str) -> None:
        resident = self.resident = Peer("resident", self.run.errors)
        started = resident.expect(is_type("conversation.started"))
        snapshot = resident.expect(is_type("state.snapshot"))
        await resident.open(f"{base}/ws/chat/", origin)
        await resident.send("conversation.start", {"name": "Bench", "service": SERVICE_SLUG})
        await arrival(started, "conversation.started")
        conversation_id = (await arrival(snapshot, "state.snapshot"))["data"]["conversation"]["id"]

        accepted = self.helper.expect(
            lambda frame: frame["type"] == "state.snapshot" and frame["data"]["conversation"]["id"] == conversation_id
        )
        await self.helper.send("conversation.accept", {"conversation_id": conversation_id})
        await arrival(accepted, "state.snapshot after conversation.accept")

        requested = resident.expect(is_cobrowse("requested"))
        await self.helper.send("cobrowse.request", {"conversation_id": conversation_id})
        self.session_id = (await arrival(requested, "cobrowse.updated requested"))["data"]["cobrowse"]["id"]

        resident_active = resident.expect(is_cobrowse("active", self.session_id))
        helper_active = self.helper.expect(is_cobrowse("active", self.session_id))
        await resident.send("cobrowse.respond", {"session_id": self.session_id, "accept": True})
        await arrival(resident_active, "cobrowse.updated active (resident)")
        await arrival(helper_active, "cobrowse.updated active (helper)")

        asked = resident.expect(is_type("cobrowse.guidance", kind="snapshot"))
        await self.helper.send("cobrowse.view", {"session_id": self.session_id})
        await arrival(asked, "cobrowse.guidance snapshot")

    def on_helper(self, frame: dict) -> None:
        if frame["type"] != "cobrowse.events":
            return
        data = frame["data"]
        run = self.run
        if data["session_id"] != self.session_id or data["page"] != self.page_id:
            run.stray += 1
            return
        batch = data["batch"]
        stats = run.snapshots if batch == 0 else run.incremental
        if batch == 0:
            run.snapshot_chars += len(data["data"])
        else:
            run.incremental_chars += len(data["data"])
        if batch in self.complete:
            stats.duplicates += 1
            return
        pieces = self.pieces.setdefault(batch, [])
        if data["part"] != len(pieces):
            run.out_of_order += 1
        pieces.append(data["data"])
        if len(pieces) < data["parts"]:
            return
        latency_ms = (time.monotonic() - self.sent_at.pop(batch)) * 1000
        del self.pieces[batch]
        self.complete.add(batch)
        if "".join(pieces) != self.sent_text.pop(batch):
            run.corrupt += 1
        stats.latencies_ms.append(latency_ms)
        stats.received += 1
        stats.expected.discard(f"{self.index}-{batch}")

    async def send_batch(self, batch: int, events: list[dict]) -> None:
        text = dumps(events)
        parts = math.ceil(len(text) / PART_CHARS)
        frames = []
        for part in range(parts):
            data = {
                "session_id": self.session_id,
                "page": self.page_id,
                "batch": batch,
                "part": part,
                "parts": parts,
                "data": text[part * PART_CHARS : (part + 1) * PART_CHARS],
            }
            frame = dumps({"type": "cobrowse.events", "data": data})
            if len(frame) > MAX_FRAME_BYTES:
                raise RuntimeError(f"a cobrowse.events frame of {len(frame)} bytes is over the server's limit")
            frames.append(frame)
        stats = self.run.snapshots if batch == 0 else self.run.incremental
        stats.sent += 1
        stats.expected.add(f"{self.index}-{batch}")
        self.sent_text[batch] = text
        if batch == 0:
            self.run.snapshot_sizes.append((len(text), parts))
        else:
            self.run.batch_sizes.append(len(text))
        self.sent_at[batch] = time.monotonic()
        for frame in frames:
            await self.resident.connection.send(frame)

    async def drive(self, until: float) -> None:
        await asyncio.sleep(random.uniform(0, BATCH_SECONDS))
        # The answer to the view's `cobrowse.guidance` snapshot request, then the recorder's batches.
        await self.send_batch(0, full_snapshot_events(self.page.document, self.href))
        batch, next_at = 1, time.monotonic() + BATCH_SECONDS
        while next_at < until:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await self.send_batch(batch, incremental_events(self.page))
            batch += 1
            # A late tick is not made up with a burst: the widget's timer would not either.
            next_at = max(next_at + BATCH_SECONDS, time.monotonic())


class Run:
    """Counters shared by every pair."""

    def __init__(self):
        self.incremental = Stats()
        self.snapshots = Stats()
        self.errors: Counter = Counter()
        self.incremental_chars = 0
        self.snapshot_chars = 0
        self.batch_sizes: list[int] = []
        self.snapshot_sizes: list[tuple[int, int]] = []
        self.stray = 0
        self.out_of_order = 0
        self.corrupt = 0


async def main_async(args, server: Server, cookies: list[str]) -> dict:
    server.start()
    base = f"ws://127.0.0.1:{args.port}"
    origin = f"http://127.0.0.1:{args.port}"
    try:
        html = http_get(args.port, PAGE_PATH)
        page = SnapshotBuilder(stylesheet=(lambda href: http_get(args.port, href)) if args.inline_css else None)
        page.feed(html)
        page.close()
        run = Run()
        pairs = [CobrowsePair(index, page, origin + PAGE_PATH, run) for index in range(args.sessions)]
        setup_started = time.monotonic()
        # Every console is open (a helper online) before the first resident asks for help.
        for start in range(0, len(pairs), SETUP_BATCH):
            batch = pairs[start : start + SETUP_BATCH]
            await asyncio.gather(*(pair.connect_helper(base, origin, cookies[pair.index]) for pair in batch))
        for start in range(0, len(pairs), SETUP_BATCH):
            await asyncio.gather(*(pair.start_sharing(base, origin) for pair in pairs[start : start + SETUP_BATCH]))
        await wait_until_quiet(server.process.pid)
        setup_seconds = time.monotonic() - setup_started
        setup_errors = sum(run.errors.values())

        rss_before = rss_kib(server.process.pid)
        started = time.monotonic()
        await asyncio.gather(*(pair.drive(started + args.duration) for pair in pairs))
        sending_seconds = time.monotonic() - started
        await asyncio.sleep(GRACE_SECONDS)
        rss_after = rss_kib(server.process.pid)
        for pair in pairs:
            await pair.resident.close()
            await pair.helper.close()
        # Let the server finish the disconnects before it is told to stop.
        await wait_until_quiet(server.process.pid, limit=10)
    finally:
        server.stop()
    return {
        "html_chars": len(html),
        "css_chars": page.inlined_css_chars,
        "run": run,
        "setup_seconds": setup_seconds,
        "setup_errors": setup_errors,
        "sending_seconds": sending_seconds,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
    }


def report(args, result: dict) -> None:
    run: Run = result["run"]
    seconds = result["sending_seconds"]
    inc, snap = run.incremental, run.snapshots
    lat = inc.latencies_ms
    snapshot_chars, snapshot_parts = run.snapshot_sizes[0] if run.snapshot_sizes else (0, 0)
    sizes = run.batch_sizes or [0]
    css_chars = result["css_chars"]
    css_note = f"{css_chars / 1000:.1f} kB of CSS inlined" if css_chars else "no CSS inlined"
    total_rate = (run.incremental_chars + run.snapshot_chars) / seconds
    command = shlex.join([os.path.relpath(sys.executable), *sys.argv])
    errors = " ".join(f"{key}={value}" for key, value in sorted(run.errors.items())) or "none"
    lines = [
        f"== co-browse load: layer={args.layer} sessions={args.sessions} duration={args.duration:g}s",
        f"  command: {command}",
        f"  page: GET {PAGE_PATH} 200, {result['html_chars'] / 1000:.1f} kB of HTML;"
        f" {css_note};"
        f" full snapshot {snapshot_chars / 1000:.1f} kB of JSON in {snapshot_parts} parts;"
        f" incremental batches {min(sizes)}-{max(sizes)} B (mean {sum(sizes) / len(sizes):.0f} B)",
        f"  incremental latency ms: p50={percentile(lat, 50)} p90={percentile(lat, 90)}"
        f" p99={percentile(lat, 99)} max={percentile(lat, 100)}"
        f" (n={inc.received}, {inc.sent / seconds / args.sessions:.2f} batches/s per session)",
        f"  snapshot delivery ms: p50={percentile(snap.latencies_ms, 50)} max={percentile(snap.latencies_ms, 100)}"
        f" (n={snap.received})",
        f"  relayed to helpers: {total_rate / 1000:.1f} kB/s in all"
        f" (incremental {run.incremental_chars / seconds / 1000:.1f}"
        f" + snapshots {run.snapshot_chars / seconds / 1000:.1f}),"
        f" {total_rate / args.sessions / 1000:.2f} kB/s per session",
        f"  batches: sent={inc.sent + snap.sent} received={inc.received + snap.received}"
        f" lost={inc.lost() + snap.lost()} (snapshots {snap.lost()}) duplicated={inc.duplicates + snap.duplicates}"
        f" corrupt={run.corrupt} out_of_order_parts={run.out_of_order} stray={run.stray}",
        f"  errors: {errors} (during set-up: {result['setup_errors']})",
        f"  server RSS: {result['rss_before_kib'] / 1024:.1f} MiB before,"
        f" {result['rss_after_kib'] / 1024:.1f} MiB after",
        f"  set-up: {result['setup_seconds']:.1f} s; sending {seconds:.1f} s, grace {GRACE_SECONDS:g} s",
    ]
    print("\n" + "\n".join(lines))
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", choices=["memory", "core", "pubsub"], default="pubsub")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent resident/helper pairs")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of sending")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--no-inline-css",
        dest="inline_css",
        action="store_false",
        help="leave the page's stylesheets out of the snapshot (rrweb puts them in, so the default does)",
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {1})
    server = Server(args.layer, args.port)
    args.port = server.port
    prepare_database(server.env)
    # The server runs with DJANGO_DEBUG=0, so pages need the static files manifest.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=BASE_DIR,
        env=server.env,
        check=True,
    )
    cookies = helper_sessions(server.env, args.sessions)
    catalogue_service_ensure()
    result = asyncio.run(main_async(args, server, cookies))
    report(args, result)


if __name__ == "__main__":
    main()
