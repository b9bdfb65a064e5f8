"""002: incidents, one per breached (model, family, metric) episode, and their timeline (frozen, see 001).

Revision ID: 002
Revises: 001
"""

import sqlalchemy as sa
from alembic import op

from monitoring_pipelines.store.tables import SegmentList, UtcTimestamp

revision = "002"
down_revision = "001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("family", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column(
            "state", sa.Text(), sa.CheckConstraint("state IN ('open', 'acknowledged', 'resolved')"), nullable=False
        ),
        sa.Column("severity", sa.Text(), sa.CheckConstraint("severity IN ('warning', 'critical')"), nullable=False),
        sa.Column("model_version", sa.Text()),
        sa.Column("segments", SegmentList(), server_default="[]", nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_breach_day", sa.Date(), nullable=False),
        sa.Column("closed_day", sa.Date()),
        sa.Column("value", sa.DOUBLE_PRECISION()),
        sa.Column("threshold", sa.DOUBLE_PRECISION()),
        sa.Column("direction", sa.Text(), sa.CheckConstraint("direction IN ('max', 'min')")),
        sa.Column("opened_at", UtcTimestamp(), nullable=False),
        sa.Column("escalated_at", UtcTimestamp()),
        sa.Column("acknowledged_at", UtcTimestamp()),
        sa.Column("acknowledged_by", sa.Text()),
        sa.Column("resolved_at", UtcTimestamp()),
        sa.Column("resolved_by", sa.Text()),
        sa.Column("resolution", sa.Text(), sa.CheckConstraint("resolution IN ('auto', 'manual')")),
        sa.Column("updated_at", UtcTimestamp(), nullable=False),
    )
    not_resolved = sa.text("state != 'resolved'")
    op.create_index(
        "uq_incidents_one_open",
        "incidents",
        ["model", "family", "metric"],
        unique=True,
        sqlite_where=not_resolved,
        postgresql_where=not_resolved,
    )
    op.create_index("ix_incidents_model", "incidents", ["model", "family", "metric", "first_day"])
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("incident_id", sa.Text(), sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column(
            "kind",
            sa.Text(),
            sa.CheckConstraint("kind IN ('opened', 'attached', 'escalated', 'notified', 'acknowledged', 'resolved')"),
            nullable=False,
        ),
        sa.Column("day", sa.Date()),
        sa.Column("severity", sa.Text(), sa.CheckConstraint("severity IN ('ok', 'warning', 'critical')")),
        sa.Column("value", sa.DOUBLE_PRECISION()),
        sa.Column("threshold", sa.DOUBLE_PRECISION()),
        sa.Column("segments", SegmentList()),
        sa.Column("actor", sa.Text()),
        sa.Column("note", sa.Text()),
        sa.Column("run_id", sa.Text()),
        sa.Column("at", UtcTimestamp(), nullable=False),
        sa.UniqueConstraint("incident_id", "seq", name="uq_incident_events_seq"),
    )
    attaching = sa.text("kind IN ('opened', 'attached')")
    op.create_index(
        "uq_incident_events_day",
        "incident_events",
        ["incident_id", "day"],
        unique=True,
        sqlite_where=attaching,
        postgresql_where=attaching,
    )
    op.create_index("ix_incident_events_model", "incident_events", ["model", "at"])


def downgrade() -> None:
    op.drop_table("incident_events")
    op.drop_table("incidents")
