"""The tests' own servers: a server a test starts is the one that answers on its address."""

import http.server
import threading

import pytest

from tests.servers import listening_socket, start_daphne


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
