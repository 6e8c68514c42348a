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
"""

import json
import socket
import time
from http import HTTPStatus

from eventlet.wsgi import HeaderLineTooLong, HeadersTooLarge
from nameko.web.server import HttpOnlyProtocol

from gateway.errors import http_code

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


class JsonHttpProtocol(HttpOnlyProtocol):
    """eventlet's HTTP/1.1 protocol with JSON refusals; the wsgi.Server it
    runs under carries `max_request_bytes`."""

    linger = False

    def _read_request_line(self):
        # eventlet would answer a request line over the limit with an empty 414.
        line = super()._read_request_line()
        if len(line) >= self.server.url_length_limit:
            self.command = None  # not a HEAD left over from the last request
            self.refuse(414, f"request line over {self.server.url_length_limit} bytes")
            return ""
        return line

    def parse_request(self):
        try:
            if not super().parse_request():
                return False
        except (HeaderLineTooLong, HeadersTooLarge):
            self.refuse(431, "request headers too large")
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

    def refuse(self, status, message):
        head_only = getattr(self, "command", None) == "HEAD"
        try:
            self.wfile.write(raw_json_error(status, message, head_only))
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True
        self.linger = True

    def finish(self):
        if self.linger:
            self._drain()
        super().finish()

    def _drain(self):
        """Half-close, then read and drop what the client still sends."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_SECONDS)
            deadline = time.monotonic() + LINGER_SECONDS
            received = 0
            while received < LINGER_BYTES and time.monotonic() < deadline:
                data = self.connection.recv(65536)
                if not data:
                    break
                received += len(data)
        except OSError:
            pass
