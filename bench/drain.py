"""Scenario 1: drain a backlog of N queued OrderCreated events with K
processor processes, measured from the tables.

The processor's queue is bound first by starting a processor once and
stopping it (so the harness declares nothing of the processor's own); the
backlog is then committed and queued, and K fresh processors are started
with the generator running to answer their get_order calls.

The same drain runs the naive baseline's pair (bench/naive.py): `Drained`
names the services a drain runs.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.backlog import queue_backlog
from bench.process_stats import CpuPerOrder, peak_rss_by_service
from bench.stats import rate
from bench.tables import processed_times, wait_processed
from harness.sandbox import LocalServers, sandbox, wait_for_rpc

GENERATOR = "generator_service"
PROCESSOR = "processor_service"


@dataclass(frozen=True)
class Drained:
    """The pair of services a drain runs."""

    generator: str  # what `nameko run` runs: a module, or module:Class
    processor: str
    source: str  # the generator's service name: the exchange the events go to
    processor_name: str  # the processor's service name (its label in the figures)
    # ready(pipeline, generator, primer): wait until both have started.
    ready: Callable
    settings: dict = field(default_factory=dict)  # environment for both


def _services_ready(pipeline, generator, primer):
    wait_for_rpc(pipeline.broker, "order_generator", "status", [generator])
    wait_for_rpc(pipeline.broker, "order_processor", "metrics", [primer])


SERVICES = Drained(GENERATOR, PROCESSOR, "order_generator", "order_processor", _services_ready)


def run_drain(
    log_dir,
    orders,
    processors,
    start=None,
    settings=None,
    servers=LocalServers,
    drained=SERVICES,
):
    """One drain in a fresh database and vhost on `servers` (the machine's,
    or harness.clusters.ClusterServers). `start(pipeline)` starts one
    processor process (the profiler passes its own); `settings` are extra
    environment variables for every service; `drained` the services (the
    project's, or the naive baseline's)."""
    start = start or (lambda pipeline: pipeline.start_service(drained.processor))
    settings = {**drained.settings, **(settings or {})}
    with sandbox(log_dir, servers, GENERATE_ON_FIRST_START="false", **settings) as pipeline:
        generator = pipeline.start_service(drained.generator)
        primer = pipeline.start_service(drained.processor)
        drained.ready(pipeline, generator, primer)
        primer.stop()
        backlog = queue_backlog(pipeline, orders, source=drained.source)

        launched = time.time()
        workers = [start(pipeline) for _ in range(processors)]
        services = [(drained.source, generator)] + [
            (f"{drained.processor_name}#{n}", worker) for n, worker in enumerate(workers, 1)
        ]
        cpu = CpuPerOrder(services)
        engine = pipeline.engine()
        try:
            finished = wait_processed(engine, orders, [generator, *workers], cpu.sample)
            times = processed_times(engine)
        finally:
            engine.dispose()
        memory = peak_rss_by_service(services)
        for worker in workers:
            worker.stop()
    return summarise(
        orders, processors, times, launched, finished, backlog, memory, cpu.ms_per_order()
    )


def summarise(orders, processors, times, launched, finished, backlog, memory, cpu):
    """Throughput from the processed_at column: first to last processed
    order (processor start-up excluded), and the steady middle 80%."""
    low, high = int(len(times) * 0.1), int(len(times) * 0.9) - 1
    return {
        "processors": processors,
        "orders": orders,
        "orders_per_second": rate(len(times), times[0], times[-1]),
        "steady_orders_per_second": rate(high - low + 1, times[low], times[high]),
        "startup_seconds": times[0] - launched,
        "wall_seconds": finished - launched,
        "backlog_seconds": backlog["seconds"],
        "queues": backlog["queues"],
        "peak_rss_mb": memory,
        "cpu_ms_per_order": cpu,
    }
