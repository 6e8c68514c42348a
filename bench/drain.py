"""Scenario 1: drain a backlog of N queued OrderCreated events with K
processor processes, measured from the tables.

The processor's queue is bound first by starting a processor once and
stopping it (so the harness declares nothing of the processor's own); the
backlog is then committed and queued, and K fresh processors are started
with the generator running to answer their get_order calls.
"""

import time

from bench.backlog import queue_backlog
from bench.process_stats import CpuPerOrder, peak_rss_by_service
from bench.stats import rate
from bench.tables import processed_times, wait_processed
from harness.sandbox import LocalServers, sandbox, wait_for_rpc

GENERATOR = "generator_service"
PROCESSOR = "processor_service"


def start_processor(pipeline):
    return pipeline.start_service(PROCESSOR)


def run_drain(
    log_dir, orders, processors, start=start_processor, settings=None, servers=LocalServers
):
    """One drain in a fresh database and vhost on `servers` (the machine's,
    or harness.clusters.ClusterServers). `start(pipeline)` starts one
    processor process (the profiler passes its own); `settings` are extra
    environment variables for every service."""
    with sandbox(log_dir, servers, GENERATE_ON_FIRST_START="false", **(settings or {})) as pipeline:
        generator = pipeline.start_service(GENERATOR)
        primer = pipeline.start_service(PROCESSOR)
        wait_for_rpc(pipeline.broker, "order_generator", "status", [generator])
        wait_for_rpc(pipeline.broker, "order_processor", "metrics", [primer])
        primer.stop()
        backlog = queue_backlog(pipeline, orders)

        launched = time.time()
        workers = [start(pipeline) for _ in range(processors)]
        services = [("order_generator", generator)] + [
            (f"order_processor#{n}", worker) for n, worker in enumerate(workers, 1)
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
