"""Teacher digests: what each run sent or previewed to which teacher, when, and its fingerprint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_ID = sa.String(250)
STATUS = sa.String(32)
INSTANT = sa.DateTime(timezone=True)
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "teacher_digests",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("teacher_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("mode", STATUS, nullable=False),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("course_ids", sa.JSON(), nullable=True),
        sa.Column("reason", STATUS, nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("sent_at", INSTANT, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_teacher_digests"),
        sa.UniqueConstraint("run_id", "teacher_id", "mode", name="uq_teacher_digests_run_id_teacher_id_mode"),
    )
    op.create_index(
        "ix_teacher_digests_teacher_id_mode_status", "teacher_digests", ["teacher_id", "mode", "status"]
    )


def downgrade() -> None:
    op.drop_table("teacher_digests")
