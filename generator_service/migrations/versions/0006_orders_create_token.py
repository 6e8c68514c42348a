"""orders.create_token: which create transaction stored the order

Revision ID: g0006
Revises: g0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import VARCHAR

revision = "g0006"
down_revision = "g0005"
branch_labels = None
depends_on = None


def upgrade():
    # Nullable and last: MariaDB adds it instantly, without copying the table.
    op.add_column(
        "orders",
        sa.Column(
            "create_token", VARCHAR(16, charset="ascii", collation="ascii_bin"), nullable=True
        ),
    )


def downgrade():
    op.drop_column("orders", "create_token")
