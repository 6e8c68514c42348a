"""A lean nameko RPC client, run as its own process, for the ingest
ceiling:

    python -m bench.rpc_load amqp://guest:guest@127.0.0.1:5672/vhost \
        bench_noop noop --in-flight 200 --seconds 10 --warmup 1
    python -m bench.rpc_load AMQP_URI order_generator create_order --args '[3]'

nameko's ClusterRpcProxy waits for a publisher confirm on every request,
which caps it near 700 calls/s here however cheap the method: measured with
it, a do-nothing method shows the client's limit, not the service's. This
client speaks nameko 2.14's RPC protocol (nameko/rpc.py) over py-amqp
with nothing else: a request is published to the `nameko-rpc` topic
exchange with routing key `<service>.<method>`, a JSON body
`{"args": [...], "kwargs": {...}}`, `reply_to` the routing key its reply
queue is bound with and a `correlation_id`; the service publishes
`{"result": ..., "error": ...}` back to that exchange with that routing key
and correlation id. It keeps `--in-flight` calls outstanding, sending the
next as each reply arrives, and waits for no confirm. Requests are
persistent, as nameko's proxy sends them, and `mandatory`: a call no queue
is bound for comes back and fails the run at once instead of waiting.

Answers are counted from `--warmup` seconds after `--start-at` (an epoch
time, so that several client processes measure the same window) for
`--seconds`; then no more calls are sent and those outstanding are awaited.
Prints one JSON object: answers per second in the window, every call
answered, errors, and the CPU this process used in the window (in cores:
CPU seconds per second), to show whether the client was the limit.
"""

import argparse
import itertools
import json
import os
import sys
import time
import uuid
from urllib.parse import unquote, urlsplit

import amqp

RPC_EXCHANGE = "nameko-rpc"
# A run with no reply for this long fails (a stopped or stuck service).
STALL_SECONDS = 60
# A wait for replies returns at least this often, so that the window's end
# is seen even when replies stop.
POLL_SECONDS = 0.5


class CallFailed(Exception):
    """The broker or the service would not take a call."""


def connection_parameters(amqp_uri):
    """py-amqp's Connection arguments for an `amqp://user:pass@host:port/vhost`
    URI (the vhost percent-decoded; "/" when the path is empty)."""
    parts = urlsplit(amqp_uri)
    if parts.scheme != "amqp":
        raise ValueError(f"not an amqp:// URI: {parts.scheme}://...")
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return {
        "host": f"{parts.hostname or 'localhost'}:{parts.port or 5672}",
        "userid": unquote(parts.username or "guest"),
        "password": unquote(parts.password or "guest"),
        "virtual_host": vhost,
    }


def request_body(args, kwargs):
    return json.dumps({"args": list(args), "kwargs": dict(kwargs)}).encode()


def reply_error(body):
    """None for a reply that carries a result; else the remote error as
    "ExcType: message"."""
    error = json.loads(body).get("error")
    if not error:
        return None
    return f"{error.get('exc_type', 'error')}: {error.get('value', '')}"


class Window:
    """Counts the answers that arrive from `measure_from` to `stop_at`
    (epoch seconds), and this process's CPU time over that span."""

    def __init__(self, measure_from, stop_at):
        self.measure_from = measure_from
        self.stop_at = stop_at
        self.answers = 0
        self.cpu_at_open = None
        self.cpu_at_close = None

    def see(self, now):
        """Note the time: the CPU clock is read as the window opens and as
        it closes. Returns whether calls may still be sent."""
        if self.cpu_at_open is None and now >= self.measure_from:
            self.cpu_at_open = process_cpu_seconds()
        if self.cpu_at_close is None and now >= self.stop_at:
            self.cpu_at_close = process_cpu_seconds()
        return now < self.stop_at

    def answered(self, now):
        if self.measure_from <= now < self.stop_at:
            self.answers += 1

    def cpu_cores(self):
        if self.cpu_at_open is None or self.cpu_at_close is None:
            return None
        return (self.cpu_at_close - self.cpu_at_open) / (self.stop_at - self.measure_from)


def process_cpu_seconds():
    times = os.times()
    return times.user + times.system


class RpcClient:
    """Calls of one method with fixed arguments, many outstanding at once,
    on one connection and channel."""

    def __init__(self, amqp_uri, service, method):
        self.routing_key = f"{service}.{method}"
        self.service = service
        self.connection = amqp.Connection(**connection_parameters(amqp_uri))
        self.connection.connect()
        self.channel = self.connection.channel()
        # The reply queue and its routing key, as nameko's ReplyListener
        # makes them, but exclusive: it goes with this connection.
        self.reply_to = uuid.uuid4().hex
        self.reply_queue = f"rpc.reply-bench-{self.reply_to}"
        self.channel.exchange_declare(RPC_EXCHANGE, "topic", durable=True, auto_delete=False)
        self.channel.queue_declare(self.reply_queue, exclusive=True, auto_delete=True)
        self.channel.queue_bind(self.reply_queue, RPC_EXCHANGE, self.reply_to)
        self.channel.events["basic_return"].add(self._returned)
        self.channel.basic_consume(self.reply_queue, no_ack=True, callback=self._on_reply)
        self._ids = (f"{self.reply_to}.{n}" for n in itertools.count())
        self.outstanding = set()
        self.on_reply = None

    def _returned(self, exc, exchange, routing_key, message):
        raise CallFailed(
            f"no queue is bound for {routing_key} on {exchange}: is {self.service} running?"
        )

    def _on_reply(self, message):
        correlation_id = message.properties.get("correlation_id")
        if correlation_id in self.outstanding:
            self.outstanding.discard(correlation_id)
            self.on_reply(message.body)

    def send(self, body):
        correlation_id = next(self._ids)
        self.outstanding.add(correlation_id)
        self.channel.basic_publish(
            amqp.Message(
                body,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                reply_to=self.reply_to,
                correlation_id=correlation_id,
            ),
            exchange=RPC_EXCHANGE,
            routing_key=self.routing_key,
            mandatory=True,
        )

    def wait(self):
        """Handle the next message to arrive, waiting up to POLL_SECONDS."""
        try:
            self.connection.drain_events(timeout=POLL_SECONDS)
        except TimeoutError:
            pass

    def close(self):
        self.connection.close()


def run_load(client, body, in_flight, window, stall_seconds=STALL_SECONDS):
    """Keep `in_flight` calls of `body` outstanding until the window ends,
    then wait for those still out. Returns the run's figures.

    Replies are only counted as they arrive; the next calls are sent from
    this loop, never from the reply's callback: py-amqp's basic_publish
    itself reads what has arrived (to see a connection.blocked), so a
    callback that published would recurse, one level per waiting reply."""
    answered = 0
    errors = []

    def on_reply(reply):
        nonlocal answered
        answered += 1
        now = time.time()
        error = reply_error(reply)
        if error is None:
            window.answered(now)
        else:
            errors.append(error)

    client.on_reply = on_reply
    last_progress, last_answered = time.monotonic(), 0
    while True:
        if window.see(time.time()):
            while len(client.outstanding) < in_flight:
                client.send(body)
        if not client.outstanding:
            break
        client.wait()
        if answered != last_answered:
            last_progress, last_answered = time.monotonic(), answered
        elif time.monotonic() - last_progress > stall_seconds:
            raise CallFailed(
                f"no reply from {client.routing_key} for {stall_seconds} s, "
                f"{len(client.outstanding)} calls outstanding"
            )
    seconds = window.stop_at - window.measure_from
    return {
        "method": client.routing_key,
        "in_flight": in_flight,
        "seconds": seconds,
        "calls_per_second": window.answers / seconds,
        "answered": answered,
        "errors": len(errors),
        "first_errors": sorted(set(errors))[:3],
        "client_cpu_cores": window.cpu_cores(),
    }


def wait_until_time(moment):
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench.rpc_load", description=__doc__.splitlines()[0]
    )
    parser.add_argument("amqp_uri")
    parser.add_argument("service")
    parser.add_argument("method")
    parser.add_argument("--args", type=json.loads, default=[], help="a JSON list ([])")
    parser.add_argument("--kwargs", type=json.loads, default={}, help="a JSON object ({})")
    parser.add_argument("--in-flight", type=int, default=200, help="calls outstanding (200)")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=1, help="seconds not counted first (1)")
    parser.add_argument(
        "--start-at", type=float, help="epoch time to start sending at (default: at once)"
    )
    args = parser.parse_args(argv)
    if not isinstance(args.args, list) or not isinstance(args.kwargs, dict):
        parser.error("--args must be a JSON list and --kwargs a JSON object")
    if args.in_flight < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--in-flight must be at least 1, --seconds above 0, --warmup not negative")
    return args


def main(argv=None):
    args = parse_args(argv)
    client = RpcClient(args.amqp_uri, args.service, args.method)
    try:
        # Every client process given the same --start-at counts answers in
        # the same window, wherever it starts.
        start_at = time.time() if args.start_at is None else args.start_at
        wait_until_time(start_at)
        late_seconds = time.time() - start_at
        window = Window(start_at + args.warmup, start_at + args.warmup + args.seconds)
        result = run_load(client, request_body(args.args, args.kwargs), args.in_flight, window)
    except CallFailed as exc:
        sys.exit(f"rpc_load: {exc}")
    finally:
        client.close()
    result["late_seconds"] = late_seconds
    print(json.dumps(result))


if __name__ == "__main__":
    main()
