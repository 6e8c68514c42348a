"""The end-to-end latency histogram's buckets, without a database:
tests/integration/test_processor_store.py has them against real tables."""

from datetime import datetime, timedelta

import pytest

from processor_service.latency import (
    BUCKET_BOUNDS_US,
    OVERFLOW_LE_US,
    as_histogram,
    bucket_of,
    latency_us,
)
from processor_service.processing import ProcessingResult


def result(latency: timedelta | None):
    processed_at = datetime(2026, 1, 1, 12, 0, 0)
    created_at = None if latency is None else processed_at - latency
    return ProcessingResult(1, 1, 1, processed_at, created_at)


def test_latency_is_exact_in_microseconds_never_negative_and_unknown_without_created_at():
    assert latency_us(result(timedelta(seconds=3, microseconds=7))) == 3_000_007
    assert latency_us(result(timedelta(days=2))) == 2 * 86_400 * 1_000_000
    assert latency_us(result(timedelta(milliseconds=-4))) == 0  # clocks a little apart
    assert latency_us(result(None)) is None


@pytest.mark.parametrize(
    "latency, bucket",
    [
        (0, 1_000),
        (1_000, 1_000),  # a bound belongs to its own bucket ("le")
        (1_001, 2_500),
        (99_999, 100_000),
        (60_000_000, 60_000_000),
        (60_000_001, OVERFLOW_LE_US),
    ],
)
def test_a_latency_is_counted_in_the_first_bucket_at_or_above_it(latency, bucket):
    assert bucket_of(latency) == bucket


def test_the_buckets_run_from_one_millisecond_to_a_minute():
    assert BUCKET_BOUNDS_US[0] == 1_000 and BUCKET_BOUNDS_US[-1] == 60_000_000
    assert list(BUCKET_BOUNDS_US) == sorted(set(BUCKET_BOUNDS_US))


def test_rows_become_a_cumulative_histogram():
    rows = [(1_000, 2, 1_500), (50_000, 3, 90_000), (OVERFLOW_LE_US, 1, 120_000_000)]
    histogram = as_histogram(rows)
    cumulative = dict((bound, count) for bound, count in histogram["buckets"])
    assert cumulative[0.001] == 2
    assert cumulative[0.025] == 2
    assert cumulative[0.05] == 5
    assert cumulative[60.0] == 5
    assert histogram["count"] == 6
    assert histogram["sum_seconds"] == pytest.approx(120.0915)


def test_a_row_of_other_bounds_counts_only_at_or_above_its_own():
    # Left by another set of buckets: 3 orders at most 7 ms, each maybe 6 ms.
    cumulative = dict(as_histogram([(7_000, 3, 18_000)])["buckets"])
    assert (cumulative[0.005], cumulative[0.01]) == (0, 3)
