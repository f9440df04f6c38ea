"""The ledger's first schema: runs, posted results and line items with their history,
findings, course leases.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(255)
RUN_ID = sa.String(250)
STATUS = sa.String(32)
INSTANT = sa.DateTime(timezone=True)
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _result_columns() -> list[sa.Column]:
    return [
        sa.Column("result_id", ID, nullable=False),
        sa.Column("line_item_id", ID, nullable=False),
        sa.Column("aspen_class_id", ID, nullable=False),
        sa.Column("canvas_course_id", sa.BigInteger(), nullable=False),
        sa.Column("assignment_id", sa.BigInteger(), nullable=False),
        sa.Column("canvas_user_id", sa.BigInteger(), nullable=False),
        sa.Column("student_sis_id", ID, nullable=False),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column("score_status", STATUS, nullable=False),
        sa.Column("canvas_status", STATUS, nullable=False),
        sa.Column("posted_at", INSTANT, nullable=False),
        sa.Column("run_id", RUN_ID, nullable=False),
    ]


def _line_item_columns() -> list[sa.Column]:
    return [
        sa.Column("line_item_id", ID, nullable=False),
        sa.Column("aspen_class_id", ID, nullable=False),
        sa.Column("canvas_course_id", sa.BigInteger(), nullable=False),
        sa.Column("assignment_id", sa.BigInteger(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("run_id", RUN_ID, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("started_at", INSTANT, nullable=False),
        sa.Column("finished_at", INSTANT, nullable=True),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("totals", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_table(
        "posted_results",
        *_result_columns(),
        sa.PrimaryKeyConstraint("result_id", name="pk_posted_results"),
    )
    op.create_index("ix_posted_results_aspen_class_id", "posted_results", ["aspen_class_id"])
    op.create_table(
        "result_history",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        *_result_columns(),
        sa.PrimaryKeyConstraint("id", name="pk_result_history"),
        sa.UniqueConstraint(
            "result_id", "run_id", "posted_at", name="uq_result_history_result_id_run_id_posted_at"
        ),
    )
    op.create_table(
        "posted_line_items",
        *_line_item_columns(),
        sa.Column("posted_at", INSTANT, nullable=False),
        sa.Column("deleted_at", INSTANT, nullable=True),
        sa.PrimaryKeyConstraint("line_item_id", name="pk_posted_line_items"),
    )
    op.create_index("ix_posted_line_items_aspen_class_id", "posted_line_items", ["aspen_class_id"])
    op.create_table(
        "line_item_history",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        *_line_item_columns(),
        sa.Column("action", STATUS, nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_line_item_history"),
        sa.UniqueConstraint(
            "line_item_id",
            "run_id",
            "at",
            "action",
            name="uq_line_item_history_line_item_id_run_id_at_action",
        ),
    )
    op.create_table(
        "findings",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("canvas_course_id", sa.BigInteger(), nullable=True),
        sa.Column("aspen_class_id", ID, nullable=True),
        sa.Column("assignment_id", sa.BigInteger(), nullable=True),
        sa.Column("assignment_name", sa.Text(), nullable=True),
        sa.Column("group_name", sa.Text(), nullable=True),
        sa.Column("student_sis_id", ID, nullable=True),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("limit", sa.JSON(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("suggestion", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
    )
    op.create_index("ix_findings_run_id_scope", "findings", ["run_id", "scope"])
    op.create_table(
        "course_leases",
        sa.Column("canvas_course_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("acquired_at", INSTANT, nullable=False),
        sa.Column("expires_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("canvas_course_id", name="pk_course_leases"),
    )
    op.create_index("ix_course_leases_run_id", "course_leases", ["run_id"])


def downgrade() -> None:
    for table in (
        "course_leases",
        "findings",
        "line_item_history",
        "posted_line_items",
        "result_history",
        "posted_results",
        "runs",
    ):
        op.drop_table(table)
