"""Reading HTTP requests off the socket, with every refusal in JSON.

eventlet's WSGI server answers a request it cannot parse (request line or
headers too long, a bad Content-Length, both Content-Length and
Transfer-Encoding) itself, with an empty or HTML body, before the gateway's
WSGI app sees it. `JsonHttpProtocol` answers those with the gateway's JSON
error body instead, and adds the checks that belong at this level:

- a declared body over MAX_REQUEST_BYTES is refused with 413 before routing;
- a Content-Length must be plain ASCII digits, the same in every copy;
- Transfer-Encoding other than `chunked` is refused (it would let a body be
  read as the next request).

No endpoint reads a request body. A chunked body is not read either: the
connection is closed after the response instead of eventlet draining an
unbounded body to keep it alive. Whenever a response leaves request bytes
unread, the socket is half-closed and drained for a moment before it is
closed (a "lingering close"), so the client gets the response rather than a
connection reset.

A request is handled only once its head is complete:

- the wait for a request and the reading of its request line and headers
  together have HEADER_TIMEOUT_SECONDS (the Server's `header_timeout`); past
  that the connection is closed, with a JSON 408 if a request line came;
- a request line or header block cut short by the client closing (or by
  the gateway evicting the connection, see `gateway.limits`) is dropped,
  never handled: http.server would take the end of the stream for the end
  of the headers.

Over HTTPS (gateway.tls) the TLS handshake is the first part of the first
request's wait: it runs under that request's HEADER_TIMEOUT_SECONDS, while
the connection counts as waiting (and may be closed to make room). A
handshake that fails closes the connection; one that finds plain HTTP
answers it, in clear, with a JSON 400 that says to use https://.
"""

import json
import socket
import ssl
import time
from http import HTTPStatus

import eventlet
from eventlet.wsgi import HeaderLineTooLong, HeadersTooLarge

from gateway.errors import http_code
from gateway.limits import CONNECTION_KEY
from gateway.tls import PLAIN_HTTP, handshake, send_in_clear
from order_pipeline.eventlet_internals import RequestLineProtocol

# A lingering close reads at most this much, for at most this long.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20


def raw_json_error(status, message, head_only=False):
    """A complete HTTP/1.0 error response that closes the connection."""
    body = json.dumps(
        {"error": http_code(status), "message": message}, separators=(",", ":")
    ).encode("utf-8")
    head = (
        f"HTTP/1.0 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    return head if head_only else head + body


class _HeadLines:
    """The header reader http.server is given, remembering the last line:
    the head is complete only if that is the blank line."""

    def __init__(self, lines):
        self.lines = lines
        self.last = b""

    def readline(self, size=-1):
        self.last = self.lines.readline(size)
        return self.last

    @property
    def complete(self):
        return self.last in (b"\r\n", b"\n")


def body_framing_error(headers, max_request_bytes):
    """(status, message) if the request body's framing is refused, else None."""
    lengths = headers.get_all("Content-Length") or []
    encodings = headers.get_all("Transfer-Encoding") or []
    if lengths and encodings:
        return 400, "Content-Length and Transfer-Encoding are not allowed together"
    if encodings:
        if [value.strip().lower() for value in encodings] != ["chunked"]:
            return 400, "the only Transfer-Encoding accepted is chunked"
        return None
    if not lengths:
        return None
    values = {value.strip() for value in lengths}
    if len(values) != 1 or not all(v.isascii() and v.isdigit() for v in values):
        return 400, "Content-Length must be one non-negative integer"
    if int(values.pop()) > max_request_bytes:
        return 413, f"request body over {max_request_bytes} bytes"
    return None


class JsonHttpProtocol(RequestLineProtocol):
    """eventlet's HTTP/1.1 protocol with JSON refusals; the wsgi.Server it
    runs under carries `max_request_bytes`."""

    linger = False

    def setup(self):
        super().setup()
        # The gateway.limits Connection this socket was admitted as.
        self.admitted = self.server.connections.of(self.request)
        self.handshake_pending = isinstance(self.request, ssl.SSLSocket)

    def handle_one_request(self):
        # One limit for waiting for the request and reading its head.
        self.head_deadline = eventlet.Timeout(self.server.header_timeout)
        self.request_line_read = False
        if self.admitted is not None:
            self.admitted.waiting()
        try:
            if self.handshake_pending and not self.finish_handshake():
                self.close_connection = True
                return
            super().handle_one_request()
        except eventlet.Timeout as exc:
            if exc is not self.head_deadline:
                raise
            self.close_connection = True
            if self.request_line_read:
                self.command = None
                self.refuse(408, "request headers not received in time", linger=False)
        finally:
            self.end_of_head()
        if self.admitted is not None and self.admitted.stream is not None:
            self.close_connection = True  # a stream's connection is not reused

    def finish_handshake(self) -> bool:
        """The TLS handshake, under the head's deadline; False if it failed."""
        self.handshake_pending = False
        error = handshake(self.request, self.client_address)
        if error is None:
            return True
        if error.reason == PLAIN_HTTP:
            send_in_clear(
                self.request, raw_json_error(400, "this port speaks HTTPS; use an https:// URL")
            )
            self.linger = True
        return False

    def end_of_head(self):
        self.head_deadline.cancel()
        if self.admitted is not None:
            self.admitted.busy()

    def checked_request_line(self, line):
        if line and not line.endswith(b"\n") and len(line) < self.server.url_length_limit:
            return ""  # cut short: the client is gone
        # eventlet would answer a request line over the limit with an empty 414.
        if len(line) >= self.server.url_length_limit:
            self.command = None  # not a HEAD left over from the last request
            self.refuse(414, f"request line over {self.server.url_length_limit} bytes")
            return ""
        self.request_line_read = bool(line)
        return line

    def parse_request(self):
        head = _HeadLines(self.rfile)
        self.rfile = head
        try:
            if not super().parse_request():
                return False
        except (HeaderLineTooLong, HeadersTooLarge):
            self.refuse(431, "request headers too large")
            return False
        finally:
            self.rfile = head.lines
            self.end_of_head()
        if not head.complete:
            # The stream ended before the blank line: nobody to answer.
            self.close_connection = True
            return False
        refused = body_framing_error(self.headers, self.server.max_request_bytes)
        if refused is not None:
            self.refuse(*refused)
            return False
        chunked = "Transfer-Encoding" in self.headers
        if chunked:
            # Not drained to keep the connection: its length is unbounded.
            self.close_connection = True
        if chunked or self.headers.get("Content-Length", "0").strip() != "0":
            # The body may still be unread when the connection closes.
            self.linger = True
        return True

    def send_error(self, code, message=None, explain=None):
        """http.server's parser reports malformed requests here (HTML by default)."""
        self.refuse(int(code), message or HTTPStatus(code).phrase)

    def get_environ(self):
        environ = super().get_environ()
        environ[CONNECTION_KEY] = self.admitted
        return environ

    def refuse(self, status, message, linger=True):
        head_only = getattr(self, "command", None) == "HEAD"
        try:
            self.wfile.write(raw_json_error(status, message, head_only))
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True
        self.linger = linger

    def finish(self):
        if self.linger:
            self._drain()
        super().finish()

    def _drain(self):
        try:
            self.wfile.flush()
        except OSError:
            return
        lingering_close(self.connection)


def lingering_close(sock, seconds=LINGER_SECONDS):
    """Half-close, then read and drop what the client still sends (for at
    most `seconds` and LINGER_BYTES), so that what was sent to it is not
    lost to a reset. The caller closes the socket."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(seconds)
        deadline = time.monotonic() + seconds
        received = 0
        while received < LINGER_BYTES and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            received += len(data)
    except OSError:
        pass
