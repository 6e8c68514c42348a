"""What the tables say, for comparing with what the services say."""
from decimal import ROUND_HALF_UP, Decimal

from tests.support.infra import sql


def sql_metrics(db_uri):
    """The metrics the gateway must report, computed from order_process."""
    (count, total), = sql(db_uri, "SELECT COUNT(*), SUM(execution_price) FROM order_process")
    average = None
    if count:
        average = str((Decimal(total) / count).quantize(Decimal("0.01"), ROUND_HALF_UP))
    return {"total_orders_processed": count, "average_execution_price": average}


def order_count(db_uri):
    return sql(db_uri, "SELECT COUNT(*) FROM orders")[0][0]


def processed_count(db_uri):
    return sql(db_uri, "SELECT COUNT(*) FROM order_process")[0][0]


def unprocessed_order_ids(db_uri):
    return [row[0] for row in sql(
        db_uri,
        "SELECT o.id FROM orders o LEFT JOIN order_process p ON p.order_id = o.id "
        "WHERE p.order_id IS NULL ORDER BY o.id")]


def wrong_prices(db_uri):
    """Rows whose execution price is not quantity x unit price, half-up."""
    rows = sql(db_uri,
               "SELECT o.id, o.quantity, p.unit_price, p.execution_price "
               "FROM orders o JOIN order_process p ON p.order_id = o.id")
    return [row for row in rows
            if (row.quantity * row.unit_price).quantize(Decimal("0.01"), ROUND_HALF_UP)
            != row.execution_price]
