"""order_process and the running totals behind /metrics

Revision ID: p0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME

revision = "p0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "order_process",
        sa.Column("order_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("unit_price", sa.Numeric(16, 4), nullable=False),
        sa.Column("execution_price", sa.Numeric(22, 2), nullable=False),
        sa.Column("processed_at", DATETIME(fsp=6), nullable=False),
        # orders belongs to order_generator, whose migrations run first.
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_process_order"),
        mysql_engine="InnoDB",
    )
    op.create_table(
        "processing_totals",
        sa.Column("shard", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("orders_processed", sa.BigInteger(), nullable=False),
        sa.Column("execution_price_sum", sa.Numeric(38, 2), nullable=False),
        mysql_engine="InnoDB",
    )


def downgrade():
    op.drop_table("processing_totals")
    op.drop_table("order_process")
