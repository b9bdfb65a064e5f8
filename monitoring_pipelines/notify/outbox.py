"""The outbox tables (sql/003_notifications.sql) in the metric store's database, SQLite or PostgreSQL.

Written with the store's own transaction helper (``MetricStore._write``: BEGIN IMMEDIATE on SQLite, errors as
``StoreError`` naming the store without its password) so both backends behave alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from monitoring_pipelines.store.metric_store import MetricStore

OUTBOX_COLUMNS = (
    "id",
    "model",
    "incident_id",
    "state",
    "severity",
    "family",
    "metric",
    "segment",
    "partition_date",
    "channel_name",
    "channel_type",
    "payload",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "last_attempt_at",
    "next_attempt_at",
    "delivered_at",
)
OUTBOX_STATUSES = ("pending", "delivered", "config_error")


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
    # the store's format: fixed-width UTC text, sorts as text on SQLite, parses as timestamptz on PostgreSQL
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds") if moment else None


def _ts(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    return moment.astimezone(dt.UTC)


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _row(values: tuple) -> OutboxRow:
    r = dict(zip(OUTBOX_COLUMNS, values))
    for c in ("created_at", "last_attempt_at", "next_attempt_at", "delivered_at"):
        r[c] = _ts(r[c])
    r["partition_date"] = _day(r["partition_date"])
    r["attempts"] = int(r["attempts"])
    return OutboxRow(**r)


_SELECT = f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM notification_outbox"


def insert(store: MetricStore, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert rows unless their (incident_id, state, channel_name) exists; return the id of each key's row
    (new or existing), in order, once each."""
    ids: list[str] = []
    if not rows:
        return ids
    columns = list(rows[0])
    sql = (
        f"INSERT INTO notification_outbox ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
        "ON CONFLICT (incident_id, state, channel_name) DO NOTHING"
    )
    with store._write(f"enqueueing {len(rows)} notification(s) of {rows[0]['model']}") as conn:
        for row in rows:
            conn.execute(text(sql), row)
            (row_id,) = conn.execute(
                text("SELECT id FROM notification_outbox WHERE incident_id = :i AND state = :s AND channel_name = :c"),
                {"i": row["incident_id"], "s": row["state"], "c": row["channel_name"]},
            ).one()
            if row_id not in ids:
                ids.append(row_id)
    return ids


def channels_told(store: MetricStore, incident_id: str) -> set[str]:
    """Channels that have a notification of ``incident_id`` opening or escalating (whatever its status)."""
    rows = store._read(
        f"reading notifications of incident {incident_id}",
        "SELECT DISTINCT channel_name FROM notification_outbox WHERE incident_id = :i AND state <> 'resolved'",
        {"i": incident_id},
    )
    return {name for (name,) in rows}


def read(
    store: MetricStore, model: str, *, status: str | None = None, incident_id: str | None = None
) -> list[OutboxRow]:
    """The outbox rows of ``model``, oldest first."""
    sql, params = f"{_SELECT} WHERE model = :m", {"m": model}
    if status is not None:
        sql, params["s"] = sql + " AND status = :s", status
    if incident_id is not None:
        sql, params["i"] = sql + " AND incident_id = :i", incident_id
    return [
        _row(r)
        for r in store._read(f"reading the notification outbox of {model}", sql + " ORDER BY created_at, id", params)
    ]


def attempts(store: MetricStore, outbox_id: str) -> list[tuple[int, dt.datetime, str, str | None]]:
    """(attempt, attempted_at, outcome, error) of one notification, in order."""
    rows = store._read(
        f"reading the attempts of notification {outbox_id}",
        "SELECT attempt, attempted_at, outcome, error FROM notification_attempts WHERE outbox_id = :o ORDER BY attempt",
        {"o": outbox_id},
    )
    return [(int(a), _ts(at), outcome, error) for a, at, outcome, error in rows]


def claim(
    store: MetricStore, outbox_id: str, *, now: dt.datetime, until: dt.datetime, due: dt.datetime | None = None
) -> bool:
    """Take the delivery lease of a pending row that is due (``next_attempt_at`` <= ``due``, default ``now``);
    False when another process holds it, retried it meanwhile (not due again yet) or it is no longer pending."""
    with store._write(f"claiming notification {outbox_id}") as conn:
        result = conn.execute(
            text(
                "UPDATE notification_outbox SET locked_until = :until WHERE id = :id AND status = 'pending' "
                "AND (locked_until IS NULL OR locked_until < :now) "
                "AND (next_attempt_at IS NULL OR next_attempt_at <= :due)"
            ),
            {"until": iso(until), "now": iso(now), "due": iso(due or now), "id": outbox_id},
        )
        return result.rowcount == 1


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
    status = {"delivered": "delivered", "retry": "pending", "config_error": "config_error"}[outcome]
    with store._write(f"recording attempt {attempt} of notification {row.id}") as conn:
        # numbered from the table, not from the caller's copy of the row: another process may have attempted the
        # same notification since that copy was read (its attempt is kept, ours follows it)
        attempt = max(
            attempt,
            conn.execute(
                text("SELECT COALESCE(MAX(attempt), 0) + 1 FROM notification_attempts WHERE outbox_id = :o"),
                {"o": row.id},
            ).scalar_one(),
        )
        conn.execute(
            text(
                "INSERT INTO notification_attempts (outbox_id, attempt, attempted_at, outcome, error) "
                "VALUES (:o, :a, :at, :outcome, :error)"
            ),
            {"o": row.id, "a": attempt, "at": iso(at), "outcome": outcome, "error": error},
        )
        conn.execute(
            text(
                "UPDATE notification_outbox SET status = :status, attempts = :a, "
                "last_error = COALESCE(:error, last_error), last_attempt_at = :at, next_attempt_at = :next, "
                "delivered_at = :delivered, locked_until = CASE WHEN :keep = 1 THEN locked_until END "
                "WHERE id = :id"
            ),
            {
                "status": status,
                "a": attempt,
                "error": error,
                "at": iso(at),
                "next": iso(next_attempt_at),
                "delivered": iso(at) if outcome == "delivered" else None,
                "keep": int(keep_lease),
                "id": row.id,
            },
        )


def release(store: MetricStore, outbox_id: str) -> None:
    with store._write(f"releasing notification {outbox_id}") as conn:
        conn.execute(text("UPDATE notification_outbox SET locked_until = NULL WHERE id = :id"), {"id": outbox_id})


def requeue(
    store: MetricStore, model: str, *, channel: str | None = None, ids: Sequence[str] | None = None, now: dt.datetime
) -> int:
    """Put ``config_error`` rows of ``model`` (optionally one channel / some ids) back to pending, due now."""
    sql = (
        "UPDATE notification_outbox SET status = 'pending', next_attempt_at = :now, locked_until = NULL "
        "WHERE model = :m AND status = 'config_error'"
    )
    params: dict[str, Any] = {"m": model, "now": iso(now)}
    if channel is not None:
        sql, params["c"] = sql + " AND channel_name = :c", channel
    if ids is not None:
        if not ids:
            return 0
        sql += f" AND id IN ({', '.join(f':id{i}' for i in range(len(ids)))})"
        params.update({f"id{i}": v for i, v in enumerate(ids)})
    with store._write(f"re-queueing notifications of {model}") as conn:
        return conn.execute(text(sql), params).rowcount


def delete_model(store: MetricStore, model: str) -> None:
    """Remove every notification (and its attempts) of ``model`` in one transaction (e.g. to reset the demo)."""
    with store._write(f"deleting notifications of {model}") as conn:
        conn.execute(
            text(
                "DELETE FROM notification_attempts WHERE outbox_id IN "
                "(SELECT id FROM notification_outbox WHERE model = :m)"
            ),
            {"m": model},
        )
        conn.execute(text("DELETE FROM notification_outbox WHERE model = :m"), {"m": model})
