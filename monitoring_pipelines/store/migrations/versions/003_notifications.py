"""003: the notification outbox, one row per (incident state change, channel), and every delivery attempt
(frozen, see 001).

Revision ID: 003
Revises: 002
"""

import sqlalchemy as sa
from alembic import op

from monitoring_pipelines.store.tables import UtcTimestamp

revision = "003"
down_revision = "002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column(
            "state", sa.Text(), sa.CheckConstraint("state IN ('opened', 'escalated', 'resolved')"), nullable=False
        ),
        sa.Column(
            "severity", sa.Text(), sa.CheckConstraint("severity IN ('warning', 'critical', 'ok')"), nullable=False
        ),
        sa.Column("family", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("segment", sa.Text(), server_default="", nullable=False),
        sa.Column("partition_date", sa.Date(), nullable=False),
        sa.Column("channel_name", sa.Text(), nullable=False),
        sa.Column(
            "channel_type",
            sa.Text(),
            sa.CheckConstraint("channel_type IN ('slack', 'webhook', 'email', 'pagerduty')"),
            nullable=False,
        ),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Text(),
            sa.CheckConstraint("status IN ('pending', 'delivered', 'config_error')"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", UtcTimestamp(), nullable=False),
        sa.Column("last_attempt_at", UtcTimestamp()),
        sa.Column("next_attempt_at", UtcTimestamp()),
        sa.Column("delivered_at", UtcTimestamp()),
        sa.Column("locked_until", UtcTimestamp()),
        sa.UniqueConstraint("incident_id", "state", "channel_name", name="uq_notification_outbox"),
    )
    op.create_index("ix_notification_outbox_due", "notification_outbox", ["model", "status", "next_attempt_at"])
    op.create_index("ix_notification_outbox_incident", "notification_outbox", ["incident_id", "channel_name"])
    op.create_table(
        "notification_attempts",
        sa.Column("outbox_id", sa.Text(), sa.ForeignKey("notification_outbox.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", UtcTimestamp(), nullable=False),
        sa.Column(
            "outcome",
            sa.Text(),
            sa.CheckConstraint("outcome IN ('delivered', 'retry', 'config_error')"),
            nullable=False,
        ),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("outbox_id", "attempt"),
    )


def downgrade() -> None:
    op.drop_table("notification_attempts")
    op.drop_table("notification_outbox")
