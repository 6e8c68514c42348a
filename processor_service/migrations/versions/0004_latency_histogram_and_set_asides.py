"""latency_histogram and events_set_aside, behind the Prometheus metrics

The gateway's Prometheus exposition reports the end-to-end latency as a
histogram and counts the events set aside (retried, dead-lettered), the same
however many processors run, so both are kept in tables. Every histogram row
is created here at zero: counting then only updates rows, so concurrent
processors never insert into the same gap of the index. Orders processed
before this revision whose created_at is known are counted in the histogram
at once; events set aside before it were never counted and start at zero.

Revision ID: p0004
Revises: p0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "p0004"
down_revision = "p0003"
branch_labels = None
depends_on = None

# processor_service.latency's buckets and processing_totals' shards when
# this revision was written (a migration does not follow later code).
BOUNDS_US = (
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
OVERFLOW_LE_US = 2**63 - 1
SHARDS = 16
OUTCOMES = ("retried", "dead_lettered")


def backfill_statement():
    bucket = " ".join(f"WHEN latency_us <= {bound} THEN {bound}" for bound in BOUNDS_US)
    return (
        "UPDATE latency_histogram AS h JOIN ("
        f"  SELECT order_id % {SHARDS} AS shard,"
        f"    CASE {bucket} ELSE {OVERFLOW_LE_US} END AS le_us,"
        "    COUNT(*) AS orders, SUM(latency_us) AS latency_us_sum"
        "  FROM (SELECT order_id, GREATEST(TIMESTAMPDIFF(MICROSECOND, order_created_at,"
        "          processed_at), 0) AS latency_us"
        "        FROM order_process WHERE order_created_at IS NOT NULL) AS timed"
        "  GROUP BY shard, le_us"
        ") AS counted ON counted.shard = h.shard AND counted.le_us = h.le_us "
        "SET h.orders = counted.orders, h.latency_us_sum = counted.latency_us_sum"
    )


def upgrade():
    histogram = op.create_table(
        "latency_histogram",
        sa.Column("shard", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("le_us", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("latency_us_sum", sa.Numeric(38, 0), nullable=False),
        mysql_engine="InnoDB",
    )
    set_aside = op.create_table(
        "events_set_aside",
        sa.Column("outcome", sa.String(16), primary_key=True),
        sa.Column("events", sa.BigInteger(), nullable=False),
        mysql_engine="InnoDB",
    )
    op.bulk_insert(
        histogram,
        [
            {"shard": shard, "le_us": le_us, "orders": 0, "latency_us_sum": 0}
            for shard in range(SHARDS)
            for le_us in (*BOUNDS_US, OVERFLOW_LE_US)
        ],
    )
    op.bulk_insert(set_aside, [{"outcome": outcome, "events": 0} for outcome in OUTCOMES])
    op.execute(backfill_statement())


def downgrade():
    op.drop_table("events_set_aside")
    op.drop_table("latency_histogram")
