"""HTTPS on the gateway's own socket (GATEWAY_TLS_CERT_FILE, _KEY_FILE).

The listening socket stays plain: the accept loop only accepts. Each
connection is wrapped in TLS in its own greenthread
(`JsonWebServer.process_request`), and its handshake runs there when the
protocol waits for the first request, under the same HEADER_TIMEOUT_SECONDS
deadline as the request's head (gateway.protocol). So a client that opens a
connection and never finishes the handshake holds what a slow-header client
holds: a connection place, which may be taken back to make room
(gateway.limits), until the deadline closes it. No worker is spawned before
a request's head is in.
"""

import _socket
import logging
import ssl

from gateway.settings import GatewayTls
from order_pipeline.errors import StartupError

log = logging.getLogger(__name__)

# OpenSSL's reason when the first bytes are a plain HTTP request.
PLAIN_HTTP = "HTTP_REQUEST"


def server_context(tls: GatewayTls) -> ssl.SSLContext:
    """The gateway's TLS context (TLS 1.2 at least), or a StartupError
    naming the setting whose file cannot be used."""
    # ssl's, looked up now: eventlet's green context under nameko.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        named = f"GATEWAY_TLS_CERT_FILE={tls.cert_file}"
        if tls.key_file:
            named += f" with GATEWAY_TLS_KEY_FILE={tls.key_file}"
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise StartupError(f"cannot use {named}: {reason}") from None
    return context


def wrap(context: ssl.SSLContext, sock):
    """`sock` as a server-side TLS socket whose handshake has not begun
    (no I/O here)."""
    return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)


def handshake(sock, address) -> ssl.SSLError | None:
    """Run the TLS handshake (the caller bounds its time); None once done,
    else the error (the caller closes the connection)."""
    try:
        sock.do_handshake()
        return None
    except ssl.SSLError as exc:
        log.debug("TLS handshake with %s failed: %s", address, exc.reason or exc)
        return exc
    except OSError as exc:  # the client went away
        log.debug("TLS handshake with %s failed: %s", address, exc)
        return ssl.SSLError(exc.errno, str(exc))


def send_in_clear(sock, data: bytes) -> None:
    """Write `data` to a TLS socket's connection as it is, outside TLS: the
    answer to a client that spoke plain HTTP to the HTTPS port. (The C
    socket's send: eventlet replaces socket.socket.)"""
    try:
        _socket.socket.send(sock, data)
    except OSError:
        pass
