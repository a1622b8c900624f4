"""The tests' own servers: a server a test starts is the one that answers on its address."""

import http.server
import socket
import threading
import urllib.request
from types import SimpleNamespace

import pytest

from tests import servers
from tests.servers import http_server, listening_socket, start_daphne


class AnswersEverything(http.server.BaseHTTPRequestHandler):
    """The council test site's manner: 200 to any path, /healthz included."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_server_is_not_started_on_a_port_another_server_answers_on(transactional_db):
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AnswersEverything)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        # Before, the other server's answer to /healthz was taken for Daphne's, and the test
        # went on against a site that was not this project.
        with pytest.raises(OSError):
            daphne = start_daphne(env_overrides={}, port=other.server_port)
            daphne.stop()
    finally:
        other.shutdown()
        other.server_close()


def test_a_listening_socket_holds_its_port_until_closed():
    sock = listening_socket()
    port = sock.getsockname()[1]
    with pytest.raises(OSError), listening_socket(port):
        pass
    sock.close()
    listening_socket(port).close()


class KernelOfferingPorts(socket.socket):
    """A socket whose bind to port 0 gets the next of `offered`, as the kernel might offer it."""

    offered: list[int] = []

    def bind(self, address):
        host, port = address
        super().bind((host, port or self.offered.pop(0)))


def test_a_new_server_never_gets_a_port_an_earlier_one_had(monkeypatch):
    """A browser handed to the next test keeps what pages stored on each origin."""
    with socket.socket() as one, socket.socket() as other:
        one.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        first, second = one.getsockname()[1], other.getsockname()[1]
    KernelOfferingPorts.offered = [first, first, second]
    monkeypatch.setattr(servers, "socket", SimpleNamespace(**{**vars(socket), "socket": KernelOfferingPorts}))

    earlier = servers.listening_socket()
    assert earlier.getsockname()[1] == first
    earlier.close()
    later = servers.listening_socket()
    assert later.getsockname()[1] == second
    later.close()
    # A restart names its port, and gets it.
    again = servers.listening_socket(first)
    assert again.getsockname()[1] == first
    again.close()


def test_an_http_server_answers_on_the_port_it_reports():
    server = http_server(AnswersEverything)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/anything", timeout=5) as response:
            assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()
