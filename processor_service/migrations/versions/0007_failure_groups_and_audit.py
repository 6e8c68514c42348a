"""dead_letters grouped by cause, edits, and the audit trail of every action

Each dead letter gets the fingerprint of its failure group and the
normalised message the group is shown by (processor_service.failure_groups),
and `edited_as`, the message sent in place of an edited one. Dead letters
kept before this revision are fingerprinted here. dead_letter_audit records
every replay, discard and edit: who, when, what, and how it ended.

Revision ID: p0007
Revises: p0006
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME, MEDIUMTEXT

# Unlike the constants other revisions copy, the fingerprint is the code's
# own: rows fingerprinted here must fall in the same groups as the rows the
# processor fingerprints from now on, whichever version runs the upgrade.
from processor_service.failure_groups import MAX_CAUSE_CHARS, fingerprint, normalise

revision = "p0007"
down_revision = "p0006"
branch_labels = None
depends_on = None

BATCH = 1000


def backfill():
    connection = op.get_bind()
    after = ""
    while True:
        rows = connection.execute(
            sa.text(
                "SELECT id, error_type, error_message, failing_frame FROM dead_letters "
                "WHERE id > :after ORDER BY id LIMIT :batch"
            ),
            {"after": after, "batch": BATCH},
        ).all()
        if not rows:
            return
        connection.execute(
            sa.text(
                "UPDATE dead_letters SET fingerprint = :fingerprint, cause = :cause WHERE id = :id"
            ),
            [
                {
                    "id": row.id,
                    "fingerprint": fingerprint(
                        row.error_type, row.error_message, row.failing_frame
                    ),
                    "cause": normalise(row.error_message)[:MAX_CAUSE_CHARS],
                }
                for row in rows
            ],
        )
        after = rows[-1].id


def upgrade():
    op.add_column("dead_letters", sa.Column("fingerprint", sa.String(16), nullable=True))
    op.add_column("dead_letters", sa.Column("cause", sa.String(500), nullable=True))
    op.add_column("dead_letters", sa.Column("edited_as", sa.String(16), nullable=True))
    backfill()
    op.alter_column("dead_letters", "fingerprint", existing_type=sa.String(16), nullable=False)
    op.alter_column("dead_letters", "cause", existing_type=sa.String(500), nullable=False)
    op.create_index(
        "ix_dead_letters_state_group",
        "dead_letters",
        ["state", "fingerprint", "dead_lettered_at"],
    )
    op.create_table(
        "dead_letter_audit",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("at", DATETIME(fsp=6), nullable=False),
        sa.Column("actor", sa.String(32), nullable=False),
        sa.Column("token_fingerprint", sa.String(24), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(16), nullable=True),
        sa.Column("dead_letter_ids", MEDIUMTEXT(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(1000), nullable=False),
        sa.Column("change", MEDIUMTEXT(), nullable=True),
        mysql_engine="InnoDB",
    )


def downgrade():
    op.drop_table("dead_letter_audit")
    op.drop_index("ix_dead_letters_state_group", table_name="dead_letters")
    op.drop_column("dead_letters", "edited_as")
    op.drop_column("dead_letters", "cause")
    op.drop_column("dead_letters", "fingerprint")
