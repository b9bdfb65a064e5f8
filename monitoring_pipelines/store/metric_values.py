"""Repository of ``metric_values``: judged figures per model, day, family, metric and segment.

Functions take an open ``Connection``; ``MetricStore`` opens the transactions (and locks) around them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pandas as pd
from sqlalchemy import Connection, delete, insert, select

from monitoring_pipelines.store.frames import frame
from monitoring_pipelines.store.tables import DIRECTIONS, STATUSES, metric_values

METRIC_COLUMNS = tuple(c.name for c in metric_values.columns)

# The stored figure that says a day's blocking quality checks failed (the quality family's metric
# ``blocking_failed_checks``: a test pins the two names together). A blocked day's data is not evidence.
BLOCKING_FAMILY = "quality"
BLOCKING_METRIC = "blocking_failed_checks"


@dataclass(frozen=True)
class MetricRow:
    """One judged metric value of one model and day, as stored in ``metric_values``."""

    model: str
    model_version: str | None
    alias: str | None
    partition_date: dt.date
    family: str
    metric: str
    segment: str
    value: float | None
    warning_threshold: float | None
    critical_threshold: float | None
    direction: str | None
    status: str
    run_id: str
    computed_at: dt.datetime  # tz-aware; stored in UTC


def plain(value: Any) -> Any:
    """``Family.DRIFT`` -> ``'drift'``: drivers must see the value, not the enum."""
    return value.value if isinstance(value, Enum) else value


def version_text(value: Any) -> str | None:
    # MLflow versions come as int from a direct store and as str over REST; store text either way.
    return None if value is None else str(value)


def number(value: Any) -> float | None:
    """A figure to store: NaN becomes NULL (PostgreSQL would keep a 'NaN' that NULL-aware queries miss)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def validated(
    model: str, day: dt.date, families: Sequence[str], rows: Sequence[MetricRow]
) -> tuple[list[str], list[dict[str, Any]]]:
    """(family names, one insert parameter set per row), or ``ValueError`` naming the first row that does not
    belong to ``model`` / ``day`` / ``families`` or holds a value the table refuses."""
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise ValueError(f"replace_rows({model!r}): partition_date must be a datetime.date, got {day!r}")
    names = [plain(f) for f in families]
    return names, [_row_params(i, row, model, day, names) for i, row in enumerate(rows)]


def _row_params(index: int, row: MetricRow, model: str, day: dt.date, families: list[str]) -> dict[str, Any]:
    family, status, direction = plain(row.family), plain(row.status), plain(row.direction)
    where = f"row {index} ({family}.{row.metric} segment={row.segment!r} of {row.model} on {row.partition_date})"
    if row.model != model:
        raise ValueError(f"replace_rows: {where} belongs to model {row.model!r}, not {model!r}")
    if isinstance(row.partition_date, dt.datetime) or row.partition_date != day:
        raise ValueError(f"replace_rows: {where} is not for day {day.isoformat()}")
    if family not in families:
        raise ValueError(f"replace_rows: {where} has family {family!r}, not one of the families replaced {families}")
    if status not in STATUSES:
        raise ValueError(f"replace_rows: {where} has status {status!r}, not one of {STATUSES}")
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"replace_rows: {where} has direction {direction!r}, not one of {DIRECTIONS}")
    if row.segment is None:
        raise ValueError(f"replace_rows: {where} has segment None; use '' when there is no segment")
    if not isinstance(row.computed_at, dt.datetime) or row.computed_at.utcoffset() is None:
        raise ValueError(f"replace_rows: {where} needs a timezone-aware computed_at, got {row.computed_at!r}")
    return {
        "model": model,
        "model_version": version_text(row.model_version),
        "alias": row.alias,
        "partition_date": day,
        "family": family,
        "metric": row.metric,
        "segment": row.segment,
        "value": number(row.value),
        "warning_threshold": number(row.warning_threshold),
        "critical_threshold": number(row.critical_threshold),
        "direction": direction,
        "status": status,
        "run_id": row.run_id,
        "computed_at": row.computed_at,
    }


def replace(conn: Connection, model: str, day: dt.date, families: Sequence[str], params: list[dict]) -> None:
    """Delete the rows of ``model`` on ``day`` of ``families``, then insert ``params`` (from ``validated``)."""
    t = metric_values
    conn.execute(delete(t).where(t.c.model == model, t.c.partition_date == day, t.c.family.in_(families)))
    if params:
        conn.execute(insert(t), params)


def select_rows(
    conn: Connection,
    model: str,
    *,
    family: str | None = None,
    metric: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """Rows of ``model`` (``start``/``end`` inclusive), ordered by day, family, metric, segment."""
    t = metric_values
    query = select(*t.columns).where(t.c.model == model)
    if family is not None:
        query = query.where(t.c.family == plain(family))
    if metric is not None:
        query = query.where(t.c.metric == plain(metric))
    if start is not None:
        query = query.where(t.c.partition_date >= start)
    if end is not None:
        query = query.where(t.c.partition_date <= end)
    query = query.order_by(t.c.partition_date, t.c.family, t.c.metric, t.c.segment)
    return frame(conn.execute(query), list(t.columns))


def blocked_days(
    conn: Connection, model: str, *, start: dt.date | None = None, end: dt.date | None = None
) -> set[dt.date]:
    """Days of ``model`` (``start``/``end`` inclusive) whose stored blocking quality checks failed (a stored
    ``quality.blocking_failed_checks`` above 0; a NULL figure does not block)."""
    t = metric_values
    query = select(t.c.partition_date).where(
        t.c.model == model, t.c.family == BLOCKING_FAMILY, t.c.metric == BLOCKING_METRIC, t.c.value > 0
    )
    if start is not None:
        query = query.where(t.c.partition_date >= start)
    if end is not None:
        query = query.where(t.c.partition_date <= end)
    return set(conn.scalars(query))


def statuses(conn: Connection, model: str, family: str, metric: str) -> list[tuple[dt.date, str]]:
    """(day, status) of every stored segment of one metric of ``model``, in no particular order."""
    t = metric_values
    query = select(t.c.partition_date, t.c.status).where(t.c.model == model, t.c.family == family, t.c.metric == metric)
    return [(day, status) for day, status in conn.execute(query)]


def delete_model(conn: Connection, model: str) -> None:
    conn.execute(delete(metric_values).where(metric_values.c.model == model))
