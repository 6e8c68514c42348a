"""The history of one run: every client operation with its outcome, one
JSON object a line, as it ends.

An operation creates `count` orders of one quantity that no other operation
and no timer tick uses (the timer's are 1 to ORDER_QUANTITY_MAX, 100 by
default): the checker finds an operation's orders in the table by it,
whatever the client was told.

Outcomes: "ack" (the client got the orders' ids), "refused" (the request
certainly did not run: it never reached the broker, or was answered with a
4xx), "unknown" (it may have run: a timeout, a lost connection, a 5xx).
"""

import json
import threading
from dataclasses import asdict, dataclass, field

ACK, REFUSED, UNKNOWN = "ack", "refused", "unknown"
# The first quantity a client operation uses; op n uses FIRST_QUANTITY + n.
FIRST_QUANTITY = 1000


@dataclass
class Op:
    index: int
    client: str  # "rpc" (create_orders) or "http" (POST /orders)
    count: int
    outcome: str = UNKNOWN
    ids: list = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    error: str = ""

    @property
    def quantity(self):
        return FIRST_QUANTITY + self.index


class History:
    """Hands out operation numbers and appends each finished operation to
    `path` (JSON lines); `ops` is what was recorded, in order."""

    def __init__(self, path):
        self.path = path
        self.ops = []
        self._lock = threading.Lock()
        self._next = 0

    def new_op(self, client, count, now):
        with self._lock:
            op = Op(self._next, client, count, started=now)
            self._next += 1
            return op

    def record(self, op):
        with self._lock:
            self.ops.append(op)
            with open(self.path, "a") as history:
                history.write(json.dumps(asdict(op)) + "\n")


def read(path):
    with open(path) as history:
        return [Op(**json.loads(line)) for line in history if line.strip()]
