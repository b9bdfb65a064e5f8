"""005: dashboard views over the incidents of revision 002, one ``sql/views/005_*.sql`` each.

Revision ID: 005
Revises: 004
"""

from monitoring_pipelines.store.schema import create_views, drop_views

revision = "005"
down_revision = "004"
branch_labels = None
depends_on = None

VIEWS = ("005_open_incidents", "005_incident_timeline")


def upgrade() -> None:
    create_views(VIEWS)


def downgrade() -> None:
    drop_views(VIEWS)
