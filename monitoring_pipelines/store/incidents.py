"""Repository of the incident tables: ``incidents``, their timeline ``incident_events``, and the notification
``notification_outbox`` with its ``notification_attempts``.

Functions take an open ``Connection``: the incident tracker and the outbox run several of them in one
``MetricStore.write`` transaction (locked per model for incidents).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, and_, delete, exists, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitoring_pipelines.store.frames import frame
from monitoring_pipelines.store.tables import (
    UtcTimestamp,
    incident_events,
    incidents,
    notification_attempts,
    notification_outbox,
)

INCIDENT_COLUMNS = tuple(c.name for c in incidents.columns)
EVENT_COLUMNS = tuple(c.name for c in incident_events.columns)
# every column but the delivery lease, which only the outbox itself reads
OUTBOX_COLUMNS = tuple(c.name for c in notification_outbox.columns if c.name != "locked_until")
ATTACHING_KINDS = ("opened", "attached")
SENT_KINDS = ("opened", "escalated", "resolved")

# -- incidents -------------------------------------------------------------------------------------------------


def incidents_of_metric(conn: Connection, model: str, family: str, metric: str) -> list[Row]:
    """The incidents of one (model, family, metric), by first day: id, state, severity, segments, first_day,
    last_breach_day, closed_day, opened_at, model_version."""
    t = incidents
    query = (
        select(
            t.c.id,
            t.c.state,
            t.c.severity,
            t.c.segments,
            t.c.first_day,
            t.c.last_breach_day,
            t.c.closed_day,
            t.c.opened_at,
            t.c.model_version,
        )
        .where(t.c.model == model, t.c.family == family, t.c.metric == metric)
        .order_by(t.c.first_day)
    )
    return list(conn.execute(query))


def insert_incident(conn: Connection, **values: Any) -> None:
    conn.execute(insert(incidents).values(**values))


def update_incident(conn: Connection, incident_id: str, **values: Any) -> None:
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


def acknowledge(conn: Connection, incident_id: str, *, actor: str, now: dt.datetime) -> None:
    """Mark acknowledged; the first acknowledgement's time and person are kept."""
    t = incidents
    conn.execute(
        update(t)
        .where(t.c.id == incident_id)
        .values(
            state="acknowledged",
            acknowledged_at=func.coalesce(t.c.acknowledged_at, literal(now, UtcTimestamp)),
            acknowledged_by=func.coalesce(t.c.acknowledged_by, actor),
            updated_at=now,
        )
    )


def resolve_manually(conn: Connection, incident_id: str, *, actor: str, now: dt.datetime) -> None:
    """Resolved by a person: its days end with its last breached day."""
    t = incidents
    conn.execute(
        update(t)
        .where(t.c.id == incident_id)
        .values(
            state="resolved",
            closed_day=t.c.last_breach_day,
            resolved_at=now,
            resolved_by=actor,
            resolution="manual",
            updated_at=now,
        )
    )


def incident(conn: Connection, incident_id: str) -> dict[str, Any] | None:
    """One incident as a dict of its columns (the dtypes of ``select_incidents``), or None."""
    t = incidents
    found = frame(conn.execute(select(*t.columns).where(t.c.id == incident_id)), list(t.columns))
    return None if found.empty else found.iloc[0].to_dict()


def select_incidents(conn: Connection, model: str, *, states: Sequence[str] | None = None) -> pd.DataFrame:
    """The incidents of ``model`` (``states``: only those), by first day, family, metric, opening time."""
    t = incidents
    query = select(*t.columns).where(t.c.model == model)
    if states:
        query = query.where(t.c.state.in_(states))
    query = query.order_by(t.c.first_day, t.c.family, t.c.metric, t.c.opened_at)
    return frame(conn.execute(query), list(t.columns))


def delete_incidents_of_model(conn: Connection, model: str) -> None:
    conn.execute(delete(incident_events).where(incident_events.c.model == model))
    conn.execute(delete(incidents).where(incidents.c.model == model))


# -- the timeline ----------------------------------------------------------------------------------------------


def add_event(conn: Connection, *, incident_id: str, **values: Any) -> None:
    """Append an event to the timeline of ``incident_id`` (``seq``: the next number of that incident)."""
    e = incident_events
    seq = conn.execute(select(func.coalesce(func.max(e.c.seq), 0) + 1).where(e.c.incident_id == incident_id))
    conn.execute(insert(e).values(id=uuid.uuid4().hex, incident_id=incident_id, seq=seq.scalar_one(), **values))


def day_attached(conn: Connection, incident_id: str, day: dt.date) -> bool:
    """Whether ``day`` already opened or attached to ``incident_id``."""
    e = incident_events
    query = select(func.count()).where(e.c.incident_id == incident_id, e.c.day == day, e.c.kind.in_(ATTACHING_KINDS))
    return bool(conn.execute(query).scalar_one())


def select_timeline(conn: Connection, incident_id: str) -> pd.DataFrame:
    """The events of ``incident_id`` in order (``seq``)."""
    e = incident_events
    query = select(*e.columns).where(e.c.incident_id == incident_id).order_by(e.c.seq)
    return frame(conn.execute(query), list(e.columns))


def unsent_events(conn: Connection, model: str, *, resolved_since: dt.datetime) -> list[Row]:
    """Opened / escalated / resolved events of ``model`` that have no outbox row for their incident and kind, of
    incidents not resolved or resolved since ``resolved_since``, by time. Columns: incident_id, kind, day,
    severity, value, threshold, segments, at, family, metric, model_version, direction, opened_at."""
    e, i, o = incident_events, incidents, notification_outbox
    queued = exists().where(o.c.incident_id == e.c.incident_id, o.c.state == e.c.kind)
    query = (
        select(
            e.c.incident_id,
            e.c.kind,
            e.c.day,
            e.c.severity,
            e.c.value,
            e.c.threshold,
            e.c.segments,
            e.c.at,
            i.c.family,
            i.c.metric,
            i.c.model_version,
            i.c.direction,
            i.c.opened_at,
        )
        .join(i, i.c.id == e.c.incident_id)
        .where(
            e.c.model == model,
            e.c.kind.in_(SENT_KINDS),
            (i.c.state != "resolved") | (i.c.resolved_at >= resolved_since),
            ~queued,
        )
        .order_by(e.c.at)
    )
    return list(conn.execute(query))


# -- the outbox ------------------------------------------------------------------------------------------------


def enqueue(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert ``rows`` unless their (incident_id, state, channel_name) exists; return the id of each key's row
    (new or existing), in order, once each."""
    o = notification_outbox
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    ids: list[str] = []
    for row in rows:
        conn.execute(
            dialect_insert(o)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["incident_id", "state", "channel_name"])
        )
        row_id = conn.execute(
            select(o.c.id).where(
                o.c.incident_id == row["incident_id"],
                o.c.state == row["state"],
                o.c.channel_name == row["channel_name"],
            )
        ).scalar_one()
        if row_id not in ids:
            ids.append(row_id)
    return ids


def channels_told(conn: Connection, incident_id: str) -> set[str]:
    """Channels that have a notification of ``incident_id`` opening or escalating (whatever its status)."""
    o = notification_outbox
    query = select(o.c.channel_name).distinct().where(o.c.incident_id == incident_id, o.c.state != "resolved")
    return set(conn.scalars(query))


def outbox_rows(
    conn: Connection, model: str, *, status: str | None = None, incident_id: str | None = None
) -> list[Row]:
    """The outbox rows of ``model`` (columns ``OUTBOX_COLUMNS``), oldest first."""
    o = notification_outbox
    query = select(*(o.c[name] for name in OUTBOX_COLUMNS)).where(o.c.model == model)
    if status is not None:
        query = query.where(o.c.status == status)
    if incident_id is not None:
        query = query.where(o.c.incident_id == incident_id)
    return list(conn.execute(query.order_by(o.c.created_at, o.c.id)))


def attempts(conn: Connection, outbox_id: str) -> list[Row]:
    """(attempt, attempted_at, outcome, error) of one notification, in order."""
    a = notification_attempts
    query = select(a.c.attempt, a.c.attempted_at, a.c.outcome, a.c.error).where(a.c.outbox_id == outbox_id)
    return list(conn.execute(query.order_by(a.c.attempt)))


def claim(conn: Connection, outbox_id: str, *, now: dt.datetime, until: dt.datetime, due: dt.datetime) -> bool:
    """Take the delivery lease of a pending row that is due (``next_attempt_at`` <= ``due``) and not leased by
    another process; False when it cannot be taken."""
    o = notification_outbox
    result = conn.execute(
        update(o)
        .where(
            o.c.id == outbox_id,
            o.c.status == "pending",
            o.c.locked_until.is_(None) | (o.c.locked_until < now),
            o.c.next_attempt_at.is_(None) | (o.c.next_attempt_at <= due),
        )
        .values(locked_until=until)
    )
    return result.rowcount == 1


def record_attempt(
    conn: Connection,
    outbox_id: str,
    *,
    attempt: int,
    outcome: str,
    status: str,
    error: str | None,
    at: dt.datetime,
    next_attempt_at: dt.datetime | None,
    keep_lease: bool,
) -> None:
    """Write one attempt and the row's new state. The attempt is numbered from the table, not only from the
    caller's copy of the row: another process may have attempted the same notification since that copy was
    read (its attempt is kept, ours follows it)."""
    a, o = notification_attempts, notification_outbox
    latest = conn.execute(select(func.coalesce(func.max(a.c.attempt), 0) + 1).where(a.c.outbox_id == outbox_id))
    attempt = max(attempt, latest.scalar_one())
    conn.execute(insert(a).values(outbox_id=outbox_id, attempt=attempt, attempted_at=at, outcome=outcome, error=error))
    values: dict[str, Any] = {
        "status": status,
        "attempts": attempt,
        "last_attempt_at": at,
        "next_attempt_at": next_attempt_at,
        "delivered_at": at if outcome == "delivered" else None,
    }
    if error is not None:  # the latest failure stays on the row, also once delivered
        values["last_error"] = error
    if not keep_lease:
        values["locked_until"] = None
    conn.execute(update(o).where(o.c.id == outbox_id).values(**values))


def release(conn: Connection, outbox_id: str) -> None:
    o = notification_outbox
    conn.execute(update(o).where(o.c.id == outbox_id).values(locked_until=None))


def requeue(
    conn: Connection, model: str, *, now: dt.datetime, channel: str | None = None, ids: Sequence[str] | None = None
) -> int:
    """Put ``config_error`` rows of ``model`` (optionally one channel / some ids) back to pending, due ``now``;
    return how many."""
    o = notification_outbox
    where = [o.c.model == model, o.c.status == "config_error"]
    if channel is not None:
        where.append(o.c.channel_name == channel)
    if ids is not None:
        where.append(o.c.id.in_(ids))
    result = conn.execute(
        update(o).where(and_(*where)).values(status="pending", next_attempt_at=now, locked_until=None)
    )
    return result.rowcount


def delete_outbox_of_model(conn: Connection, model: str) -> None:
    o, a = notification_outbox, notification_attempts
    conn.execute(delete(a).where(a.c.outbox_id.in_(select(o.c.id).where(o.c.model == model))))
    conn.execute(delete(o).where(o.c.model == model))
