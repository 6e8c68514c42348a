"""orders counted in shards, off the generator_state row

Every create added one to generator_state.orders_created, so every create
took that one row's write lock until it committed, and concurrent creates
ran one at a time. The count moves to order_counts, one row per shard (the
old count goes to shard 0); a create adds to one shard picked at random.

Revision ID: g0004
Revises: g0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "g0004"
down_revision = "g0003"
branch_labels = None
depends_on = None

# generator_service.store.ORDER_COUNT_SHARDS when this revision was written;
# the generator adds any missing shard row at start-up.
SHARDS = 16


def upgrade():
    op.create_table(
        "order_counts",
        sa.Column("shard", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("orders_created", sa.BigInteger(), nullable=False),
        mysql_engine="InnoDB",
    )
    op.execute(
        "INSERT INTO order_counts (shard, orders_created) "
        "SELECT 0, COALESCE((SELECT orders_created FROM generator_state WHERE id = 1), 0)"
    )
    values = ", ".join(f"({shard}, 0)" for shard in range(1, SHARDS))
    op.execute(f"INSERT INTO order_counts (shard, orders_created) VALUES {values}")
    op.drop_column("generator_state", "orders_created")


def downgrade():
    op.add_column(
        "generator_state",
        sa.Column("orders_created", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE generator_state SET orders_created = "
        "(SELECT COALESCE(SUM(orders_created), 0) FROM order_counts)"
    )
    op.drop_table("order_counts")
