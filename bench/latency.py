"""Scenario 2: end-to-end latency at a steady rate of new orders.

Latency is order_process.processed_at - orders.created_at, read from the
tables, over the orders created after a warm-up. A generator and a
processor run as `nameko run` processes. The orders come from one of:

- "inprocess" (default): the generator's create_order code path called in
  this process on a fixed schedule, from a few lanes (`order_source`);
- "timer": the generator service's own timer with ORDER_INTERVAL_SECONDS =
  1 / rate. It skips ticks that come early, so it falls short of the rate
  (about 80 orders/s at 0.01 s here); the achieved rate is reported.
"""

import random
import threading
import time
from contextlib import ExitStack

from bench.order_source import InProcessGenerator
from bench.process_stats import peak_rss_by_service
from bench.stats import latency_summary, rate
from bench.tables import creation_and_processing, wait_processed
from harness.sandbox import LocalServers, rpc_proxy, sandbox, wait_for_rpc
from harness.tables import order_count

WARMUP_SECONDS = 2
LANES = 4
SOURCES = ("inprocess", "timer")


def paced_orders(creators, per_second, seconds, seed=1):
    """Create `per_second` orders a second on a fixed schedule, order n
    going to creator n % len(creators) (each creator is a lane that makes
    one call at a time; several lanes keep the schedule when a call takes
    longer than the gap between orders). Returns (lateness, errors): how far
    behind schedule the last call started (s), and the failed calls'
    messages."""
    total = int(per_second * seconds)
    started = time.monotonic() + 0.1
    lateness, errors = [0.0] * len(creators), []

    def lane(index, create_order):
        rng = random.Random(seed + index)
        for n in range(index, total, len(creators)):
            delay = started + n / per_second - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            lateness[index] = -delay if delay < 0 else 0.0
            try:
                create_order(rng.randint(1, 100))
            except Exception as exc:  # counted and reported, the schedule goes on
                errors.append(f"{type(exc).__name__}: {exc}"[:300])

    threads = [
        threading.Thread(target=lane, args=(index, create_order))
        for index, create_order in enumerate(creators)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return max(lateness), errors


def run_latency(
    log_dir,
    per_second,
    seconds,
    source="inprocess",
    warmup=WARMUP_SECONDS,
    settings=None,
    servers=LocalServers,
):
    """One run in a fresh database and vhost on `servers` (the machine's, or
    harness.clusters.ClusterServers); `settings` are extra environment
    variables for every service."""
    timer = source == "timer"
    settings = {**(settings or {}), "GENERATE_ON_FIRST_START": "true" if timer else "false"}
    if timer:
        settings["ORDER_INTERVAL_SECONDS"] = str(1 / per_second)
    with sandbox(log_dir, servers, **settings) as pipeline:
        processor = pipeline.start_service("processor_service")
        wait_for_rpc(pipeline.broker, "order_processor", "metrics", [processor])
        generator = pipeline.start_service("generator_service")
        wait_for_rpc(pipeline.broker, "order_generator", "status", [generator])
        engine = pipeline.engine()
        lateness, errors = None, []
        if timer:
            time.sleep(warmup + seconds)
            with rpc_proxy(pipeline.broker) as proxy:
                proxy.order_generator.stop()
            created = order_count(engine)
        else:
            with ExitStack() as stack:
                creators = [stack.enter_context(InProcessGenerator(pipeline)) for _ in range(LANES)]
                lateness, errors = paced_orders(creators, per_second, warmup + seconds)
            created = int(per_second * (warmup + seconds)) - len(errors)
        try:
            wait_processed(engine, created, [generator, processor])
            rows = creation_and_processing(engine)
        finally:
            engine.dispose()
        memory = peak_rss_by_service(
            [("order_generator", generator), ("order_processor", processor)]
        )
    return summarise(rows, per_second, seconds, warmup, source, lateness, errors, memory)


def summarise(rows, per_second, seconds, warmup, source, lateness, errors, memory):
    """`rows`: [(order id, created_at, processed_at)] in epoch seconds."""
    start = min(created for _, created, _ in rows) + warmup
    measured = [(created, processed) for _, created, processed in rows if created >= start]
    created = sorted(created for created, _ in measured)
    return {
        "source": source,
        "target_orders_per_second": per_second,
        "seconds": seconds,
        "warmup_seconds": warmup,
        "created_orders_per_second": rate(len(created), created[0], created[-1]),
        "driver_lateness_seconds": lateness,
        "create_order_errors": len(errors),
        "first_errors": sorted(set(errors))[:3],
        "latency": latency_summary([processed - created for created, processed in measured]),
        "peak_rss_mb": memory,
    }
