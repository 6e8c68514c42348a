"""The end-to-end latency histogram: created (the generator's clock) to
processed (the processor's), in buckets from 1 ms to 60 s.

The counts live in latency_histogram (see models.LatencyBucket), one row per
shard and bucket, each bucket holding the orders above the next lower bound
and at most its own. Here: which bucket a latency falls in, and the
cumulative Prometheus form of the rows.
"""

from bisect import bisect_left
from datetime import timedelta

from order_contract import LatencyHistogram

# Upper bounds in microseconds: 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms,
# 1, 2.5, 5, 10, 30, 60 s. A processor keeps up in milliseconds; seconds mean
# a backlog, and beyond a minute the exact figure matters less than the alert.
BUCKET_BOUNDS_US = (
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
)
# The row of the orders above the last bound (+Inf): the largest BIGINT.
OVERFLOW_LE_US = 2**63 - 1
MICROSECONDS = 1_000_000


def latency_us(result) -> int | None:
    """A result's latency in whole microseconds; None when the order's
    created_at is unknown. Never below zero: the generator's and the
    processor's clocks may differ a little on different hosts."""
    if result.order_created_at is None:
        return None
    elapsed = result.processed_at - result.order_created_at
    return max(elapsed // timedelta(microseconds=1), 0)


def bucket_of(latency: int) -> int:
    """The le_us of the bucket a latency (in microseconds) is counted in."""
    index = bisect_left(BUCKET_BOUNDS_US, latency)
    return BUCKET_BOUNDS_US[index] if index < len(BUCKET_BOUNDS_US) else OVERFLOW_LE_US


def as_histogram(rows) -> LatencyHistogram:
    """[(le_us, orders, latency_us_sum)], one per bucket (any order), as the
    contract's cumulative histogram. A row whose bound is not one of
    BUCKET_BOUNDS_US (left by other bounds) counts towards the bounds at or
    above it, so each figure stays a true "at most"."""
    rows = [(int(le), int(orders), int(total)) for le, orders, total in rows]
    return {
        "buckets": [
            [bound / MICROSECONDS, sum(orders for le, orders, _ in rows if le <= bound)]
            for bound in BUCKET_BOUNDS_US
        ],
        "count": sum(orders for _, orders, _ in rows),
        "sum_seconds": sum(total for _, _, total in rows) / MICROSECONDS,
    }
