"""orders indexed by created_at

The console counts the orders created in each second of the last minutes;
without an index that read would scan the whole table every second.

Revision ID: g0002
Revises: g0001
Create Date: 2026-11-29
"""

from alembic import op

revision = "g0002"
down_revision = "g0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_orders_created_at", "orders", ["created_at"])


def downgrade():
    op.drop_index("ix_orders_created_at", table_name="orders")
