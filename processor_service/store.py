"""SQL for order_processor's tables. Functions take an open session; the
caller owns the transaction."""
from sqlalchemy import func, insert, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.exc import IntegrityError

from processor_service.models import OrderProcess, ProcessingTotals

TOTALS_SHARDS = 16
MYSQL_DUPLICATE_KEY = 1062


def add_result(session, result):
    """Store a processing result and count it in the totals.

    Returns False, storing nothing, if the order was already processed: the
    primary key on order_id is what makes a redelivered event harmless.
    """
    try:
        session.execute(insert(OrderProcess).values(
            order_id=result.order_id,
            unit_price=result.unit_price,
            execution_price=result.execution_price,
            processed_at=result.processed_at,
        ))
    except IntegrityError as exc:
        if exc.orig.args and exc.orig.args[0] == MYSQL_DUPLICATE_KEY:
            session.rollback()
            return False
        raise
    add_to_totals(session, result.order_id % TOTALS_SHARDS, 1, result.execution_price)
    return True


def add_to_totals(session, shard, orders, execution_price_sum):
    upsert = mysql_insert(ProcessingTotals).values(
        shard=shard, orders_processed=orders, execution_price_sum=execution_price_sum)
    session.execute(upsert.on_duplicate_key_update(
        orders_processed=ProcessingTotals.orders_processed + upsert.inserted.orders_processed,
        execution_price_sum=(ProcessingTotals.execution_price_sum
                             + upsert.inserted.execution_price_sum),
    ))


def totals(session):
    """(orders processed, sum of execution prices) from the running totals."""
    count, total = session.execute(select(
        func.coalesce(func.sum(ProcessingTotals.orders_processed), 0),
        func.coalesce(func.sum(ProcessingTotals.execution_price_sum), 0),
    )).one()
    return int(count), total


def get_result(session, order_id):
    return session.get(OrderProcess, order_id)
