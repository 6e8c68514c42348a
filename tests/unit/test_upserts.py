"""The upserts on the per-order paths are compiled once (order_pipeline.upserts)."""

from sqlalchemy.dialects.mysql import insert as mysql_insert

from generator_service import store as generator_store
from generator_service.models import OrderCount
from processor_service import store as processor_store

PER_ORDER_STATEMENTS = [
    generator_store.ADD_TO_COUNT,
    generator_store.INSERT_ORDERS,
    generator_store.INSERT_OUTBOX_ROWS,
    processor_store.INSERT_RESULT,
    processor_store.ADD_TO_TOTALS,
    processor_store.ADD_TO_LATENCY_HISTOGRAM,
    processor_store.ADD_TO_HANDLING_SECONDS,
]


def test_every_per_order_statement_can_be_cached():
    # A statement without a cache key is compiled again on every execution.
    for statement in PER_ORDER_STATEMENTS:
        assert statement._generate_cache_key() is not None, str(statement)


def test_sqlalchemy_still_cannot_cache_on_duplicate_key_update():
    """Why order_pipeline.upserts exists; when this fails, SQLAlchemy caches
    the clause itself and `precompiled` can go."""
    upsert = mysql_insert(OrderCount)
    statement = upsert.on_duplicate_key_update(orders_created=upsert.inserted.orders_created)
    assert statement._generate_cache_key() is None


def test_the_upsert_is_mariadb_sql_with_named_parameters():
    sql = str(processor_store.ADD_TO_TOTALS)
    assert sql.startswith(
        "INSERT INTO processing_totals (shard, orders_processed, execution_price_sum) "
        "VALUES (:shard, :orders_processed, :execution_price_sum) ON DUPLICATE KEY UPDATE "
    )
    assert "VALUES(orders_processed)" in sql
