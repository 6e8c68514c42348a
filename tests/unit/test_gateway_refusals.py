"""A connection turned away for room gets a JSON 503 and a clean close,
never a reset: a reset makes the client report a failed connection, and
can even discard the 503 it had already received. With every lingering
place taken, the gateway waits before turning away more, rather than
closing them unanswered."""

import json
from types import SimpleNamespace

import eventlet
import pytest
from eventlet.green import socket
from eventlet.semaphore import Semaphore

from gateway import http
from gateway.http import JsonWebServer
from gateway.limits import Connections, StreamSlots

REQUEST = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def full_gateway(monkeypatch):
    """A gateway web server with no place for any connection and one
    lingering place, fed by `accept()`."""
    monkeypatch.setattr(http, "REFUSAL_LINGER_SECONDS", 0.3)
    server = JsonWebServer()
    server.container = SimpleNamespace(spawn_managed_thread=lambda run, **_: eventlet.spawn(run))
    server.connections = Connections(0, StreamSlots(0))
    server.lingering_refusals = Semaphore(1)
    server.tls_context = None  # plain HTTP
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def accept():
        sock, address = listener.accept()
        server.accepted(sock, address)

    yield server, listener.getsockname(), accept
    listener.close()


def client(address):
    """A client that sends its request at once, as every HTTP client does."""
    sock = socket.create_connection(address)
    sock.sendall(REQUEST)
    return sock


def answer(sock):
    """Everything the client reads until the end of the stream (a reset
    raises ConnectionResetError)."""
    sock.settimeout(10)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()
    return received


def test_every_connection_turned_away_gets_a_json_503_and_no_reset(full_gateway):
    _, address, accept = full_gateway
    clients = [client(address) for _ in range(3)]
    accepting = eventlet.spawn(lambda: [accept() for _ in clients])
    # The first lingers in the one lingering place; the others wait in the
    # accept queue until it ends, then get their 503 in turn.
    replies = [answer(sock) for sock in clients]
    accepting.wait()
    for reply in replies:
        head, _, body = reply.partition(b"\r\n\r\n")
        assert b" 503 " in head.split(b"\r\n")[0], reply
        assert json.loads(body)["error"] == "SERVICE_UNAVAILABLE"
