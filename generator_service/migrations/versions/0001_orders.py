"""orders, the outbox of their OrderCreated events, and the generator state

Revision ID: g0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME

revision = "g0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("created_at", DATETIME(fsp=6), nullable=False),
        mysql_engine="InnoDB",
    )
    op.create_table(
        "order_outbox",
        sa.Column(
            "order_id",
            sa.BigInteger(),
            sa.ForeignKey("orders.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("created_at", DATETIME(fsp=6), nullable=False),
        mysql_engine="InnoDB",
    )
    op.create_table(
        "generator_state",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("last_tick_at", DATETIME(fsp=6), nullable=True),
        sa.Column("orders_created", sa.BigInteger(), nullable=False, server_default="0"),
        mysql_engine="InnoDB",
    )


def downgrade():
    op.drop_table("generator_state")
    op.drop_table("order_outbox")
    op.drop_table("orders")
