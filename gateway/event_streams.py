"""Server-sent event streams: one read of the services feeds every open page.

The console keeps `GET /events` open. Each open stream is a `Stream` in the
gateway's one `EventStreams` registry. Once per interval a timer worker reads
the snapshot and calls `publish`, which encodes the event once and hands the
same bytes to every stream: 50 open pages cost 50 socket writes per
interval, not 50 reads of the services.

No stream holds a nameko worker. The handler returns a werkzeug Response
whose body is a `StreamBody`; the worker ends there, and eventlet's WSGI
server iterates the body in the connection's own greenthread, writing each
event as it comes. (eventlet holds back a response body until it has 4096
bytes unless the environ's `eventlet.minimum_write_chunk_size` is 0, which
`response()` sets.) Each stream keeps only the newest event, so a page that
reads slowly gets the latest snapshot, not a backlog.

A stream is counted from the request until its body is closed: when the
page goes (the next write fails and eventlet closes the body), when the
container stops (`stop` ends every stream), or at once for a HEAD request.

The cap on open streams (MAX_STREAMS) is the gateway's connection limits'
(gateway.limits.open_stream, taken by the /events route): a stream's
connection then stops counting against MAX_CONNECTIONS.
"""

import json
import time

from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

# What the browser waits before reconnecting after the stream drops.
RETRY_MILLISECONDS = 2000
# A comment line sent when no event came for this long, so that a page that
# has gone is noticed (the write fails) even while nothing is published.
HEARTBEAT_SECONDS = 15
# A page that opens gets the last event at once if it is at most this old.
FRESH_SECONDS = 3
HEARTBEAT = b": keep-alive\n\n"
_END = object()


def sse_event(name: str, data: object) -> bytes:
    """One server-sent event whose data is `data` as compact JSON (one line:
    JSON escapes every newline inside strings)."""
    text = json.dumps(data, separators=(",", ":"))
    return f"event: {name}\ndata: {text}\n\n".encode()


class Stream:
    """One open page: the newest event not yet written to it."""

    def __init__(self):
        self._next = LightQueue(maxsize=1)

    def offer(self, item):
        try:
            self._next.get_nowait()  # a slow page skips to the newest
        except Empty:
            pass
        self._next.put_nowait(item)

    def wait(self, timeout):
        """The next event, _END, or None after `timeout` seconds without one."""
        try:
            return self._next.get(timeout=timeout)
        except Empty:
            return None


class StreamBody:
    """The body of one event-stream response: written by eventlet in the
    connection's greenthread, closed by it when the stream ends."""

    def __init__(self, registry, stream, first):
        self._registry = registry
        self._stream = stream
        self._first = first
        self._closed = False

    def __iter__(self):
        yield self._first
        while not self._closed:
            item = self._stream.wait(HEARTBEAT_SECONDS)
            if item is _END:
                return
            yield HEARTBEAT if item is None else item

    def close(self):
        if not self._closed:
            self._closed = True
            self._registry.release(self._stream)


class EventStreamRegistry:
    """The open streams of one gateway, and the last event published."""

    def __init__(self):
        self._streams = set()
        self._last = None  # (event bytes, monotonic time published)

    @property
    def open_count(self) -> int:
        return len(self._streams)

    def open(self) -> Stream:
        stream = Stream()
        self._streams.add(stream)
        return stream

    def release(self, stream):
        self._streams.discard(stream)

    def publish(self, name: str, data: object):
        """Send one event to every open stream; returns how many."""
        event = sse_event(name, data)
        self._last = (event, time.monotonic())
        streams = list(self._streams)
        for stream in streams:
            stream.offer(event)
        return len(streams)

    def end_all(self):
        for stream in list(self._streams):
            stream.offer(_END)

    def response(self, request) -> Response:
        """The `text/event-stream` response for one page."""
        stream = self.open()
        first = f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        if self._last is not None and time.monotonic() - self._last[1] <= FRESH_SECONDS:
            first += self._last[0]
        # Write each event as it comes, not once 4096 bytes have piled up.
        request.environ["eventlet.minimum_write_chunk_size"] = 0
        return Response(
            StreamBody(self, stream, first),
            mimetype="text/event-stream",
            headers={
                "Cache-Control": "no-cache",
                # Proxies that buffer responses (nginx) pass this one through.
                "X-Accel-Buffering": "no",
            },
        )


class EventStreams(DependencyProvider):
    """Injects the gateway's EventStreamRegistry; ends every stream when the
    container stops, so that no connection waits for the next event."""

    def setup(self):
        self.registry = EventStreamRegistry()

    def stop(self):
        self.registry.end_all()

    def kill(self):
        self.registry.end_all()

    def get_dependency(self, worker_ctx):
        return self.registry
