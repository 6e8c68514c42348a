"""Sustained end to end: orders offered to one generator through
`create_orders` at a fixed rate, two processors taking them, for a while.

The orders come on a fixed schedule (`latency.paced_orders`): CALLS_PER_SECOND
create_orders calls a second, each of rate / CALLS_PER_SECOND orders, from a
few lanes, each an RPC client making one call at a time. Meanwhile the
created and processed counts are read from the tables every
SAMPLE_SECONDS, and the CPU time of each process per order processed (the
services, and the machine's RabbitMQ and MariaDB) from /proc.

Reported, over the offered period after a warm-up: the rate orders were
created and processed at, whether the backlog (created - processed) grew
(its least-squares slope, in orders/s), and the created -> processed
latency of those orders (order_process.processed_at - orders.created_at).
"""

import threading
import time
from contextlib import ExitStack

from sqlalchemy import create_engine, text

from bench.latency import paced_orders
from bench.process_stats import CpuPerOrder, peak_rss_by_service, server_pids
from bench.stats import latency_summary
from bench.tables import creation_and_processing, processed_count, wait_processed
from harness.sandbox import rpc_proxy, sandbox, wait_for_rpc

CALLS_PER_SECOND = 50
# Enough calls in flight to keep the schedule when each takes a while.
LANES = 16
SAMPLE_SECONDS = 0.5
WARMUP_SECONDS = 2
# The backlog "grew" when it rose faster than this share of the rate orders
# were created at (not the offered rate: a generator that falls behind the
# offer creates fewer, and its processors' lag is read against those).
GROWTH_TOLERANCE = 0.02


def created_count(engine):
    with engine.connect() as connection:
        return connection.execute(text("SELECT COUNT(*) FROM orders")).scalar_one()


class Sampler:
    """(moment, created, processed) every SAMPLE_SECONDS from a thread of
    its own, feeding the CPU meter too, until `stop()`."""

    def __init__(self, engine, cpu):
        self.engine = engine
        self.cpu = cpu
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.wait(SAMPLE_SECONDS):
            processed = processed_count(self.engine)
            self.cpu.sample(processed)
            self.samples.append((time.monotonic(), created_count(self.engine), processed))


def slope(points):
    """Least-squares slope of [(x, y)], or None for fewer than two x."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return covariance / sum((x - mean_x) ** 2 for x, _ in points)


def bulk_creator(proxy, batch, until):
    """A lane's call: `batch` orders, until the monotonic moment `until`
    (calls the schedule has not reached by then are dropped, so a pipeline
    that falls behind ends the run on time, with a lower created rate)."""

    def create(quantity):
        if time.monotonic() < until:
            proxy.order_generator.create_orders([quantity] * batch)

    return create


def run_sustained(
    log_dir, per_second, seconds, processors=2, warmup=WARMUP_SECONDS, on_started=None
):
    """`on_started([(label, NamekoProcess)])`, if given, is called once the
    services answer, before any order is offered (the profiler's hook)."""
    batch = max(1, round(per_second / CALLS_PER_SECOND))
    calls_per_second = per_second / batch
    with sandbox(log_dir, GENERATE_ON_FIRST_START="false") as pipeline:
        workers = [pipeline.start_service("processor_service") for _ in range(processors)]
        generator = pipeline.start_service("generator_service")
        wait_for_rpc(pipeline.amqp_uri, "order_processor", "metrics", workers)
        wait_for_rpc(pipeline.amqp_uri, "order_generator", "status", [generator])
        services = [("order_generator", generator)] + [
            (f"order_processor#{n}", worker) for n, worker in enumerate(workers, 1)
        ]
        if on_started is not None:
            on_started(services)
        cpu = CpuPerOrder(services + sorted(server_pids().items()))
        engine = create_engine(pipeline.db_uri)
        try:
            with ExitStack() as stack:
                proxies = [
                    stack.enter_context(rpc_proxy(pipeline.amqp_uri, 30)) for _ in range(LANES)
                ]
                sampler = Sampler(engine, cpu).start()
                started, started_epoch = time.monotonic(), time.time()
                until = started + warmup + seconds + 0.1
                creators = [bulk_creator(proxy, batch, until) for proxy in proxies]
                lateness, errors = paced_orders(creators, calls_per_second, warmup + seconds)
            offered_until = time.monotonic()
            sampler.stop()
            created = created_count(engine)
            wait_processed(engine, created, [generator, *workers])
            rows = creation_and_processing(engine)
        finally:
            engine.dispose()
        memory = peak_rss_by_service(services)
    return summarise(
        rows,
        sampler.samples,
        per_second,
        seconds,
        started + warmup,
        offered_until,
        started_epoch + warmup,
        lateness,
        errors,
        cpu.ms_per_order(),
        memory,
    )


def summarise(
    rows,
    samples,
    per_second,
    seconds,
    measure_from,
    offered_until,
    latency_from,
    lateness,
    errors,
    cpu,
    memory,
):
    """`rows`: [(order id, created_at, processed_at)] in epoch seconds;
    `samples`: [(monotonic moment, created, processed)]; the window from
    `measure_from` to `offered_until` (monotonic), and from `latency_from`
    (epoch) for the latency."""
    window = [s for s in samples if measure_from <= s[0] <= offered_until]
    growth = slope([(moment, created - processed) for moment, created, processed in window])
    first, last = (window[0], window[-1]) if len(window) >= 2 else (None, None)
    span = last[0] - first[0] if first else None
    created_rate = (last[1] - first[1]) / span if span else None
    measured = [processed - created for _, created, processed in rows if created >= latency_from]
    return {
        "orders": len(rows),
        "offered_orders_per_second": per_second,
        "seconds": seconds,
        "created_orders_per_second": created_rate,
        "processed_orders_per_second": (last[2] - first[2]) / span if span else None,
        "backlog_start": first[1] - first[2] if first else None,
        "backlog_end": last[1] - last[2] if last else None,
        "backlog_growth_per_second": growth,
        "backlog_grew": None
        if growth is None or created_rate is None
        else growth > GROWTH_TOLERANCE * created_rate,
        "driver_lateness_seconds": lateness,
        "create_orders_errors": len(errors),
        "first_errors": sorted(set(errors))[:3],
        "latency": latency_summary(measured) if measured else {},
        "cpu_ms_per_order": cpu,
        "peak_rss_mb": memory,
    }
