"""Percentiles, medians and rates: plain functions of lists of numbers."""

import math
import statistics


def percentile(values, pct):
    """Nearest-rank percentile (`pct` in 0..100) of a non-empty list."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def latency_summary(seconds):
    """p50/p95/p99/max in milliseconds of a list of durations in seconds."""
    return {
        "count": len(seconds),
        "p50_ms": percentile(seconds, 50) * 1000,
        "p95_ms": percentile(seconds, 95) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
        "max_ms": max(seconds) * 1000,
    }


def rate(count, first, last):
    """Events per second when `count` events happened from `first` to
    `last` (two moments, in seconds): count - 1 intervals in that span."""
    span = last - first
    if count < 2 or span <= 0:
        return None
    return (count - 1) / span


def median_of(runs, key):
    """Median of `run[key]` over the runs that have a value for it."""
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None
