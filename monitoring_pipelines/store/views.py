"""Reads of the dashboard views (``sql/views/``) that the package itself uses: the Prometheus exporter's."""

from __future__ import annotations

from sqlalchemy import Connection, column, select, table

latest_metric_values = table(
    "latest_metric_values",
    column("model"),
    column("model_version"),
    column("family"),
    column("metric"),
    column("segment"),
    column("partition_date"),
    column("status"),
    column("latest_value"),
)
latest_family_status = table("latest_family_status", column("model"), column("family"), column("status"))


def latest_values(conn: Connection) -> list[tuple]:
    """(model, model_version, family, metric, segment, partition_date, status, latest_value) per metric."""
    v = latest_metric_values
    query = select(*v.c).order_by(v.c.model, v.c.family, v.c.metric, v.c.segment)
    return [tuple(r) for r in conn.execute(query)]


def latest_family_statuses(conn: Connection) -> list[tuple]:
    """(model, family, status) of each model's latest day."""
    v = latest_family_status
    return [tuple(r) for r in conn.execute(select(*v.c).order_by(v.c.model, v.c.family))]
