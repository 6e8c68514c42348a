"""Hostile HTTP clients for the gateway scenarios, and the well-behaved one
whose experience they are judged by.

Everything here runs in the test process on eventlet's green sockets (the
suite monkey-patches the standard library) and talks to 127.0.0.1 only.
"""

import json
import socket
import time
from dataclasses import dataclass, field

import eventlet

HOST = "127.0.0.1"


# The start of the message of the JSON 503 for a connection over
# MAX_CONNECTIONS (gateway/http.py).
TOO_MANY_CONNECTIONS = "too many connections"


@dataclass(frozen=True)
class Answer:
    path: str
    status: int | None  # None: no HTTP answer (reset, closed, timed out)
    seconds: float
    json_body: bool
    body: bytes = b""
    error: str = ""  # why there is no answer
    started: float = 0.0  # time.monotonic() when the request began

    @property
    def ended(self):
        return self.started + self.seconds

    @property
    def timed_out(self):
        """The client gave up waiting (its timeout)."""
        return "TimeoutError" in self.error

    def document(self):
        return json.loads(self.body)

    def message(self):
        """The message of a JSON error answer ("" for any other)."""
        if not self.json_body:
            return ""
        document = self.document()
        return document.get("message", "") if isinstance(document, dict) else ""


@dataclass
class Probe:
    """A well-behaved client: one GET at a time over a new connection, in
    turn on each of `paths`, until stopped. Records every answer."""

    port: int
    paths: tuple = ("/health", "/metrics")
    pause: float = 0.1
    timeout: float = 30
    answers: list = field(default_factory=list)

    def __post_init__(self):
        self._running = False
        self._thread = None

    def start(self):
        self._running = True
        self._thread = eventlet.spawn(self._run)
        return self

    def stop(self):
        self._running = False
        self._thread.wait()
        return self.answers

    def _run(self):
        turn = 0
        while self._running:
            path = self.paths[turn % len(self.paths)]
            turn += 1
            self.answers.append(get(self.port, path, self.timeout))
            eventlet.sleep(self.pause)

    def longest(self):
        return max((answer.seconds for answer in self.answers), default=0.0)

    def failures(self):
        """Answers that were not a JSON 200."""
        return [a for a in self.answers if a.status != 200 or not a.json_body]


def get(port, path, timeout=30):
    """GET `path` on a new connection; an Answer, whatever happens."""
    started = time.monotonic()
    status, body, error = None, b"", ""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            status, body = read_response(sock)
    except OSError as exc:
        error = repr(exc)
    return Answer(path, status, time.monotonic() - started, is_json(body), body, error, started)


def read_response(sock):
    """(status, body) of a response that ends when the server closes; the
    status is None if no status line arrived."""
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None, body
    return int(parts[1]), body


def is_json(body):
    try:
        json.loads(body)
        return True
    except ValueError:
        return False


class Connection:
    """One client connection and what the server has sent on it."""

    def __init__(self, sock):
        self.sock = sock
        self.received = b""
        self.ended = False  # the server closed or reset it

    def reply(self):
        """Everything the server sent, once it has closed (or reset) the
        connection; None while it is open. Never blocks."""
        if not self.ended:
            self.sock.settimeout(0.0)  # eventlet: recv raises instead of waiting
            try:
                while chunk := self.sock.recv(65536):
                    self.received += chunk
                self.ended = True
            except BlockingIOError:
                pass
            except OSError:
                self.ended = True
        return self.received if self.ended else None

    def close(self):
        self.sock.close()


@dataclass
class Crowd:
    """Many connections to the gateway, each opened and sent `data` at
    once; refused connections are counted, not raised."""

    port: int
    connections: list = field(default_factory=list)
    tried: int = 0
    refused: int = 0

    def open(self, count, data=b"", at_once=50):
        """Open `count` connections, `at_once` at a time, sending `data` on
        each."""
        pool = eventlet.GreenPool(at_once)
        for _ in range(count):
            pool.spawn_n(self._open_one, data)
        pool.waitall()
        return self

    def _open_one(self, data):
        self.tried += 1
        try:
            sock = socket.create_connection((HOST, self.port), timeout=10)
            if data:
                sock.sendall(data)
        except OSError:
            self.refused += 1
            return
        self.connections.append(Connection(sock))

    def still_open(self):
        """How many of the connections the server has not closed yet."""
        return sum(1 for connection in self.connections if connection.reply() is None)

    def replies(self):
        """What the server sent on each connection it has closed (b"" if
        it closed without a word or reset it)."""
        return [reply for c in self.connections if (reply := c.reply()) is not None]

    def close(self):
        for connection in self.connections:
            connection.close()


def turned_away(answer):
    """Refused before any handler ran: the connection limit's JSON 503, or
    closed or reset without an answer (not the client giving up). A 503
    for a queue time or an RPC timeout came from a request that was let in."""
    if answer.status is None:
        return not answer.timed_out
    return answer.status == 503 and answer.message().startswith(TOO_MANY_CONNECTIONS)


def served_between(answers, after, before):
    """The 200s to requests begun after `after` and answered before `before`
    (time.monotonic() moments)."""
    return [
        answer
        for answer in answers
        if answer.status == 200 and answer.started > after and answer.ended < before
    ]


def burst(port, paths, timeout=60):
    """GET every path in `paths` at once, each over its own connection;
    their Answers, in the same order."""
    pool = eventlet.GreenPool(len(paths))
    return list(pool.imap(lambda path: get(port, path, timeout), paths))


def seconds_until_normal(port, timeout=60):
    """From now until GET /health and GET /metrics both answer a JSON 200."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        answers = [get(port, path, timeout=10) for path in ("/health", "/metrics")]
        if all(answer.status == 200 and answer.json_body for answer in answers):
            return time.monotonic() - started
        eventlet.sleep(0.05)
    raise AssertionError(f"the gateway was not back to normal {timeout} s after the attack")


# /proc/net/tcp's connection states: the server's side not closed yet.
ESTABLISHED, CLOSE_WAIT = "01", "08"


def connections_held(port):
    """How many connections the server on 127.0.0.1:`port` still holds:
    open, or closed by the client but not yet by the server (Linux)."""
    held = 0
    with open("/proc/net/tcp") as table:
        next(table)  # the header
        for line in table:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            held += local_port == port and fields[3] in (ESTABLISHED, CLOSE_WAIT)
    return held


def access_lines(process, request_line):
    """How many requests with this request line the gateway's access log
    shows as answered (eventlet logs each as `"GET /health HTTP/1.1" 200 ...`)."""
    return process.output().count(f'"{request_line}"')


def rss_mib(pid):
    """Resident memory of a process, in MiB (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")
