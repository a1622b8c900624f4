"""Real Daphne server processes for tests, sharing the test database."""

import contextlib
import http.server
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.db import connection

from config.settings import BASE_DIR


def pushed_from_the_test_process(test):
    """Mark a test whose own process changes what a server's sockets must then be told (it
    calls a service that broadcasts). Only a channel layer both processes share carries that:
    Redis, in the services pass. The in-memory layer is each process's own, so on the
    embedded defaults such a test could only time out waiting."""
    return pytest.mark.services(pytest.mark.usefixtures("redis_url")(test))


def free_port() -> int:
    """A port nothing listens on now, for an address that must refuse connections. A server's
    own port comes from `listening_socket` instead: this one is free only until someone binds it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Every port a server of this process has listened on. The end-to-end tests hand their
# browsers from one test to the next, and a browser keeps what each origin stored (a chat's
# token in localStorage, cached files): a later test's server on an earlier one's port would
# find that test's chat waiting in the widget.
_ports_listened_on: set[int] = set()


def listening_socket(port: int = 0) -> socket.socket:
    """A socket listening on 127.0.0.1:`port`, for a server to adopt. By default a free port
    that no server of this process has had before; a given `port` is a restart of that server.

    Binding it here, rather than picking a free port for the server to bind later, leaves no
    moment in which another worker's server can take the port first. One did: a browser test's
    Daphne could not bind, the council test site already listening there answered its health
    check (200 to any path), and the helper's sign-in page came from that site.
    """
    passed_over = []  # held until a port is found, so that the next bind gets another
    try:
        while True:
            sock = socket.socket()
            passed_over.append(sock)
            # As Twisted does for its own ports: a restart on the same port must not wait for
            # the previous process's closed connections to leave TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            if port or sock.getsockname()[1] not in _ports_listened_on:
                passed_over.pop()
                break
    finally:
        for other in passed_over:
            other.close()
    sock.listen(50)  # Twisted's default backlog, as when Daphne binds the port itself
    _ports_listened_on.add(sock.getsockname()[1])
    return sock


def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    """A threaded HTTP server on 127.0.0.1, on a port as `listening_socket` picks it."""
    sock = listening_socket()
    server = http.server.ThreadingHTTPServer(sock.getsockname(), handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_name, server.server_port = sock.getsockname()
    return server


def database_url() -> str:
    """The URL of the test database pytest-django created, for other processes to share."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


@dataclass
class DaphneProcess:
    port: int
    process: subprocess.Popen
    settings_module: str = "config.settings"
    env_overrides: dict[str, str] = field(default_factory=dict)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start_again(self) -> "DaphneProcess":
        """The same server, on the same port and settings, after `stop()`: a restart mid-test."""
        return start_daphne(port=self.port, settings_module=self.settings_module, env_overrides=self.env_overrides)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def browser_test_server(**settings_env: str) -> Iterator[DaphneProcess]:
    """This project on its own Daphne for a browser test, stopped after it: the test settings,
    reached at 127.0.0.1 only; `settings_env` sets what else they read from the environment."""
    daphne = start_daphne(
        settings_module="config.settings_test",
        env_overrides={"DJANGO_ALLOWED_HOSTS": "127.0.0.1", **settings_env},
    )
    try:
        yield daphne
    finally:
        daphne.stop()


def start_daphne(
    *,
    env_overrides: dict[str, str],
    wait_healthy: bool = True,
    port: int | None = None,
    settings_module: str = "config.settings",
) -> DaphneProcess:
    """Start `daphne` on `port` (a free one by default) and wait until /healthz answers."""
    sock = listening_socket(port or 0)
    port = sock.getsockname()[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CHANNEL_LAYER_PREFIX": settings.CHANNEL_LAYER_PREFIX,
        "DATABASE_URL": database_url(),
        # A server runs one event loop for its life: the production pool setting applies.
        "DJANGO_DB_POOL": "1",
        **env_overrides,
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the process)
    with sock:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(sock.fileno()), "config.asgi:application"],
            cwd=BASE_DIR,
            env=env,
            pass_fds=[sock.fileno()],
            stdout=subprocess.DEVNULL,
            # A file, not a pipe: a pipe nobody reads fills up and blocks the server.
            stderr=log,
        )
    daphne = DaphneProcess(port=port, process=process, settings_module=settings_module, env_overrides=env_overrides)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"daphne exited: {log.read().decode()[-2000:]}")
        try:
            # Longer than the health check's own 3-second limit per dependency.
            with urllib.request.urlopen(f"{daphne.http}/healthz", timeout=8) as response:  # noqa: S310
                if response.status == 200 or not wait_healthy:
                    return daphne
        except urllib.error.HTTPError as error:
            if not wait_healthy:
                return daphne
            last = error
        except OSError as error:
            last = error
        time.sleep(0.2)
    daphne.stop()
    raise RuntimeError(f"daphne on {port} did not become ready: {last}")
