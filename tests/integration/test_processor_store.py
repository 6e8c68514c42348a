"""order_processor's SQL against a real MariaDB database of the test's own."""

from datetime import datetime
from decimal import Decimal

from generator_service import store as generator_store
from harness.tables import sql, sql_metrics
from processor_service import store
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
