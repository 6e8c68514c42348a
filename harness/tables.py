"""What the tables say, for comparing with what the services say.

Each function takes `db`: a database URI (answered on a connection of its
own) or an SQLAlchemy Engine (answered from its pool, for callers that poll).
"""

from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

CENT = Decimal("0.01")


@contextmanager
def connected(db):
    if isinstance(db, Engine):
        with db.begin() as connection:
            yield connection
        return
    engine = create_engine(db)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def sql(db, statement, **params):
    """Run one statement and return all its rows (or its rowcount)."""
    with connected(db) as connection:
        result = connection.execute(text(statement), params)
        return result.all() if result.returns_rows else result.rowcount


def scalar(db, statement, **params):
    return sql(db, statement, **params)[0][0]


# Every order ever processed: those order_process keeps, and those retention
# deleted from it (processor_service.retention), counted in pruned_results.
EVER_PROCESSED = (
    "SELECT (SELECT COUNT(*) FROM order_process) "
    "+ (SELECT COALESCE(SUM(orders), 0) FROM pruned_results), "
    "(SELECT COALESCE(SUM(execution_price), 0) FROM order_process) "
    "+ (SELECT COALESCE(SUM(execution_price_sum), 0) FROM pruned_results)"
)


def sql_metrics(db):
    """The metrics the gateway must report, computed from the tables: the
    orders in order_process plus those retention deleted (pruned_results),
    which is what the running totals behind /metrics count."""
    ((count, total),) = sql(db, EVER_PROCESSED)
    count = int(count)
    average = None
    if count:
        average = str((Decimal(total) / count).quantize(CENT, ROUND_HALF_UP))
    return {"total_orders_processed": count, "average_execution_price": average}


def order_count(db):
    return scalar(db, "SELECT COUNT(*) FROM orders")


def processed_count(db):
    return scalar(db, "SELECT COUNT(*) FROM order_process")


def parked_dead_letters(db):
    """How many dead letters the processor keeps, not yet replayed or discarded."""
    return scalar(db, "SELECT COUNT(*) FROM dead_letters WHERE state = 'parked'")


def dead_letter_rows(db):
    """Every dead letter the processor keeps, oldest first."""
    return sql(db, "SELECT * FROM dead_letters ORDER BY dead_lettered_at, id")


def outbox_size(db):
    return scalar(db, "SELECT COUNT(*) FROM order_outbox")


def unprocessed_order_ids(db):
    return [
        row[0]
        for row in sql(
            db,
            "SELECT o.id FROM orders o LEFT JOIN order_process p ON p.order_id = o.id "
            "WHERE p.order_id IS NULL ORDER BY o.id",
        )
    ]


def wrong_prices(db):
    """Rows whose execution price is not quantity x unit price, half-up."""
    rows = sql(
        db,
        "SELECT o.id, o.quantity, p.unit_price, p.execution_price "
        "FROM orders o JOIN order_process p ON p.order_id = o.id",
    )
    return [
        row
        for row in rows
        if (row.quantity * row.unit_price).quantize(CENT, ROUND_HALF_UP) != row.execution_price
    ]


def latency_histogram(db, bounds_us):
    """(cumulative counts at each bound, count, sum in microseconds) of the
    created-to-processed latency of every processed order whose created_at
    is known, from order_process itself (a negative latency counts as 0)."""
    latencies = [
        max(int(row[0]), 0)
        for row in sql(
            db,
            "SELECT TIMESTAMPDIFF(MICROSECOND, order_created_at, processed_at) "
            "FROM order_process WHERE order_created_at IS NOT NULL",
        )
    ]
    cumulative = [sum(1 for latency in latencies if latency <= bound) for bound in bounds_us]
    return cumulative, len(latencies), sum(latencies)
