"""SQL for order_processor's tables. Functions take an open session; the
caller owns the transaction."""

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.mysql import insert as mysql_insert

from processor_service.models import OrderProcess, ProcessingTotals

TOTALS_SHARDS = 16
MYSQL_DUPLICATE_KEY = 1062

# Core statements (not the ORM's bulk path), built once.
INSERT_RESULT = insert(OrderProcess.__table__)
_upsert = mysql_insert(ProcessingTotals.__table__)
ADD_TO_TOTALS = _upsert.on_duplicate_key_update(
    orders_processed=_upsert.table.c.orders_processed + _upsert.inserted.orders_processed,
    execution_price_sum=(
        _upsert.table.c.execution_price_sum + _upsert.inserted.execution_price_sum
    ),
)


def add_results(session, results):
    """Store processing results and count them in the totals; return the
    ones stored.

    Orders that already have a row are skipped: the primary key on order_id
    is what makes a redelivered event harmless. (If another processor
    inserts the same order between the SELECT and the INSERT, the INSERT
    fails with a duplicate key and the caller retries the batch.)
    """
    order_ids = [result.order_id for result in results]
    done = set(
        session.scalars(select(OrderProcess.order_id).where(OrderProcess.order_id.in_(order_ids)))
    )
    new = [result for result in results if result.order_id not in done]
    if not new:
        return []
    # One statement, many parameter sets: SQLAlchemy compiles it once and
    # PyMySQL sends one multi-row INSERT. (Building `.values([...])` anew
    # for each batch cost more CPU than everything else per order.)
    session.execute(
        INSERT_RESULT,
        [
            {
                "order_id": result.order_id,
                "unit_price": result.unit_price,
                "execution_price": result.execution_price,
                "processed_at": result.processed_at,
            }
            for result in new
        ],
    )
    add_to_totals(session, new)
    return new


def add_to_totals(session, results):
    by_shard = {}
    for result in results:
        count, total = by_shard.get(result.order_id % TOTALS_SHARDS, (0, 0))
        by_shard[result.order_id % TOTALS_SHARDS] = (count + 1, total + result.execution_price)
    # Rows in shard order, so concurrent transactions lock them in the same
    # order and cannot deadlock on each other.
    session.execute(
        ADD_TO_TOTALS,
        [
            {"shard": shard, "orders_processed": count, "execution_price_sum": total}
            for shard, (count, total) in sorted(by_shard.items())
        ],
    )


def is_duplicate_key(integrity_error):
    args = getattr(integrity_error.orig, "args", ())
    return bool(args) and args[0] == MYSQL_DUPLICATE_KEY


def totals(session):
    """(orders processed, sum of execution prices) from the running totals."""
    count, total = session.execute(
        select(
            func.coalesce(func.sum(ProcessingTotals.orders_processed), 0),
            func.coalesce(func.sum(ProcessingTotals.execution_price_sum), 0),
        )
    ).one()
    return int(count), total


def get_result(session, order_id):
    return session.get(OrderProcess, order_id)
