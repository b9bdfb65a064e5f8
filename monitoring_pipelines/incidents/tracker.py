"""Incidents, not alert storms: one incident per breached (model, family, metric), with its timeline.

``update(store, plan, day, rows)`` is called once per evaluation of a model's day (the ``model_health`` asset)
with that day's judged rows, and returns the state changes it made (``IncidentChange``: opened, escalated,
resolved); the notification layer turns those into messages. A person acknowledges or resolves an incident
with ``acknowledge`` / ``resolve`` (both return the change too). The rules (docs/alerts-statuses.md):

* **Open / attach.** A breach (warning or critical) of any segment of a metric opens one incident for the
  (model, family, metric); the segments that breach (features, groups) attach to it. An incident *owns* the
  days from its first breached day on (once resolved: up to ``closed_day``). A breach on an owned day attaches
  to its incident; a resolved incident records it in its timeline but is never reopened. A breach on a day
  before an incident attaches to that incident (which then starts earlier) unless the metric was ok on
  ``resolve_after_ok_days`` days in between, in which case it is an incident of its own. A breach after every
  owned day opens a new incident.
* **Escalate** when a breach of higher severity attaches (warning -> critical); an acknowledged incident is
  then open again. Severity never goes down, so re-evaluations cannot escalate twice.
* **Resolve by itself** once the metric was judged ok on ``incidents.resolve_after_ok_days`` days after its
  latest breached day (days judged unknown, or not evaluated, neither count nor reset), read from the stored
  statuses, so the result does not depend on the order days are evaluated in.
* **Idempotent**: a day is attached to an incident once (a unique index), severity only rises, and the open
  incident of a metric is unique (a partial unique index), so re-running a day changes nothing it did before.

All of an evaluation happens in one transaction, serialised per model (PostgreSQL advisory lock; SQLite
BEGIN IMMEDIATE), like the metric store's own writes.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from monitoring_pipelines.errors import MonitoringError
from monitoring_pipelines.families.drift.incident import top_drifted_features
from monitoring_pipelines.families.fairness.incident import worst_group
from monitoring_pipelines.judge import health
from monitoring_pipelines.judge.metrics import Family, Status
from monitoring_pipelines.plan.schema import MonitoringPlan
from monitoring_pipelines.store import incidents as repo
from monitoring_pipelines.store import metric_values
from monitoring_pipelines.store.incidents import EVENT_COLUMNS, INCIDENT_COLUMNS
from monitoring_pipelines.store.metric_store import MetricStore, lock_key
from monitoring_pipelines.store.metric_values import number
from monitoring_pipelines.store.tables import INCIDENT_STATES

KINDS = ("opened", "escalated", "resolved", "acknowledged")
STATES = INCIDENT_STATES
__all__ = ["EVENT_COLUMNS", "INCIDENT_COLUMNS"]  # re-exported: the columns of the tables
_BREACH = (Status.WARNING, Status.CRITICAL)
AUTO = "auto"


class IncidentError(MonitoringError):
    """An incident cannot be found, or cannot take the requested action (e.g. acknowledging a resolved one)."""


@dataclass(frozen=True)
class IncidentChange:
    """One state change of one incident.

    ``kind``: opened, escalated, resolved (by ``update``, or by a person) or acknowledged. ``severity`` is the
    incident's severity after the change (``ok`` when resolved), ``previous_severity`` the one before (None
    when opened). ``segments``: every segment that breached in the incident so far (``''`` = the whole day);
    ``segment``: the worst one of ``day``. ``value`` / ``threshold`` / ``direction``: of that segment on
    ``day`` (a resolution: the day's value and the warning level it is back within). ``context``: what a person
    looks at first: ``breaches`` (one line per breached segment of the day), ``top_drifted_features``
    (drift: ``[{"feature", "score"}]``, drifted first), ``worst_group`` (fairness: ``{"group", "metric",
    "value"}``), ``baseline`` / ``persistence`` / ``rules`` (how the worst segment was judged), ``day_segments``,
    and for a resolution ``resolution`` (auto / manual), ``ok_days`` or ``actor`` and ``note``.
    """

    kind: str
    incident_id: str
    model: str
    model_version: str | None
    family: str
    metric: str
    segments: tuple[str, ...]
    segment: str
    day: dt.date
    severity: str
    previous_severity: str | None
    value: float | None
    threshold: float | None
    direction: str | None
    context: dict[str, Any] = field(default_factory=dict)
    opened_at: dt.datetime | None = None
    at: dt.datetime | None = None  # when the change was made (wall clock)
    run_id: str | None = None


@dataclass
class _Incident:
    id: str
    state: str
    severity: Status
    segments: set[str]
    first_day: dt.date
    last_breach_day: dt.date
    closed_day: dt.date | None
    opened_at: dt.datetime
    model_version: str | None

    @property
    def open(self) -> bool:
        return self.state != "resolved"

    def owns(self, day: dt.date) -> bool:
        return self.first_day <= day and (self.closed_day is None or day <= self.closed_day)


@dataclass(frozen=True)
class _DayFinding:
    """One (family, metric) on the evaluated day: its status over segments and the worst segment."""

    family: str
    metric: str
    status: Status  # breach if any segment breaches; ok if a segment is ok and none breaches; else unknown
    worst: Any  # the row (namedtuple) of the worst judged segment
    breached: tuple[str, ...]  # the segments that breach


# -- evaluation ------------------------------------------------------------------------------------------------


def update(
    store: MetricStore,
    plan: MonitoringPlan,
    day: dt.date,
    rows: pd.DataFrame,
    *,
    run_id: str | None = None,
    assessments: Mapping[health.Key, health.Assessment] | None = None,
    now: dt.datetime | None = None,
) -> list[IncidentChange]:
    """Evaluate ``day`` of ``plan``'s model: open, attach, escalate and resolve its incidents from the day's
    judged ``rows`` (``store.rows(model, start=day, end=day)``; every row must be of that model and day).

    Only metrics with a threshold in the plan are considered. ``assessments`` (``health.assess_rows``) add how
    each breach was judged to the context; they are computed from the store when not given. Returns the
    changes made, in order; re-running the same day returns none (unless its figures changed).
    """
    m = plan.name
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise ValueError(f"incidents.update({m!r}): day must be a datetime.date, got {day!r}")
    if len(rows):
        wrong = rows[(rows["model"] != m) | (rows["partition_date"] != day)]
        if len(wrong):
            r = wrong.iloc[0]
            raise ValueError(
                f"incidents.update({m!r}, {day}): got a row of model {r['model']!r} on "
                f"{r['partition_date']} ({r['family']}.{r['metric']}); pass only the rows of that day"
            )
    now = _utc(now)
    if assessments is None:
        assessments = health.assess_rows(plan, day, rows, health.read_history(store, plan, day))
    findings = _findings(plan, rows)
    changes: list[IncidentChange] = []
    with store.write(f"updating incidents of {m} on {day}", lock_key=lock_key("incidents", m)) as conn:
        for f in findings:
            changes += _evaluate(conn, plan, day, f, rows, assessments, run_id, now)
    return changes


def _findings(plan: MonitoringPlan, rows: pd.DataFrame) -> list[_DayFinding]:
    out = []
    if rows.empty:
        return out
    for (family, metric), sub in rows.groupby(["family", "metric"], sort=True):
        if f"{family}.{metric}" not in plan.thresholds:
            continue
        statuses = [Status(s) for s in sub["status"]]
        breached = tuple(sorted(r.segment for r in sub.itertuples() if Status(r.status) in _BREACH))
        if breached:
            status = Status.worst(statuses)
        elif Status.OK in statuses:
            status = Status.OK
        else:
            status = Status.UNKNOWN
        worst = max(sub.itertuples(), key=lambda r: (Status(r.status).rank, _excess(r)))
        out.append(_DayFinding(family, metric, status, worst, breached))
    return out


def _excess(r) -> float:
    """How far a row lies beyond the level of its status (0 when it has none)."""
    st = Status(r.status)
    limit = r.critical_threshold if st is Status.CRITICAL else r.warning_threshold
    if st not in _BREACH or pd.isna(limit) or pd.isna(r.value):
        return 0.0
    return float(r.value - limit) if r.direction == "max" else float(limit - r.value)


def _evaluate(
    conn: Connection,
    plan: MonitoringPlan,
    day: dt.date,
    f: _DayFinding,
    rows: pd.DataFrame,
    assessments,
    run_id: str | None,
    now: dt.datetime,
) -> list[IncidentChange]:
    m = plan.name
    need = plan.incidents.resolve_after_ok_days
    incidents = _load(conn, m, f.family, f.metric)
    statuses = _day_statuses(conn, m, f.family, f.metric)
    statuses[day] = f.status  # the rows handed in are the truth for the evaluated day
    changes: list[IncidentChange] = []
    if f.status in _BREACH:
        owner = next((i for i in incidents if i.owns(day)), None)
        later = sorted((i for i in incidents if i.first_day > day), key=lambda i: i.first_day)
        separate = None
        if owner is None and later:
            # a day before an incident (a backfill): the same episode, unless the metric recovered in between
            separate = _closure(statuses, day, need, before=later[0].first_day)
            if separate is None:
                owner = later[0]
        if owner is not None:
            changes += _attach(conn, plan, owner, day, f, rows, assessments, run_id, now)
        else:
            inc = _open(conn, plan, day, f, run_id, now, resolved=separate is not None)
            incidents.append(inc)
            changes.append(_change("opened", plan, inc, day, f, rows, assessments, None, run_id, now))
            if separate is not None:  # it recovered before the later incident began: resolved at once
                changes.append(_resolve_auto(conn, plan, inc, day, f, separate, run_id, now))
    current = next((i for i in incidents if i.open), None)
    if current is not None:
        closure = _closure(statuses, current.first_day, need)
        if closure is not None:
            changes.append(_resolve_auto(conn, plan, current, day, f, closure, run_id, now))
    return changes


def _closure(
    statuses: dict[dt.date, Status], first_day: dt.date, need: int, before: dt.date | None = None
) -> tuple[dt.date, dt.date, list[dt.date]] | None:
    """(closed day, last breached day, the ok days) of an episode that began on ``first_day``, if the stored
    statuses (of days before ``before``) show ``need`` ok days after its last breached day; else None."""
    days = {d: s for d, s in statuses.items() if d >= first_day and (before is None or d < before)}
    last = max((d for d, s in days.items() if s in _BREACH), default=first_day - dt.timedelta(days=1))
    ok = sorted(d for d, s in days.items() if s is Status.OK and d > last)
    return (ok[need - 1], last, ok[:need]) if len(ok) >= need else None


def _open(conn, plan, day, f: _DayFinding, run_id, now, *, resolved: bool = False) -> _Incident:
    """Insert a new incident for ``day``. ``resolved``: a backfilled episode that recovered before a later
    incident began; it is inserted resolved (``_resolve_auto`` completes it), as only one may be in force."""
    w = f.worst
    state = "resolved" if resolved else "open"
    inc = _Incident(uuid.uuid4().hex, state, f.status, set(f.breached), day, day, None, now, _version(w))
    repo.insert_incident(
        conn,
        id=inc.id,
        model=plan.name,
        family=f.family,
        metric=f.metric,
        state=state,
        severity=f.status.value,
        model_version=inc.model_version,
        segments=inc.segments,
        first_day=day,
        last_breach_day=day,
        value=number(w.value),
        threshold=_limit(w),
        direction=_dir(w),
        opened_at=now,
        updated_at=now,
    )
    _event(
        conn,
        plan.name,
        inc.id,
        "opened",
        day=day,
        severity=f.status.value,
        value=number(w.value),
        threshold=_limit(w),
        segments=f.breached,
        actor=AUTO,
        run_id=run_id,
        at=now,
    )
    return inc


def _attach(conn, plan, inc: _Incident, day, f: _DayFinding, rows, assessments, run_id, now) -> list[IncidentChange]:
    w = f.worst
    if not repo.day_attached(conn, inc.id, day):
        note = None if inc.open else "breach on a day of a resolved incident: recorded, not reopened"
        _event(
            conn,
            plan.name,
            inc.id,
            "attached",
            day=day,
            severity=f.status.value,
            value=number(w.value),
            threshold=_limit(w),
            segments=f.breached,
            actor=AUTO,
            note=note,
            run_id=run_id,
            at=now,
        )
    before = inc.severity
    inc.segments |= set(f.breached)
    newest = day >= inc.last_breach_day
    inc.first_day, inc.last_breach_day = min(inc.first_day, day), max(inc.last_breach_day, day)
    escalate = inc.open and f.status.rank > inc.severity.rank
    values: dict[str, Any] = {
        "segments": inc.segments,
        "first_day": inc.first_day,
        "last_breach_day": inc.last_breach_day,
        "updated_at": now,
    }
    if newest:  # the incident shows its latest breached day's figure
        inc.model_version = _version(w) or inc.model_version
        values.update(value=number(w.value), threshold=_limit(w), direction=_dir(w), model_version=inc.model_version)
    if escalate:
        inc.severity, inc.state = f.status, "open"
        values.update(severity=f.status.value, state="open", escalated_at=now)
    repo.update_incident(conn, inc.id, **values)
    if not escalate:
        return []
    _event(
        conn,
        plan.name,
        inc.id,
        "escalated",
        day=day,
        severity=f.status.value,
        value=number(w.value),
        threshold=_limit(w),
        segments=f.breached,
        actor=AUTO,
        run_id=run_id,
        at=now,
        note=f"{before.value} -> {f.status.value}",
    )
    return [_change("escalated", plan, inc, day, f, rows, assessments, before.value, run_id, now)]


def _resolve_auto(conn, plan, inc: _Incident, day, f: _DayFinding, closure, run_id, now) -> IncidentChange:
    """Resolve ``inc`` on the closed day of ``closure`` (``_closure``)."""
    closed, last, ok = closure
    w = f.worst
    level = number(w.warning_threshold) if not pd.isna(w.warning_threshold) else number(w.critical_threshold)
    value = number(w.value) if day == closed else None
    note = f"ok on {len(ok)} day(s) after the last breach ({last}): {', '.join(d.isoformat() for d in ok)}"
    repo.update_incident(
        conn,
        inc.id,
        state="resolved",
        closed_day=closed,
        resolved_at=now,
        resolved_by=AUTO,
        resolution="auto",
        updated_at=now,
    )
    _event(
        conn,
        plan.name,
        inc.id,
        "resolved",
        day=closed,
        severity="ok",
        value=value,
        threshold=level,
        segments=(),
        actor=AUTO,
        note=note,
        run_id=run_id,
        at=now,
    )
    inc.state, inc.closed_day = "resolved", closed
    return IncidentChange(
        "resolved",
        inc.id,
        plan.name,
        _version(w) or inc.model_version,
        f.family,
        f.metric,
        tuple(sorted(inc.segments)),
        w.segment,
        closed,
        "ok",
        inc.severity.value,
        value,
        level,
        _dir(w),
        {
            "resolution": "auto",
            "ok_days": [d.isoformat() for d in ok],
            "last_breach_day": last.isoformat(),
            "evaluated_day": day.isoformat(),
        },
        inc.opened_at,
        now,
        run_id,
    )


def _change(
    kind, plan, inc: _Incident, day, f: _DayFinding, rows: pd.DataFrame, assessments, previous, run_id, now
) -> IncidentChange:
    w = f.worst
    return IncidentChange(
        kind,
        inc.id,
        plan.name,
        _version(w),
        f.family,
        f.metric,
        tuple(sorted(inc.segments)),
        w.segment,
        day,
        f.status.value,
        previous,
        number(w.value),
        _limit(w),
        _dir(w),
        _context(f, rows, assessments),
        inc.opened_at,
        now,
        run_id,
    )


# -- context ---------------------------------------------------------------------------------------------------


def _context(f: _DayFinding, rows: pd.DataFrame, assessments) -> dict[str, Any]:
    sub = rows[(rows["family"] == f.family) & (rows["metric"] == f.metric)]
    lines = []
    for r in sub.itertuples():
        st = Status(r.status)
        if st in _BREACH:
            a = assessments.get((r.family, r.metric, r.segment))
            lines.append(health.as_breach(r, st, a).describe())
    ctx: dict[str, Any] = {"breaches": lines, "day_segments": list(f.breached)}
    a = assessments.get((f.family, f.metric, f.worst.segment))
    if a is not None:
        if a.baseline is not None:
            ctx["baseline"] = {"mean": a.baseline.mean, "std": a.baseline.std, "days": a.baseline.days}
        if a.persistence:
            ctx["persistence"] = a.persistence
        if a.rules:
            ctx["rules"] = list(a.rules)
        if a.note:
            ctx["note"] = a.note
    if f.family == Family.DRIFT.value:
        ctx["top_drifted_features"] = top_drifted_features(rows)
    if f.family == Family.FAIRNESS.value:
        worst = worst_group(rows, f.metric, f.worst.segment, f.worst.value)
        if worst is not None:
            ctx["worst_group"] = worst
    return ctx


# -- people ----------------------------------------------------------------------------------------------------


def acknowledge(
    store: MetricStore, incident_id: str, *, actor: str, note: str | None = None, now: dt.datetime | None = None
) -> IncidentChange:
    """A person takes ``incident_id``: it stays in force (breaches still attach, escalation reopens it) but is
    marked acknowledged by ``actor``. Acknowledging an acknowledged incident again changes nothing but the note."""
    return _by_person(store, incident_id, "acknowledged", actor, note, now)


def resolve(
    store: MetricStore, incident_id: str, *, actor: str, note: str | None = None, now: dt.datetime | None = None
) -> IncidentChange:
    """A person resolves ``incident_id`` now. Its days stay its own (a re-run of them does not reopen it); a breach
    on a later day opens a new incident."""
    return _by_person(store, incident_id, "resolved", actor, note, now)


def _by_person(
    store: MetricStore, incident_id: str, kind: str, actor: str, note: str | None, now: dt.datetime | None
) -> IncidentChange:
    if not actor or not actor.strip():
        verb = "acknowledges" if kind == "acknowledged" else "resolves"
        raise ValueError(f"incident {incident_id}: actor is required (say who {verb} it)")
    now = _utc(now)
    row = _one(store, incident_id)
    with store.write(f"{kind} incident {incident_id}", lock_key=lock_key("incidents", row["model"])) as conn:
        row = _one(store, incident_id, conn)  # re-read under the lock
        where = f"incident {incident_id} of model {row['model']} ({row['family']}.{row['metric']})"
        if row["state"] == "resolved":
            raise IncidentError(
                f"{where} is already resolved ({row['resolution']}, by {row['resolved_by']}); "
                f"nothing to {'acknowledge' if kind == 'acknowledged' else 'resolve'}"
            )
        if kind == "acknowledged":
            repo.acknowledge(conn, incident_id, actor=actor, now=now)
            severity, day = row["severity"], row["last_breach_day"]
        else:
            repo.resolve_manually(conn, incident_id, actor=actor, now=now)
            severity, day = "ok", row["last_breach_day"]
        _event(
            conn,
            row["model"],
            incident_id,
            kind,
            day=day,
            severity=severity,
            value=row["value"],
            threshold=row["threshold"],
            segments=(),
            actor=actor,
            note=note,
            run_id=None,
            at=now,
        )
    ctx = {"actor": actor, "note": note}
    if kind == "resolved":
        ctx["resolution"] = "manual"
    return IncidentChange(
        kind,
        incident_id,
        row["model"],
        row["model_version"],
        row["family"],
        row["metric"],
        tuple(row["segments"]),
        "",
        day,
        severity,
        row["severity"],
        number(row["value"]),
        number(row["threshold"]),
        row["direction"],
        ctx,
        row["opened_at"].to_pydatetime(),
        now,
        None,
    )


def record_notified(
    store: MetricStore, incident_id: str, *, channel: str, note: str | None = None, at: dt.datetime | None = None
) -> None:
    """Add a ``notified`` event to the timeline: ``channel`` told someone about ``incident_id`` (``note``: which
    change, the outcome). For the notification layer."""
    at = _utc(at)
    row = _one(store, incident_id)
    with store.write(
        f"recording a notification of incident {incident_id}", lock_key=lock_key("incidents", row["model"])
    ) as conn:
        _event(
            conn,
            row["model"],
            incident_id,
            "notified",
            day=None,
            severity=None,
            value=None,
            threshold=None,
            segments=(),
            actor=channel,
            note=note,
            run_id=None,
            at=at,
        )


# -- reading ---------------------------------------------------------------------------------------------------


def incidents(store: MetricStore, model: str, *, states: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The incidents of ``model`` (``states``: e.g. ``("open", "acknowledged")``), oldest first; ``segments`` is a
    list, days are ``datetime.date``, times tz-aware UTC."""
    if states:
        bad = [s for s in states if s not in STATES]
        if bad:
            raise ValueError(f"incidents of {model}: unknown state(s) {bad}; expected some of {STATES}")
    with store.read(f"reading incidents of {model}") as conn:
        return repo.select_incidents(conn, model, states=states)


def timeline(store: MetricStore, incident_id: str) -> pd.DataFrame:
    """The events of ``incident_id`` in order (``seq``)."""
    with store.read(f"reading the timeline of incident {incident_id}") as conn:
        return repo.select_timeline(conn, incident_id)


def response_times(store: MetricStore, model: str) -> pd.DataFrame:
    """Per incident of ``model``: ``time_to_detect`` (from the end of its first breached UTC day to when it was
    opened), ``time_to_acknowledge`` and ``time_to_resolve`` (from opened; NaT while not done), all
    ``Timedelta``; and ``days_to_resolve``, in monitored days from the first breached day to the day it resolved
    (partition time: meaningful for backfills and replays, where wall-clock times are not)."""
    inc = incidents(store, model)
    out = inc[
        [
            "id",
            "family",
            "metric",
            "severity",
            "state",
            "first_day",
            "closed_day",
            "opened_at",
            "acknowledged_at",
            "resolved_at",
            "resolution",
        ]
    ].copy()
    day_end = pd.Series(
        [pd.Timestamp(d, tz="UTC") + pd.Timedelta(days=1) for d in inc["first_day"]],
        index=inc.index,
        dtype="datetime64[ns, UTC]",
    )
    out["time_to_detect"] = out["opened_at"] - day_end
    out["time_to_acknowledge"] = out["acknowledged_at"] - out["opened_at"]
    out["time_to_resolve"] = out["resolved_at"] - out["opened_at"]
    out["days_to_resolve"] = [
        float((c - f).days) if c is not None else math.nan for f, c in zip(inc["first_day"], inc["closed_day"])
    ]
    return out


@dataclass(frozen=True)
class IncidentStats:
    """Counts and mean response times of a model's incidents (means over the incidents that have the figure)."""

    open: int
    acknowledged: int
    resolved: int
    open_critical: int
    mean_time_to_detect: pd.Timedelta | None
    mean_time_to_resolve: pd.Timedelta | None
    mean_days_to_resolve: float | None


def stats(store: MetricStore, model: str) -> IncidentStats:
    rt = response_times(store, model)

    def mean(col):
        s = rt[col].dropna()
        return None if s.empty else s.mean()

    live = rt[rt["state"] != "resolved"]
    return IncidentStats(
        int((rt["state"] == "open").sum()),
        int((rt["state"] == "acknowledged").sum()),
        int((rt["state"] == "resolved").sum()),
        int((live["severity"] == "critical").sum()),
        mean("time_to_detect"),
        mean("time_to_resolve"),
        mean("days_to_resolve"),
    )


def delete_model(store: MetricStore, model: str) -> None:
    """Remove every incident and event of ``model`` in one transaction (e.g. to reset the demo)."""
    with store.write(f"deleting incidents of {model}", lock_key=lock_key("incidents", model)) as conn:
        repo.delete_incidents_of_model(conn, model)


# -- reading and writing through the store's repository --------------------------------------------------------


def _load(conn: Connection, model: str, family: str, metric: str) -> list[_Incident]:
    return [
        _Incident(
            r.id,
            r.state,
            Status(r.severity),
            set(r.segments),
            r.first_day,
            r.last_breach_day,
            r.closed_day,
            r.opened_at,
            r.model_version,
        )
        for r in repo.incidents_of_metric(conn, model, family, metric)
    ]


def _day_statuses(conn: Connection, model: str, family: str, metric: str) -> dict[dt.date, Status]:
    """Per stored day, the metric's status over its segments (as ``_findings`` computes it for one day)."""
    seen: dict[dt.date, set[Status]] = {}
    for d, s in metric_values.statuses(conn, model, family, metric):
        seen.setdefault(d, set()).add(Status(s))
    out = {}
    for d, ss in seen.items():
        breach = [s for s in ss if s in _BREACH]
        out[d] = Status.worst(breach) if breach else (Status.OK if Status.OK in ss else Status.UNKNOWN)
    return out


def _event(
    conn: Connection,
    model: str,
    incident_id: str,
    kind: str,
    *,
    day: dt.date | None,
    severity: str | None,
    value: float | None,
    threshold: float | None,
    segments,
    actor: str | None,
    run_id: str | None,
    at: dt.datetime,
    note: str | None = None,
) -> None:
    repo.add_event(
        conn,
        incident_id=incident_id,
        model=model,
        kind=kind,
        day=day,
        severity=severity,
        value=number(value),
        threshold=number(threshold),
        segments=segments,
        actor=actor,
        note=note,
        run_id=run_id,
        at=at,
    )


def _one(store: MetricStore, incident_id: str, conn: Connection | None = None) -> dict[str, Any]:
    if conn is None:
        with store.read(f"reading incident {incident_id}") as own:
            found = repo.incident(own, incident_id)
    else:
        found = repo.incident(conn, incident_id)
    if found is None:
        raise IncidentError(f"metric store {store!r}: no incident with id {incident_id!r}")
    return found


def _utc(moment: dt.datetime | None) -> dt.datetime:
    if moment is None:
        return dt.datetime.now(dt.UTC)
    if moment.utcoffset() is None:
        raise ValueError(f"incidents: timestamps must be timezone-aware, got {moment!r}")
    return moment.astimezone(dt.UTC)


def _version(row) -> str | None:
    v = getattr(row, "model_version", None)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _limit(row) -> float | None:
    st = Status(row.status)
    if st is Status.CRITICAL:
        return number(row.critical_threshold)
    return number(row.warning_threshold)


def _dir(row) -> str | None:
    return row.direction if isinstance(row.direction, str) else None
