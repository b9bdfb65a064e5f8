"""The notification outbox of the metric store, for the delivery layer: one row per (incident state change,
channel) and one per delivery attempt (tables ``notification_outbox`` / ``notification_attempts``).

The statements are the store's incident repository (``store/incidents.py``); each function here is one
``MetricStore`` transaction (BEGIN IMMEDIATE on SQLite; errors as ``StoreError`` naming the store without its
password), so both backends behave alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monitoring_pipelines.store import incidents as repo
from monitoring_pipelines.store.incidents import OUTBOX_COLUMNS
from monitoring_pipelines.store.metric_store import MetricStore
from monitoring_pipelines.store.tables import OUTBOX_STATUSES, iso_timestamp

__all__ = ["OUTBOX_COLUMNS", "OUTBOX_STATUSES"]  # re-exported: the columns and statuses of the table
_STATUS_AFTER = {"delivered": "delivered", "retry": "pending", "config_error": "config_error"}


@dataclass(frozen=True)
class OutboxRow:
    """One notification: an incident state change for one channel, and how its delivery went."""

    id: str
    model: str
    incident_id: str
    state: str
    severity: str
    family: str
    metric: str
    segment: str
    partition_date: dt.date
    channel_name: str
    channel_type: str
    payload: str  # JSON text, no secrets
    status: str
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    last_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


def iso(moment: dt.datetime | None) -> str | None:
    """The store's text of a moment (fixed-width UTC ISO-8601), None for None."""
    return iso_timestamp(moment) if moment else None


def insert(store: MetricStore, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert rows unless their (incident_id, state, channel_name) exists; return the id of each key's row
    (new or existing), in order, once each. ``partition_date`` and ``created_at`` may be given as ISO text."""
    if not rows:
        return []
    values = [
        {
            **row,
            "partition_date": _day(row["partition_date"]),
            "created_at": _moment(row["created_at"]),
        }
        for row in rows
    ]
    with store.write(f"enqueueing {len(rows)} notification(s) of {rows[0]['model']}") as conn:
        return repo.enqueue(conn, values)


def channels_told(store: MetricStore, incident_id: str) -> set[str]:
    """Channels that have a notification of ``incident_id`` opening or escalating (whatever its status)."""
    with store.read(f"reading notifications of incident {incident_id}") as conn:
        return repo.channels_told(conn, incident_id)


def read(
    store: MetricStore, model: str, *, status: str | None = None, incident_id: str | None = None
) -> list[OutboxRow]:
    """The outbox rows of ``model``, oldest first."""
    with store.read(f"reading the notification outbox of {model}") as conn:
        found = repo.outbox_rows(conn, model, status=status, incident_id=incident_id)
    return [OutboxRow(**r._asdict()) for r in found]


def attempts(store: MetricStore, outbox_id: str) -> list[tuple[int, dt.datetime, str, str | None]]:
    """(attempt, attempted_at, outcome, error) of one notification, in order."""
    with store.read(f"reading the attempts of notification {outbox_id}") as conn:
        return [tuple(r) for r in repo.attempts(conn, outbox_id)]


def claim(
    store: MetricStore, outbox_id: str, *, now: dt.datetime, until: dt.datetime, due: dt.datetime | None = None
) -> bool:
    """Take the delivery lease of a pending row that is due (``next_attempt_at`` <= ``due``, default ``now``);
    False when another process holds it, retried it meanwhile (not due again yet) or it is no longer pending."""
    with store.write(f"claiming notification {outbox_id}") as conn:
        return repo.claim(conn, outbox_id, now=now, until=until, due=due or now)


def record_attempt(
    store: MetricStore,
    row: OutboxRow,
    *,
    attempt: int,
    outcome: str,
    error: str | None,
    at: dt.datetime,
    next_attempt_at: dt.datetime | None,
    keep_lease: bool,
) -> None:
    """Write one attempt and the row's new state in one transaction."""
    with store.write(f"recording attempt {attempt} of notification {row.id}") as conn:
        repo.record_attempt(
            conn,
            row.id,
            attempt=attempt,
            outcome=outcome,
            status=_STATUS_AFTER[outcome],
            error=error,
            at=at,
            next_attempt_at=next_attempt_at,
            keep_lease=keep_lease,
        )


def release(store: MetricStore, outbox_id: str) -> None:
    with store.write(f"releasing notification {outbox_id}") as conn:
        repo.release(conn, outbox_id)


def requeue(
    store: MetricStore, model: str, *, channel: str | None = None, ids: Sequence[str] | None = None, now: dt.datetime
) -> int:
    """Put ``config_error`` rows of ``model`` (optionally one channel / some ids) back to pending, due now."""
    if ids is not None and not ids:
        return 0
    with store.write(f"re-queueing notifications of {model}") as conn:
        return repo.requeue(conn, model, now=now, channel=channel, ids=ids)


def delete_model(store: MetricStore, model: str) -> None:
    """Remove every notification (and its attempts) of ``model`` in one transaction (e.g. to reset the demo)."""
    with store.write(f"deleting notifications of {model}") as conn:
        repo.delete_outbox_of_model(conn, model)


def _day(value: dt.date | str) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _moment(value: dt.datetime | str) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
