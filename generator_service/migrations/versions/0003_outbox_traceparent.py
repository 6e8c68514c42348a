"""order_outbox.traceparent

The trace context of the span that created an order, so that the
OrderCreated event published from its outbox row continues the order's
trace (order_pipeline/trace_context.py), whenever and by whom it is published.

Revision ID: g0003
Revises: g0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "g0003"
down_revision = "g0002"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("order_outbox", sa.Column("traceparent", sa.String(55), nullable=True))


def downgrade():
    op.drop_column("order_outbox", "traceparent")
