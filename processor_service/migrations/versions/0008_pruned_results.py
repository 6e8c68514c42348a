"""pruned_results: what retention has deleted from order_process

One row, the orders deleted and the sum of their execution prices, so that
order_process plus it still adds up to the running totals.

Revision ID: p0008
Revises: p0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "p0008"
down_revision = "p0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "pruned_results",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("execution_price_sum", sa.Numeric(38, 2), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        mysql_engine="InnoDB",
    )


def downgrade():
    op.drop_table("pruned_results")
