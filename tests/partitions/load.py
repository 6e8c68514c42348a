"""The clients of a run, each a greenthread of the test process (in the root
namespace, which no nemesis cuts off): one calling the generator's
create_orders over RPC, one posting /orders to the gateway, while the timer
generates. Each operation goes into the history with its outcome."""

import time

import eventlet
import requests
from nameko.exceptions import RemoteError

from harness.sandbox import rpc_proxy
from tests.partitions.history import ACK, REFUSED, UNKNOWN

# The longest a client waits for one operation (then: unknown).
OP_SECONDS = 15
RPC_SECONDS = 10
# Orders per create_orders call, and each client's pause between operations.
ORDERS_PER_CALL = 3
PAUSE_SECONDS = 0.2


def rpc_op(amqp_uri, op):
    """(outcome, ids, error) of one create_orders call."""
    proxy = rpc_proxy(amqp_uri, timeout=RPC_SECONDS)
    sent = False
    try:
        with eventlet.Timeout(OP_SECONDS):
            generator = proxy.start().order_generator
            sent = True  # from here on the request may reach the generator
            orders = generator.create_orders([op.quantity] * op.count)
        return ACK, [order["id"] for order in orders], ""
    except RemoteError as exc:
        if exc.exc_type == "InvalidQuantity":
            return REFUSED, [], exc.exc_type
        return UNKNOWN, [], exc.exc_type  # TransactionFailed says: either
    except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001 - every failure is an outcome
        return (UNKNOWN if sent else REFUSED), [], type(exc).__name__
    finally:
        with eventlet.Timeout(5, False):
            try:
                proxy.stop()
            except Exception:  # the connection is gone; nothing to close
                pass


def http_op(pipeline, op):
    """(outcome, ids, error) of one POST /orders."""
    try:
        response = pipeline.post("/orders", json={"quantity": op.quantity}, timeout=(3, OP_SECONDS))
    except requests.ConnectTimeout as exc:
        return REFUSED, [], type(exc).__name__
    except requests.ConnectionError as exc:
        # Refused before the request was sent, or lost after: unknown.
        refused = "NewConnectionError" in str(exc) or "Connection refused" in str(exc)
        return (REFUSED if refused else UNKNOWN), [], type(exc).__name__
    except requests.RequestException as exc:
        return UNKNOWN, [], type(exc).__name__
    if response.status_code == 201:
        return ACK, [response.json()["id"]], ""
    if 400 <= response.status_code < 500:
        return REFUSED, [], str(response.status_code)
    return UNKNOWN, [], str(response.status_code)


class Load:
    def __init__(self, pipeline, history):
        self.pipeline = pipeline
        self.history = history
        self.running = False
        self.threads = []

    def start(self):
        self.running = True
        self.threads = [
            eventlet.spawn(self._client, "rpc", ORDERS_PER_CALL, self._rpc),
            eventlet.spawn(self._client, "http", 1, self._http),
        ]
        return self

    def _rpc(self, op):
        return rpc_op(self.pipeline.amqp_uri, op)

    def _http(self, op):
        return http_op(self.pipeline, op)

    def _client(self, client, count, run):
        while self.running:
            op = self.history.new_op(client, count, time.monotonic())
            op.outcome, op.ids, op.error = run(op)
            op.ended = time.monotonic()
            self.history.record(op)
            eventlet.sleep(PAUSE_SECONDS)

    def stop(self):
        """Let each client finish the operation it is in, then stop."""
        self.running = False
        for thread in self.threads:
            thread.wait()
