"""order_process without a foreign key to orders

orders belongs to order_generator: the processor confirms every order over
RPC before storing its result, and a foreign key across the two services'
tables would tie them to one database and to the order of their migrations.
The model never declared it, so autogenerate would have dropped it anyway.

Revision ID: p0002
Revises: p0001
Create Date: 2026-11-29
"""

from alembic import op

revision = "p0002"
down_revision = "p0001"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_constraint("fk_order_process_order", "order_process", type_="foreignkey")


def downgrade():
    op.create_foreign_key("fk_order_process_order", "order_process", "orders", ["order_id"], ["id"])
