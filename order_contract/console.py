"""What the console asks the services for, and its bounds.

    order_generator.created_per_second(since)   -> [[second, created], ...]
    order_processor.processed_per_second(since) -> [ProcessedSecond, ...]
    order_generator.recent_orders(limit)        -> orders, newest first
    order_processor.get_results(order_ids)      -> processing results

A second is a whole number of seconds since the Unix epoch (UTC); a bucket
covers [second, second + 1). Seconds with nothing in them are left out.
"""

from typing import TypedDict

from order_contract.errors import InvalidArgument
from order_contract.limits import is_int

# The charts cover this many seconds back from now.
CHART_SECONDS = 600
# The console lists this many recent orders; recent_orders allows up to MAX.
RECENT_ORDERS = 20
MAX_RECENT_ORDERS = 100
# Latency percentiles the processor reports per second.
LATENCY_PERCENTILES = (50, 95)


class ProcessedSecond(TypedDict):
    second: int
    processed: int
    average_execution_price: str  # a decimal string, half-up to the cent
    latency_p50_ms: float | None  # None when no order of the second has a created_at
    latency_p95_ms: float | None


def validate_since(since: object, now: float) -> int:
    """`since` as an epoch second, raised to the start of the chart window
    (no call reads further back than CHART_SECONDS)."""
    if not is_int(since):
        raise InvalidArgument(f"since must be an integer epoch second, got {since!r:.50}")
    return max(since, int(now) - CHART_SECONDS)


def validate_recent_limit(limit: object) -> int:
    if not is_int(limit) or not 1 <= limit <= MAX_RECENT_ORDERS:
        raise InvalidArgument(
            f"limit must be an integer from 1 to {MAX_RECENT_ORDERS}, got {limit!r:.50}"
        )
    return limit
