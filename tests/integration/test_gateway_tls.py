"""The gateway on HTTPS (GATEWAY_TLS_CERT_FILE, GATEWAY_TLS_KEY_FILE), in
this process on the real broker, with certificates made for the run.

The handshake runs in each connection's own greenthread, under the first
request's HEADER_TIMEOUT_SECONDS, while the connection counts as waiting
(gateway.tls): a client that never finishes it is closed at the header
timeout, holds no worker, does not stop the gateway accepting, and may be
closed to make room, like a client slow to send its headers."""

import logging
import socket

import pytest
import requests

from harness.certificates import Certificates
from harness.processes import free_port, wait_until
from tests.support.services import InProcessServices, json_body

# The first bytes of a TLS ClientHello: a record header announcing 512 bytes
# that never come.
HELLO_CUT_SHORT = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certificates(str(tmp_path_factory.mktemp("gateway-certs")))


@pytest.fixture(scope="module")
def services(make_database, make_vhost):
    running = InProcessServices(make_database(), make_vhost())
    yield running
    running.stop_all()


@pytest.fixture
def https_gateway(services, certs):
    """Start a gateway on HTTPS with these settings; its port. Stopped after
    the test."""
    started = []

    def start(**settings):
        port = free_port()
        label = f"https gateway {port}"
        services.start_as(
            label,
            "gateway",
            GATEWAY_TLS_CERT_FILE=certs.server.cert,
            GATEWAY_TLS_KEY_FILE=certs.server.key,
            WEB_SERVER_ADDRESS=f"127.0.0.1:{port}",
            **settings,
        )
        started.append(label)
        return port

    yield start
    services.stop(*started)


def https_get(port, certs, path="/openapi.json", ca=None):
    """GET over HTTPS by the name the certificate holds; (response, body)."""
    response = requests.get(
        f"https://localhost:{port}{path}", verify=ca or certs.ca.cert, timeout=10
    )
    return response, json_body(response)


def stalled(port, first_bytes=b""):
    """A connection that sends `first_bytes` of a handshake, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(first_bytes)
    return sock


def test_the_gateway_speaks_https_and_tells_plain_http_to_use_it(https_gateway, certs):
    port = https_gateway()
    response, body = https_get(port, certs)
    assert response.status_code == 200 and body["openapi"]
    # A client that trusts another CA refuses the gateway's certificate.
    with pytest.raises(requests.exceptions.SSLError):
        https_get(port, certs, ca=certs.other_ca.cert)
    plain = requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10)
    assert plain.status_code == 400
    assert json_body(plain) == {
        "error": "BAD_REQUEST",
        "message": "this port speaks HTTPS; use an https:// URL",
    }


@pytest.mark.parametrize("first_bytes", [b"", HELLO_CUT_SHORT])
def test_a_handshake_that_never_ends_is_closed_at_the_header_timeout(
    https_gateway, certs, first_bytes
):
    # The socket's own idle limit is 60 s; the client waits 10 s at most.
    port = https_gateway(HEADER_TIMEOUT_SECONDS=1)
    with stalled(port, first_bytes) as sock:
        assert sock.recv(65536) == b""


def test_handshakes_that_never_end_hold_no_worker_and_do_not_stop_accepting(https_gateway, certs):
    port = https_gateway(GATEWAY_MAX_WORKERS=3, HEADER_TIMEOUT_SECONDS=60)
    clients = [stalled(port, first_bytes) for first_bytes in [b"", HELLO_CUT_SHORT] * 10]
    try:
        # Were the handshake in the accept loop, this one would wait there
        # behind the first; were each a worker, it would find none free.
        for _ in range(5):
            assert https_get(port, certs)[0].status_code == 200
    finally:
        for sock in clients:
            sock.close()


def test_handshakes_that_never_end_are_closed_to_make_room(https_gateway, certs, caplog):
    port = https_gateway(MAX_CONNECTIONS=5, HEADER_TIMEOUT_SECONDS=60)
    clients = [stalled(port) for _ in range(5)]
    try:
        # Every place is taken by a client that has waited a moment: one is
        # closed for each new client.
        wait_until(lambda: https_get(port, certs)[0].status_code == 200, 30, message="an answer")
        assert clients[0].recv(65536) == b""  # the one waiting longest
    finally:
        for sock in clients:
            sock.close()
    # Closed as a slow client is: no error, no warning.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
