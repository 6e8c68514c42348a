"""service_instances and handling_seconds, behind the instances and timing

Every instance of every service reports a heartbeat, and the processors keep
the last one of each (service_instances, empty here). The processors add
what their OrderCreated handler did, second by second, to handling_seconds,
a ring of SHARDS x SLOTS rows created here, all standing for second 0 (out
of any window): writing then only updates rows, so concurrent processors
never insert into the same gap of the index, and nothing is ever deleted.

Revision ID: p0006
Revises: p0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "p0006"
down_revision = "p0005"
branch_labels = None
depends_on = None

# processor_service.store's HANDLING_SHARDS and HANDLING_SLOTS when this
# revision was written (a migration does not follow later code).
SHARDS = 16
SLOTS = 900


def upgrade():
    op.create_table(
        "service_instances",
        sa.Column("instance_id", sa.String(16), primary_key=True),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("git_commit", sa.String(40), nullable=True),
        sa.Column("started_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("last_seen_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("workers_active", sa.Integer(), nullable=False),
        sa.Column("workers_max", sa.Integer(), nullable=False),
        sa.Column("ms_since_event", sa.BigInteger(), nullable=True),
        sa.Column("events_waiting", sa.Integer(), nullable=True),
        sa.Column("queue_ready", sa.Integer(), nullable=True),
        mysql_engine="InnoDB",
    )
    op.create_index("ix_service_instances_last_seen_at", "service_instances", ["last_seen_at"])
    handling = op.create_table(
        "handling_seconds",
        sa.Column("shard", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("slot", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("second", sa.BigInteger(), nullable=False),
        sa.Column("processed", sa.BigInteger(), nullable=False),
        sa.Column("processing_us_sum", sa.BigInteger(), nullable=False),
        sa.Column("critical_orders", sa.BigInteger(), nullable=False),
        sa.Column("critical_us_sum", sa.BigInteger(), nullable=False),
        sa.Column("retries", sa.BigInteger(), nullable=False),
        mysql_engine="InnoDB",
    )
    op.create_index("ix_handling_seconds_second", "handling_seconds", ["second"])
    zero = {
        "second": 0,
        "processed": 0,
        "processing_us_sum": 0,
        "critical_orders": 0,
        "critical_us_sum": 0,
        "retries": 0,
    }
    op.bulk_insert(
        handling,
        [
            {"shard": shard, "slot": slot, **zero}
            for shard in range(SHARDS)
            for slot in range(SLOTS)
        ],
    )


def downgrade():
    op.drop_table("handling_seconds")
    op.drop_table("service_instances")
