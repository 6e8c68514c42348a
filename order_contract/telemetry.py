"""What the processor reports for the gateway's Prometheus exposition.

    order_processor.telemetry() -> ProcessorTelemetry

Every figure is pipeline-wide: read from the processor's tables, which every
processor instance writes in the same transaction as its results (or, for
the events set aside, right after the broker took their copy), never from
one process's memory.
"""

from typing import TypedDict

# Outcomes of an OrderCreated event set aside by its handler, as counted.
RETRIED = "retried"  # sent to a delay queue, to be handled again
DEAD_LETTERED = "dead_lettered"  # parked on the dead-letter queue
SET_ASIDE_OUTCOMES = (RETRIED, DEAD_LETTERED)


class LatencyHistogram(TypedDict):
    """Created-to-processed latency of the orders processed, as a Prometheus
    histogram: `buckets` are [upper bound in seconds, orders whose latency is
    at most that], ascending and cumulative; `count` (the +Inf bucket) and
    `sum_seconds` cover every order counted."""

    buckets: list[list[float | int]]
    count: int
    sum_seconds: float


class ProcessorTelemetry(TypedDict):
    orders_processed: int
    average_execution_price: str | None  # a decimal string; None before the first order
    orders_retried: int  # retries scheduled (an event retried three times counts three)
    orders_dead_lettered: (
        int  # events parked on the dead-letter queue (a replay that fails again counts again)
    )
    latency: LatencyHistogram
