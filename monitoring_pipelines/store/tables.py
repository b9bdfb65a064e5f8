"""The metric store's tables as SQLAlchemy ``Table`` objects: the one definition the repositories query and the
migrations are checked against (``monitoring_pipelines/store/migrations``; a test compares the two).

Portable choices, identical on SQLite (3.35+) and PostgreSQL 15:

* TEXT for names and ids; ids are uuid4 hex strings made in Python (no auto-increment, which differs per
  backend). DOUBLE PRECISION for figures.
* Days are ``DATE``; moments ``TIMESTAMP WITH TIME ZONE`` (``UtcTimestamp``). SQLite has neither type: it keeps
  the ISO-8601 text the store writes (``2026-11-20``, ``2026-11-20T02:00:00.000000+00:00``: UTC, fixed width),
  which sorts and compares correctly as text. Both backends are given that same text and read back
  ``datetime.date`` / tz-aware UTC ``datetime``, so callers see the same values everywhere.
* Times are set by Python (UTC), never by database defaults, whose types and formats differ per backend.
* The allowed values of a status column are CHECK constraints built from the tuples below.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import (
    DOUBLE_PRECISION,
    TIMESTAMP,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

STATUSES = ("ok", "warning", "critical", "unknown")
DIRECTIONS = ("max", "min")
ACTIONS = ("retrain", "promote", "rollback")
ACTION_STATUSES = ("requested", "pending_approval", "succeeded", "refused", "failed")
INCIDENT_STATES = ("open", "acknowledged", "resolved")
INCIDENT_SEVERITIES = ("warning", "critical")
EVENT_KINDS = ("opened", "attached", "escalated", "notified", "acknowledged", "resolved")
EVENT_SEVERITIES = ("ok", "warning", "critical")
OUTBOX_STATES = ("opened", "escalated", "resolved")
OUTBOX_SEVERITIES = ("warning", "critical", "ok")
CHANNEL_TYPES = ("slack", "webhook", "email", "pagerduty")
OUTBOX_STATUSES = ("pending", "delivered", "config_error")
ATTEMPT_OUTCOMES = ("delivered", "retry", "config_error")


def iso_timestamp(moment: dt.datetime) -> str:
    """The stored text of a moment: fixed-width UTC ISO-8601 (sorts as SQLite text, parses as timestamptz)."""
    if moment.utcoffset() is None:
        raise ValueError(f"metric store: timestamps must be timezone-aware, got {moment!r}")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


class _TimestampText(UserDefinedType):
    """SQLite's column type for moments: declared as on PostgreSQL, holding the text ``UtcTimestamp`` binds."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "TIMESTAMP WITH TIME ZONE"


class UtcTimestamp(TypeDecorator):
    """``TIMESTAMP WITH TIME ZONE``: binds a tz-aware ``datetime`` as fixed-width UTC ISO text on both backends
    (PostgreSQL parses it; SQLite keeps it) and reads back a tz-aware UTC ``datetime``."""

    impl = TIMESTAMP(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine:
        # SQLAlchemy's own SQLite DATETIME would store its naive "YYYY-MM-DD HH:MM:SS" format instead
        return dialect.type_descriptor(_TimestampText() if dialect.name == "sqlite" else TIMESTAMP(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> str | None:
        return None if value is None else iso_timestamp(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        return moment.astimezone(dt.UTC)


class SegmentList(TypeDecorator):
    """A JSON list of segment names in a TEXT column, written sorted; NULL reads back as an empty list."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(sorted(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> list[str]:
        return json.loads(value) if value else []


def _one_of(name: str, allowed: tuple[str, ...]) -> CheckConstraint:
    # written out as DDL text: a column-level CHECK takes no column expression
    return CheckConstraint(f"{name} IN ({', '.join(repr(v) for v in allowed)})")


metadata = MetaData()

# One judged figure per (model, day, family, metric, segment). A re-run of a day replaces that day's rows of the
# re-computed families (MetricStore.replace_rows), hence the unique key has no run_id.
metric_values = Table(
    "metric_values",
    metadata,
    Column("model", Text, nullable=False),
    Column("model_version", Text),  # registry version that served the day, when known
    Column("alias", Text),  # e.g. 'champion'
    Column("partition_date", Date, nullable=False),
    Column("family", Text, nullable=False),
    Column("metric", Text, nullable=False),
    # '' when the figure is not per feature or group: NULL would defeat the unique key
    Column("segment", Text, nullable=False, server_default=""),
    Column("value", DOUBLE_PRECISION),  # NULL when the figure could not be computed (NaN is stored as NULL)
    Column("warning_threshold", DOUBLE_PRECISION),
    Column("critical_threshold", DOUBLE_PRECISION),
    Column("direction", Text, _one_of("direction", DIRECTIONS)),
    Column("status", Text, _one_of("status", STATUSES), nullable=False),
    Column("run_id", Text, nullable=False),  # the Dagster run that computed the row
    Column("computed_at", UtcTimestamp, nullable=False),
    UniqueConstraint("model", "partition_date", "family", "metric", "segment", name="uq_metric_values"),
)
# History of one metric over days (trend charts, "N days in a row" rules).
Index(
    "ix_metric_values_history",
    metric_values.c.model,
    metric_values.c.family,
    metric_values.c.metric,
    metric_values.c.segment,
    metric_values.c.partition_date,
)

# Audit trail of retrain / promote / rollback: one row per action, its status updated as it progresses.
model_actions = Table(
    "model_actions",
    metadata,
    Column("id", Text, primary_key=True),  # uuid4 hex
    Column("model", Text, nullable=False),
    Column("action", Text, nullable=False),  # one of ACTIONS, checked by the store
    Column("status", Text, _one_of("status", ACTION_STATUSES), nullable=False),
    Column("trigger", Text),  # what asked for it: a sensor rule, 'manual', ...
    Column("partition_date", Date),  # the monitored day that triggered it, if any
    Column("from_version", Text),
    Column("to_version", Text),
    Column("reason", Text),
    Column("run_id", Text),
    Column("actor", Text),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("updated_at", UtcTimestamp),  # last status change; NULL until the first update
)
Index("ix_model_actions_model", model_actions.c.model, model_actions.c.created_at)

# One incident per breached (model, family, metric) episode. It owns the days from its first breached day on;
# once resolved, up to closed_day (docs/alerts-statuses.md).
incidents = Table(
    "incidents",
    metadata,
    Column("id", Text, primary_key=True),  # uuid4 hex
    Column("model", Text, nullable=False),
    Column("family", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("state", Text, _one_of("state", INCIDENT_STATES), nullable=False),
    Column("severity", Text, _one_of("severity", INCIDENT_SEVERITIES), nullable=False),  # the highest reached
    Column("model_version", Text),  # the version that served the latest breached day
    # every segment that breached ('' = the whole day)
    Column("segments", SegmentList, nullable=False, server_default="[]"),
    Column("first_day", Date, nullable=False),  # the earliest breached day attached
    Column("last_breach_day", Date, nullable=False),  # the latest breached day attached
    Column("closed_day", Date),  # resolved: the day it resolved on (auto) or its last breach (manual)
    Column("value", DOUBLE_PRECISION),  # the worst segment's value on last_breach_day
    Column("threshold", DOUBLE_PRECISION),  # the level it breached (the effective level of that day)
    Column("direction", Text, _one_of("direction", DIRECTIONS)),
    Column("opened_at", UtcTimestamp, nullable=False),
    Column("escalated_at", UtcTimestamp),
    Column("acknowledged_at", UtcTimestamp),
    Column("acknowledged_by", Text),
    Column("resolved_at", UtcTimestamp),
    Column("resolved_by", Text),  # a person, or 'auto'
    Column("resolution", Text, _one_of("resolution", ("auto", "manual"))),
    Column("updated_at", UtcTimestamp, nullable=False),
)
# At most one incident per metric is not resolved: two evaluations can never open duplicates.
_not_resolved = incidents.c.state != "resolved"
Index(
    "uq_incidents_one_open",
    incidents.c.model,
    incidents.c.family,
    incidents.c.metric,
    unique=True,
    sqlite_where=_not_resolved,
    postgresql_where=_not_resolved,
)
Index("ix_incidents_model", incidents.c.model, incidents.c.family, incidents.c.metric, incidents.c.first_day)

# The timeline: what happened to an incident, when (at: wall clock), about which monitored day (day).
incident_events = Table(
    "incident_events",
    metadata,
    Column("id", Text, primary_key=True),  # uuid4 hex
    Column("incident_id", Text, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),  # 1, 2, ... per incident: the timeline order
    Column("model", Text, nullable=False),
    Column("kind", Text, _one_of("kind", EVENT_KINDS), nullable=False),
    Column("day", Date),  # the monitored day the event is about (NULL: none, e.g. notified)
    Column("severity", Text, _one_of("severity", EVENT_SEVERITIES)),
    Column("value", DOUBLE_PRECISION),
    Column("threshold", DOUBLE_PRECISION),
    Column("segments", SegmentList),  # the segments that breached on that day
    Column("actor", Text),  # who: 'auto', a person, a channel
    Column("note", Text),
    Column("run_id", Text),  # the Dagster run that evaluated the day
    Column("at", UtcTimestamp, nullable=False),
    UniqueConstraint("incident_id", "seq", name="uq_incident_events_seq"),
)
# A day is attached to an incident once: re-running the day cannot add it twice.
_attaching = incident_events.c.kind.in_(("opened", "attached"))
Index(
    "uq_incident_events_day",
    incident_events.c.incident_id,
    incident_events.c.day,
    unique=True,
    sqlite_where=_attaching,
    postgresql_where=_attaching,
)
Index("ix_incident_events_model", incident_events.c.model, incident_events.c.at)

# A notification is written here first (enqueue) and sent afterwards, so nothing is lost when a channel is down:
# the row stays 'pending' and every later delivery call retries it once due. One row per (incident state change,
# channel): enqueueing it again is a no-op.
notification_outbox = Table(
    "notification_outbox",
    metadata,
    Column("id", Text, primary_key=True),  # uuid4 hex
    Column("model", Text, nullable=False),
    Column("incident_id", Text, nullable=False),
    Column("state", Text, _one_of("state", OUTBOX_STATES), nullable=False),
    Column("severity", Text, _one_of("severity", OUTBOX_SEVERITIES), nullable=False),
    Column("family", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("segment", Text, nullable=False, server_default=""),
    Column("partition_date", Date, nullable=False),
    Column("channel_name", Text, nullable=False),  # alerts.channels[].name of the plan
    Column("channel_type", Text, _one_of("channel_type", CHANNEL_TYPES), nullable=False),
    Column("payload", Text, nullable=False),  # the rendered message as JSON, WITHOUT secrets (added at send time)
    Column("status", Text, _one_of("status", OUTBOX_STATUSES), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),  # delivery attempts, over all calls
    Column("last_error", Text),  # the latest failure, secrets masked; kept after delivery
    Column("created_at", UtcTimestamp, nullable=False),
    Column("last_attempt_at", UtcTimestamp),
    Column("next_attempt_at", UtcTimestamp),  # pending rows: not retried before this
    Column("delivered_at", UtcTimestamp),
    Column("locked_until", UtcTimestamp),  # a delivering process's lease: two processes never send one row
    UniqueConstraint("incident_id", "state", "channel_name", name="uq_notification_outbox"),
)
Index(
    "ix_notification_outbox_due",
    notification_outbox.c.model,
    notification_outbox.c.status,
    notification_outbox.c.next_attempt_at,
)
Index("ix_notification_outbox_incident", notification_outbox.c.incident_id, notification_outbox.c.channel_name)

# Every attempt, delivered or not, for the audit of "who was told what, when".
notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column("outbox_id", Text, ForeignKey("notification_outbox.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),  # 1, 2, ... over all calls
    Column("attempted_at", UtcTimestamp, nullable=False),
    Column("outcome", Text, _one_of("outcome", ATTEMPT_OUTCOMES), nullable=False),
    Column("error", Text),  # secrets masked
    PrimaryKeyConstraint("outbox_id", "attempt"),
)
