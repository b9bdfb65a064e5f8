"""001: judged metric values and the model-action audit trail.

Revisions are frozen: they spell their columns out instead of importing the tables of ``store/tables.py``, so a
later change of a table is a new revision that also runs on databases created before it. The column types
``UtcTimestamp`` / ``SegmentList`` are imported: they only name the column type (TIMESTAMP WITH TIME ZONE, TEXT).

Revision ID: 001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from monitoring_pipelines.store.tables import UtcTimestamp

revision = "001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_values",
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text()),
        sa.Column("alias", sa.Text()),
        sa.Column("partition_date", sa.Date(), nullable=False),
        sa.Column("family", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("segment", sa.Text(), server_default="", nullable=False),
        sa.Column("value", sa.DOUBLE_PRECISION()),
        sa.Column("warning_threshold", sa.DOUBLE_PRECISION()),
        sa.Column("critical_threshold", sa.DOUBLE_PRECISION()),
        sa.Column("direction", sa.Text(), sa.CheckConstraint("direction IN ('max', 'min')")),
        sa.Column(
            "status",
            sa.Text(),
            sa.CheckConstraint("status IN ('ok', 'warning', 'critical', 'unknown')"),
            nullable=False,
        ),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("computed_at", UtcTimestamp(), nullable=False),
        sa.UniqueConstraint("model", "partition_date", "family", "metric", "segment", name="uq_metric_values"),
    )
    op.create_index(
        "ix_metric_values_history", "metric_values", ["model", "family", "metric", "segment", "partition_date"]
    )
    op.create_table(
        "model_actions",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Text(),
            sa.CheckConstraint("status IN ('requested', 'pending_approval', 'succeeded', 'refused', 'failed')"),
            nullable=False,
        ),
        sa.Column("trigger", sa.Text()),
        sa.Column("partition_date", sa.Date()),
        sa.Column("from_version", sa.Text()),
        sa.Column("to_version", sa.Text()),
        sa.Column("reason", sa.Text()),
        sa.Column("run_id", sa.Text()),
        sa.Column("actor", sa.Text()),
        sa.Column("created_at", UtcTimestamp(), nullable=False),
        sa.Column("updated_at", UtcTimestamp()),
    )
    op.create_index("ix_model_actions_model", "model_actions", ["model", "created_at"])


def downgrade() -> None:
    op.drop_table("model_actions")
    op.drop_table("metric_values")
