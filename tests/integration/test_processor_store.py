"""order_processor's SQL against a real MariaDB database of the test's own."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from alembic import command

from generator_service import store as generator_store
from harness.tables import latency_histogram, sql, sql_metrics
from order_contract import DEAD_LETTERED, RETRIED
from order_pipeline.commands.migrate import alembic_config
from processor_service import store
from processor_service.latency import BUCKET_BOUNDS_US, as_histogram
from processor_service.processing import ProcessingResult, metrics_as_dict


def make_orders(db, quantities):
    with db.get_session() as session:
        generator_store.seed_state(session, running=True)
        return [generator_store.add_order(session, q, datetime(2026, 1, 1)).id for q in quantities]


def result(order_id, price):
    return ProcessingResult(order_id, Decimal("1.0000"), Decimal(price), datetime(2026, 1, 1))


def add(db, *results):
    with db.get_session() as session:
        return store.add_results(session, list(results))


def test_a_result_is_stored_once_and_counted_once(db, db_uri):
    (order_id,) = make_orders(db, [3])
    first = result(order_id, "12.34")
    assert add(db, first) == [first]
    assert add(db, result(order_id, "99.99")) == []
    rows = sql(db_uri, "SELECT order_id, execution_price FROM order_process")
    assert [tuple(r) for r in rows] == [(order_id, Decimal("12.34"))]
    with db.get_session() as session:
        assert store.totals(session) == (1, Decimal("12.34"))


def test_running_totals_equal_an_aggregate_over_the_table(db, db_uri):
    order_ids = make_orders(db, range(1, 41))
    results = [result(order_id, f"{order_id * 7}.{order_id % 100:02d}") for order_id in order_ids]
    assert add(db, *results[:25]) == results[:25]
    # A batch mixing new and already processed orders stores only the new.
    assert add(db, result(order_ids[0], "5000.00"), *results[25:]) == results[25:]
    assert sql(db_uri, "SELECT COUNT(*) FROM processing_totals")[0][0] == 16
    with db.get_session() as session:
        assert metrics_as_dict(*store.totals(session)) == sql_metrics(db_uri)
    assert sql_metrics(db_uri)["total_orders_processed"] == 40


def test_money_columns_are_decimal(db_uri):
    types = dict(
        sql(
            db_uri,
            "SELECT column_name, column_type FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name IN "
            "('order_process', 'processing_totals') AND column_name LIKE '%price%'",
        )
    )
    assert types == {
        "unit_price": "decimal(16,4)",
        "execution_price": "decimal(22,2)",
        "execution_price_sum": "decimal(38,2)",
    }


# --- the latency histogram and the events set aside (the Prometheus figures) ----------

LATENCIES = [
    timedelta(microseconds=400),
    timedelta(milliseconds=1),  # on a bound: counted at most 1 ms
    timedelta(microseconds=1_001),
    timedelta(milliseconds=37),
    timedelta(seconds=3),
    timedelta(minutes=2),  # above the last bound
    timedelta(milliseconds=-3),  # the processor's clock a little behind
]


def timed_result(order_id, latency):
    processed_at = datetime(2026, 1, 1, 12, 0, 0)
    created_at = None if latency is None else processed_at - latency
    return ProcessingResult(order_id, Decimal("1.0000"), Decimal("1.00"), processed_at, created_at)


def histogram_from_the_table(db_uri):
    """The contract's histogram, from an SQL aggregate over order_process."""
    cumulative, count, sum_us = latency_histogram(db_uri, BUCKET_BOUNDS_US)
    return {
        "buckets": [[bound / 1_000_000, n] for bound, n in zip(BUCKET_BOUNDS_US, cumulative)],
        "count": count,
        "sum_seconds": sum_us / 1_000_000,
    }


def stored_histogram(db):
    with db.get_session() as session:
        return as_histogram(store.latency_histogram(session))


def test_the_latency_histogram_counts_each_stored_result_once_in_its_bucket(db, db_uri):
    order_ids = make_orders(db, [1] * (len(LATENCIES) + 1))
    results = [timed_result(i, latency) for i, latency in zip(order_ids, LATENCIES)]
    add(db, *results[:3])
    # A redelivery counts nothing; an order without created_at is not timed.
    add(db, timed_result(order_ids[0], timedelta(seconds=50)), *results[3:])
    add(db, timed_result(order_ids[-1], None))
    histogram = stored_histogram(db)
    assert histogram == histogram_from_the_table(db_uri)
    cumulative = dict((bound, count) for bound, count in histogram["buckets"])
    assert (cumulative[0.001], cumulative[0.0025], cumulative[0.05]) == (3, 4, 5)
    assert (cumulative[5.0], cumulative[60.0], histogram["count"]) == (6, 6, 7)
    assert histogram["sum_seconds"] == pytest.approx(123.039401)
    assert sql_metrics(db_uri)["total_orders_processed"] == 8


def test_the_histogram_is_kept_in_the_transaction_of_its_results(db, db_uri):
    first, second = make_orders(db, [2, 3])
    add(db, timed_result(first, timedelta(milliseconds=5)))
    with pytest.raises(RuntimeError):
        with db.get_session() as session:
            store.add_results(session, [timed_result(second, timedelta(milliseconds=5))])
            raise RuntimeError("the batch fails before its commit")
    assert stored_histogram(db)["count"] == 1
    assert sql_metrics(db_uri)["total_orders_processed"] == 1
    assert stored_histogram(db) == histogram_from_the_table(db_uri)


def test_the_migration_counts_the_orders_processed_before_it(db, db_uri):
    order_ids = make_orders(db, [1] * len(LATENCIES))
    processed_at = datetime(2026, 1, 1, 12, 0, 0)
    for order_id, latency in zip(order_ids, LATENCIES):
        sql(
            db_uri,
            "INSERT INTO order_process VALUES (:id, 1, 1, :processed_at, :created_at)",
            id=order_id,
            processed_at=processed_at,
            created_at=processed_at - latency,
        )
    sql(
        db_uri,
        "INSERT INTO order_process VALUES (:id, 1, 1, :at, NULL)",
        id=order_ids[-1] + 100,
        at=processed_at,
    )
    assert stored_histogram(db)["count"] == 0  # stored behind the histogram's back
    config = alembic_config("processor_service", db_uri)
    command.downgrade(config, "p0003")
    command.upgrade(config, "head")
    assert stored_histogram(db) == histogram_from_the_table(db_uri)
    assert stored_histogram(db)["count"] == len(LATENCIES)


def test_events_set_aside_are_added_up_by_outcome(db):
    with db.get_session() as session:
        assert store.set_aside_counts(session) == {RETRIED: 0, DEAD_LETTERED: 0}
        store.add_set_asides(session, {RETRIED: 3})
        store.add_set_asides(session, {RETRIED: 2, DEAD_LETTERED: 1})
    with db.get_session() as session:
        assert store.set_aside_counts(session) == {RETRIED: 5, DEAD_LETTERED: 1}


def test_a_handling_row_adds_up_its_second_starts_again_for_a_newer_one_and_keeps_it_from_an_older(
    db,
):
    now = int(sql(db.uri, "SELECT TIMESTAMPDIFF(SECOND, '1970-01-01', UTC_TIMESTAMP())")[0][0])
    second = now - 5
    later = second + store.HANDLING_SLOTS  # the same slot, one turn of the ring on
    figures = {"processed": 2, "processing_us_sum": 40, "critical_orders": 2, "critical_us_sum": 90}

    def held(shard):
        return sql(
            db.uri,
            "SELECT second, processed, processing_us_sum, critical_orders, critical_us_sum, "
            "retries FROM handling_seconds WHERE shard = :shard AND slot = :slot",
            shard=shard,
            slot=second % store.HANDLING_SLOTS,
        )[0]

    with db.get_session() as session:
        store.add_handling(session, 3, {second: figures})
        store.add_handling(session, 3, {second: {"retries": 4}, second - 1: {"retries": 1}})
        store.add_handling(session, 3, {second: figures})
        store.add_handling(session, 5, {second: figures})
    assert tuple(held(3)) == (second, 4, 80, 4, 180, 4)
    with db.get_session() as session:
        # Every shard's rows for seconds in the window are summed: 3 and 5.
        assert store.handling_in_window(session, 600) == {
            "processed": 6,
            "processing_us_sum": 120,
            "critical_orders": 6,
            "critical_us_sum": 270,
            "retries": 5,
        }
        # Out of a window that ends before them.
        assert store.handling_in_window(session, 3)["processed"] == 0
    with db.get_session() as session:
        store.add_handling(session, 3, {later: {"processed": 1}})
    assert tuple(held(3)) == (later, 1, 0, 0, 0, 0)
    with db.get_session() as session:
        store.add_handling(session, 3, {second: figures})  # late, for a second now overwritten
    assert tuple(held(3)) == (later, 1, 0, 0, 0, 0)
