"""004: read-only views for dashboards (Grafana) and the Prometheus exporter, one ``sql/views/004_*.sql`` each.

Revision ID: 004
Revises: 003
"""

from monitoring_pipelines.store.schema import create_views, drop_views

revision = "004"
down_revision = "003"
branch_labels = None
depends_on = None

# in dependency order: latest_family_status reads family_status_by_day
VIEWS = (
    "004_latest_metric_values",
    "004_family_status_by_day",
    "004_latest_family_status",
    "004_metric_history",
    "004_recent_actions",
)


def upgrade() -> None:
    create_views(VIEWS)


def downgrade() -> None:
    drop_views(VIEWS)
