"""service_instances and handling_seconds, behind the instances and timing

Every instance of every service reports a heartbeat, and the processors keep
the last one of each (service_instances); each processor instance adds what
its OrderCreated handler did, second by second, to handling_seconds, from
which the timing over the last 10 minutes is summed. Both start empty.

Revision ID: p0005
Revises: p0004
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "p0005"
down_revision = "p0004"
branch_labels = None
depends_on = None


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
    op.create_table(
        "handling_seconds",
        sa.Column("instance_id", sa.String(16), primary_key=True),
        sa.Column("second", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("processed", sa.BigInteger(), nullable=False),
        sa.Column("processing_us_sum", sa.BigInteger(), nullable=False),
        sa.Column("critical_orders", sa.BigInteger(), nullable=False),
        sa.Column("critical_us_sum", sa.BigInteger(), nullable=False),
        sa.Column("retries", sa.BigInteger(), nullable=False),
        mysql_engine="InnoDB",
    )
    op.create_index("ix_handling_seconds_second", "handling_seconds", ["second"])


def downgrade():
    op.drop_table("handling_seconds")
    op.drop_table("service_instances")
