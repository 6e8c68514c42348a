"""Every use of eventlet's private code, in one place.

- `RequestLineProtocol`: eventlet's HttpProtocol reads a request's first line
  in the private `_read_request_line`, with no hook to look at it before
  http.server parses it. The gateway checks the line there (cut short, too
  long) to answer in JSON rather than with eventlet's empty 414.
tests/unit/test_library_internals.py fails if eventlet no longer reads the
request line that way.
"""

from nameko.web.server import HttpOnlyProtocol


class RequestLineProtocol(HttpOnlyProtocol):
    """nameko's HTTP-only protocol, with `checked_request_line(line)` called
    on each request line read (bytes; return "" to drop the request)."""

    def checked_request_line(self, line):
        return line

    def _read_request_line(self):
        return self.checked_request_line(super()._read_request_line())
