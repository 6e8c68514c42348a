"""order_process keeps the order's created_at, and is indexed by processed_at

The console charts latency (created to processed) per second over the last
minutes. The processor learns each order's created_at when it confirms the
order over RPC, and keeps it here, so it never reads the generator's table;
rows stored earlier keep NULL. The index serves reads by processing time.

Revision ID: p0003
Revises: p0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME

revision = "p0003"
down_revision = "p0002"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("order_process", sa.Column("order_created_at", DATETIME(fsp=6), nullable=True))
    op.create_index("ix_order_process_processed_at", "order_process", ["processed_at"])


def downgrade():
    op.drop_index("ix_order_process_processed_at", table_name="order_process")
    op.drop_column("order_process", "order_created_at")
