"""How much the gateway takes on at once, so that no client can make it hang.

- Connections (MAX_CONNECTIONS). A connection counts from accept to close.
  One over the limit is answered 503 at once and closed, unless a counted
  connection has been waiting for a request (idle, or still sending its
  headers) for over EVICT_AFTER_SECONDS: the one waiting longest is closed
  to make room, as a busy server closes idle keep-alive connections. Idle
  and slow connections therefore cannot lock well-behaved clients out
  (unless they keep arriving at over MAX_CONNECTIONS per
  EVICT_AFTER_SECONDS); requests being handled, and connections just
  opened, are never closed for room.
- Streams (MAX_STREAMS). A long-lived response (the console's server-sent
  events) takes a stream slot and gives its connection slot back, so open
  streams never use up the connections ordinary requests need, and idle
  connections never take a stream's place. A stream over the limit is a 503.
- Calls (GATEWAY_MAX_WORKERS - 2). A route whose every request makes RPC calls of
  its own (`costly`) takes a call slot; the two workers it can never have
  are left for the cheap routes (the shared reads behind /health, /metrics
  and /status, whose cost does not grow with the number of clients), so a
  burst of order lookups does not queue a health check behind it.
- Queueing (REQUEST_QUEUE_SECONDS). A request waits at most this long for
  its call slot and a worker; then it is a 503, so under any load a request
  is answered within about REQUEST_QUEUE_SECONDS + RPC_TIMEOUT_SECONDS.

Everything here runs on one eventlet hub: counters need no locks.
"""

import _socket
import resource
import socket
import ssl
import time
from collections import OrderedDict

import eventlet
from eventlet.semaphore import Semaphore

from gateway.errors import GatewayBusy
from gateway.settings import GatewayLimits
from order_pipeline.errors import StartupError

# The WSGI environ key under which the protocol leaves the request's
# Connection, for `open_stream`.
CONNECTION_KEY = "gateway.connection"

# A connection waiting for its request for longer than this may be closed
# to make room. A client sends its request with the end of the TCP
# handshake, and its connection is waiting only until that is read.
EVICT_AFTER_SECONDS = 0.25

# Workers a costly route can never hold.
WORKERS_KEPT_FOR_CHEAP_ROUTES = 2

# Connections over the limit that may be answered 503 at once and kept for
# a short lingering close (long enough for a client's request to arrive and
# its close to come back); any more are closed without an answer.
LINGERING_REFUSALS = 100
REFUSAL_LINGER_SECONDS = 0.5

# Open files the process needs besides client connections: broker and
# database connections, logs, connections being turned away.
OTHER_OPEN_FILES = LINGERING_REFUSALS + 100


def ensure_open_files(limits: GatewayLimits) -> int:
    """Make room for MAX_CONNECTIONS + MAX_STREAMS open sockets: raise the
    process's soft open-file limit if needed (up to the hard one), or stop
    at start-up. Out of file descriptors, a new connection would wait
    unaccepted (a hang) instead of being answered. Returns the soft limit."""
    needed = limits.max_connections + limits.max_streams + OTHER_OPEN_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise StartupError(
            f"MAX_CONNECTIONS={limits.max_connections} and MAX_STREAMS={limits.max_streams} "
            f"need {needed} open files, and this process may open {hard} (ulimit -n); "
            "lower MAX_CONNECTIONS or raise the limit"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


class Slot:
    """One place taken in a `Slots`; `release()` gives it back, once."""

    def __init__(self, slots):
        self._slots = slots

    def release(self) -> None:
        if self._slots is not None:
            self._slots.in_use -= 1
            self._slots = None


class Slots:
    """At most `limit` places in use at once; never waits."""

    def __init__(self, limit: int):
        self.limit = limit
        self.in_use = 0

    def try_acquire(self) -> Slot | None:
        """A Slot, or None if all `limit` are in use."""
        if self.in_use >= self.limit:
            return None
        self.in_use += 1
        return Slot(self)


class StreamSlots(Slots):
    """The cap on open streams: `try_acquire()` is a Slot to release when
    the stream ends, or None when MAX_STREAMS are open."""


class Connections:
    """The open connections of one gateway, counted against `limit`, and
    the stream slots their long-lived responses take."""

    def __init__(self, limit: int, streams: StreamSlots, evict_after=EVICT_AFTER_SECONDS):
        self.limit = limit
        self.streams = streams
        self.evict_after = evict_after
        self.counted = 0
        self._waiting = OrderedDict()  # Connection -> when it began waiting
        self._by_socket = {}

    def admit(self, sock) -> "Connection | None":
        """A Connection for a newly accepted socket, or None if every place
        is taken by a connection that is busy, or has only just begun
        waiting for its request."""
        if self.counted >= self.limit and self._waiting:
            oldest, since = next(iter(self._waiting.items()))
            if time.monotonic() - since > self.evict_after:
                oldest.evict()
        if self.counted >= self.limit:
            return None
        connection = Connection(self, sock)
        self.counted += 1
        self._by_socket[sock] = connection
        return connection

    def of(self, sock) -> "Connection | None":
        return self._by_socket.get(sock)


class Connection:
    """One admitted connection: counted until it closes or becomes a
    stream; evictable while it waits for a request."""

    def __init__(self, connections: Connections, sock):
        self._connections = connections
        self.sock = sock
        self.counted = True
        self.stream = None  # the stream Slot its response holds

    def waiting(self) -> None:
        """Waiting for a request, or reading its request line and headers."""
        if self.counted:
            self._connections._waiting[self] = time.monotonic()

    def busy(self) -> None:
        """A request's headers are in: it will be answered."""
        self._connections._waiting.pop(self, None)

    def open_stream(self) -> Slot | None:
        """Move this connection from the connection count to a stream slot;
        None (and nothing changed) if MAX_STREAMS are open."""
        if self.stream is None:
            slot = self._connections.streams.try_acquire()
            if slot is None:
                return None
            self.stream = slot
            self._uncount()
        return self.stream

    def evict(self) -> None:
        """Close a waiting connection to make room for a new one. Its
        request, if it had begun one, is dropped unanswered."""
        self._uncount()
        try:
            # The greenthread reading from it sees the end of the stream.
            shut_down(self.sock)
        except OSError:
            pass

    def close(self) -> None:
        self._uncount()
        if self.stream is not None:
            self.stream.release()
        self._connections._by_socket.pop(self.sock, None)

    def _uncount(self):
        self._connections._waiting.pop(self, None)
        if self.counted:
            self.counted = False
            self._connections.counted -= 1


def shut_down(sock) -> None:
    """Shut a connection's socket down both ways. On a TLS socket, the C
    socket's (eventlet replaces socket.socket): SSLSocket.shutdown would
    also drop the TLS state under the greenthread reading it (handshake or
    request), which would then fail on it instead of seeing the end of the
    stream."""
    if isinstance(sock, ssl.SSLSocket):
        _socket.socket.shutdown(sock, socket.SHUT_RDWR)
    else:
        sock.shutdown(socket.SHUT_RDWR)


def open_stream(request) -> Slot:
    """For a route that streams for as long as the client listens: take a
    stream slot for this request's connection, which then stops counting
    against MAX_CONNECTIONS, or raise GatewayBusy (a 503) when MAX_STREAMS
    are open. The slot is given back when the connection closes, or
    earlier by `slot.release()`; the connection is closed after its
    response."""
    connection = request.environ.get(CONNECTION_KEY)
    if connection is None:
        raise RuntimeError("open_stream needs a request read by gateway.protocol")
    slot = connection.open_stream()
    if slot is None:
        raise GatewayBusy("too many open streams; try again later")
    return slot


class Admission:
    """Room for requests once their headers are in: a call slot for costly
    routes, then a worker; at most `queue_seconds` of waiting in all."""

    def __init__(self, max_workers: int, queue_seconds: float):
        self.call_slots = max(1, max_workers - WORKERS_KEPT_FOR_CHEAP_ROUTES)
        self.queue_seconds = queue_seconds
        self._calls = Semaphore(self.call_slots)

    def start(self, costly: bool, spawn_worker) -> "Admitted":
        """Call `spawn_worker()` (which waits for a free worker) once there
        is room; GatewayBusy if there is none within the queue time. The
        caller releases what it is given when the worker has finished."""
        admitted = Admitted(self._calls if costly else None)
        deadline = eventlet.Timeout(self.queue_seconds)
        try:
            if costly:
                self._calls.acquire()
                admitted.holding = True
            spawn_worker()
        except eventlet.Timeout as exc:
            if exc is not deadline:
                raise
            admitted.release()
            raise GatewayBusy(
                f"the gateway is busy (no room within {self.queue_seconds:g} s); try again shortly"
            ) from None
        except BaseException:
            admitted.release()
            raise
        finally:
            deadline.cancel()
        return admitted


class Admitted:
    """A request's call slot, if its route is costly; release once."""

    def __init__(self, calls):
        self._calls = calls
        self.holding = False

    def release(self) -> None:
        if self.holding:
            self.holding = False
            self._calls.release()
