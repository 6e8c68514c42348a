"""dead_letters: the processor keeps its dead letters in a table of its own

Listing dead letters used to take them off the dead-letter queue and give
them back, which a quorum queue counts as a delivery (RabbitMQ 4 drops a
message after 20). The processor now moves each dead letter off the queue
into this table as it arrives, and the console, the API, replays and
discards work on the table. Dead letters already on the queue are moved in
by the first processor that starts after this revision.

Revision ID: p0005
Revises: p0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME, LONGBLOB, LONGTEXT, MEDIUMTEXT

revision = "p0005"
down_revision = "p0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("dead_lettered_at", DATETIME(fsp=6), nullable=False),
        sa.Column("resolved_at", DATETIME(fsp=6), nullable=True),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("error_type", sa.String(100), nullable=False),
        sa.Column("error_message", sa.String(500), nullable=False),
        sa.Column("failing_frame", sa.String(300), nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("first_failed_at", DATETIME(fsp=6), nullable=True),
        sa.Column("last_failed_at", DATETIME(fsp=6), nullable=True),
        sa.Column("failures", MEDIUMTEXT(), nullable=False),
        sa.Column("body", LONGBLOB(), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("content_encoding", sa.String(100), nullable=True),
        sa.Column("headers", LONGTEXT(), nullable=False),
        mysql_engine="InnoDB",
    )
    op.create_index(
        "ix_dead_letters_state_time", "dead_letters", ["state", "dead_lettered_at", "id"]
    )


def downgrade():
    op.drop_table("dead_letters")
