"""How fast orders get in: create_order with many calls in flight,
create_orders in bulk, and the timer at a 1 ms interval, each beside the
ceiling measured in the same run (a do-nothing RPC method on a service of
its own, called by the same client).

The client is nameko's ClusterRpcProxy, which waits for a publisher
confirm on every request: its own ceiling is in the do-nothing figure, so
the ratio is what the generator adds.
"""

import time

from bench.noop_service import NOOP
from bench.process_stats import peak_rss_by_service
from harness.sandbox import rpc_proxy, sandbox, wait_for_rpc
from harness.tables import order_count

IN_FLIGHT = 200
BULK_SIZE = 100
BULK_IN_FLIGHT = 8
# The timer's second run: ORDERS_PER_TICK, what lifts its rate.
ORDERS_PER_TICK = 10


def calls_per_second(method, calls, in_flight, *args):
    """Keep `in_flight` calls of `method(*args)` outstanding until `calls`
    have answered; return answers per second."""
    started = time.monotonic()
    pending = []
    sent = 0
    while sent < calls or pending:
        while sent < calls and len(pending) < in_flight:
            pending.append(method.call_async(*args))
            sent += 1
        pending.pop(0).result()
    return calls / (time.monotonic() - started)


def timer_rate(pipeline, seconds, orders_per_tick):
    """Orders per second the timer creates at a 1 ms interval."""
    generator = pipeline.start_service(
        "generator_service", ORDER_INTERVAL_SECONDS="0.001", ORDERS_PER_TICK=orders_per_tick
    )
    wait_for_rpc(pipeline.amqp_uri, "order_generator", "status", [generator])
    with rpc_proxy(pipeline.amqp_uri) as proxy:
        proxy.order_generator.start()
        started, first = time.monotonic(), order_count(pipeline.db_uri)
        time.sleep(seconds)
        last, ended = order_count(pipeline.db_uri), time.monotonic()
        proxy.order_generator.stop()
    generator.stop()
    return (last - first) / (ended - started)


def run_ingest(log_dir, calls, bulk_calls, timer_seconds):
    with sandbox(log_dir, GENERATE_ON_FIRST_START="false") as pipeline:
        noop = pipeline.start_service("bench.noop_service")
        generator = pipeline.start_service("generator_service")
        wait_for_rpc(pipeline.amqp_uri, NOOP, "noop", [noop])
        wait_for_rpc(pipeline.amqp_uri, "order_generator", "status", [generator])
        with rpc_proxy(pipeline.amqp_uri, timeout=60) as proxy:
            noop_rate = calls_per_second(proxy[NOOP].noop, calls, IN_FLIGHT)
            single = calls_per_second(proxy.order_generator.create_order, calls, IN_FLIGHT, 3)
            bulk = BULK_SIZE * calls_per_second(
                proxy.order_generator.create_orders, bulk_calls, BULK_IN_FLIGHT, [3] * BULK_SIZE
            )
        memory = peak_rss_by_service([("order_generator", generator)])
        generator.stop()
        created = order_count(pipeline.db_uri)
        if created != calls + bulk_calls * BULK_SIZE:
            raise RuntimeError(
                f"{created} orders in the table, {calls + bulk_calls * BULK_SIZE} created"
            )
        timer = timer_rate(pipeline, timer_seconds, 1)
        timer_batched = timer_rate(pipeline, timer_seconds, ORDERS_PER_TICK)
    return {
        "calls": calls,
        "bulk_calls": bulk_calls,
        "noop_calls_per_second": noop_rate,
        "create_order_per_second": single,
        "create_order_ratio": single / noop_rate,
        "create_orders_per_second": bulk,
        "timer_orders_per_second": timer,
        "timer_batched_orders_per_second": timer_batched,
        "peak_rss_mb": memory,
    }
