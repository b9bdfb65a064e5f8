"""From incident state changes to notifications: the glue between ``incidents`` and ``notify``.

``model_health`` calls ``dispatch`` after ``incidents.update``: every change (opened, escalated, resolved)
becomes one ``notify.Alert`` with the links a person needs (the day's drift report for drift incidents, the
Dagster run, the playbook), goes through the outbox to the plan's channels, and each delivery is written to the
incident's timeline (``notified``). Acknowledgements are timeline events only; they are not sent. With no
change, ``dispatch`` still retries the model's pending notifications, so an outage of a channel delays alerts
and never drops them. Delivery problems are in the returned report (and logged), never raised.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable

from monitoring_pipelines.incidents import tracker as incidents
from monitoring_pipelines.incidents.tracker import (  # the tracker's own readers of stored values
    IncidentChange,
    _date,
    _ts,
)
from monitoring_pipelines.notify import Alert, DeliveryReport, dagster_run_url, notify, playbook_for
from monitoring_pipelines.notify.outbox import iso
from monitoring_pipelines.plan.schema import MonitoringPlan
from monitoring_pipelines.store.metric_store import MetricStore

SENT_KINDS = ("opened", "escalated", "resolved")
CATCH_UP_DAYS = 7


def alert_of(
    plan: MonitoringPlan,
    change: IncidentChange,
    *,
    run_id: str | None,
    report_url: Callable[[IncidentChange], str | None] = lambda _c: None,
) -> Alert:
    links = {"playbook": playbook_for(plan, change.family, change.metric)}
    report = report_url(change)
    if report:
        links["report"] = report
    run_link = dagster_run_url(plan, run_id) if run_id else None
    if run_link:
        links["dagster_run"] = run_link
    elif run_id:
        links["dagster_run"] = f"run {run_id}"  # no alerts.dagster_url in the plan: the id is still searchable
    return Alert(
        incident_id=change.incident_id,
        model=change.model,
        model_version=change.model_version,
        family=change.family,
        metric=change.metric,
        segment=change.segment,
        day=change.day,
        severity=change.severity,
        state=change.kind,
        value=change.value,
        threshold=change.threshold,
        direction=change.direction,
        context=change.context,
        links=links,
        opened_at=change.opened_at,
        at=change.at,
    )


def unsent_changes(
    store: MetricStore, plan: MonitoringPlan, *, since_days: int = CATCH_UP_DAYS
) -> list[IncidentChange]:
    """State changes recorded in the incident timeline that never reached the outbox: a run that failed between
    committing the incident change and writing the outbox (the two are separate transactions). Only changes of
    incidents still open, or resolved within ``since_days``, are caught up (a channel added to a plan later
    learns about the incidents open now, not about old history)."""
    if not plan.alerts.channels:
        return []
    since = iso(dt.datetime.now(dt.UTC) - dt.timedelta(days=since_days))  # the store's timestamp text
    records = store.query(
        f"finding unsent incident changes of {plan.name}",
        "SELECT e.incident_id, e.kind, e.day, e.severity, e.value, e.threshold, e.segments, e.at, "
        "i.family, i.metric, i.model_version, i.direction, i.opened_at, i.state "
        "FROM incident_events e JOIN incidents i ON i.id = e.incident_id "
        "WHERE e.model = :m AND e.kind IN ('opened', 'escalated', 'resolved') "
        "AND (i.state <> 'resolved' OR i.resolved_at >= :since) "
        "AND NOT EXISTS (SELECT 1 FROM notification_outbox o WHERE o.incident_id = e.incident_id AND o.state = e.kind) "
        "ORDER BY e.at",
        {"m": plan.name, "since": since},
    )
    out = []
    for (
        incident_id,
        kind,
        day,
        severity,
        value,
        threshold,
        segments,
        at,
        family,
        metric,
        version,
        direction,
        opened_at,
        _state,
    ) in records:
        segs = tuple(json.loads(segments)) if isinstance(segments, str) else tuple(segments or ())
        out.append(
            IncidentChange(
                kind=kind,
                incident_id=incident_id,
                model=plan.name,
                model_version=version,
                family=family,
                metric=metric,
                segments=segs,
                segment=segs[0] if segs else "",
                day=_date(day),
                severity="ok" if kind == "resolved" else severity,
                previous_severity=None,
                value=value,
                threshold=threshold,
                direction=direction,
                context={"note": "sent late: an earlier run stopped before its notification was queued"},
                opened_at=_ts(opened_at),
                at=_ts(at),
            )
        )
    return out


def dispatch(
    store: MetricStore,
    plan: MonitoringPlan,
    changes: Iterable[IncidentChange],
    *,
    run_id: str | None,
    report_url: Callable[[IncidentChange], str | None] = lambda _c: None,
) -> DeliveryReport:
    """Notify the plan's channels of ``changes`` and of earlier changes that never reached the outbox (and retry
    older pending notifications of the model)."""
    changes = [c for c in changes if c.kind in SENT_KINDS]
    seen = {(c.incident_id, c.kind) for c in changes}
    changes += [c for c in unsent_changes(store, plan) if (c.incident_id, c.kind) not in seen]
    alerts = [alert_of(plan, c, run_id=run_id, report_url=report_url) for c in changes]
    report = notify(store, plan, alerts)
    for outcome in report.delivered:
        incidents.record_notified(
            store,
            outcome.incident_id,
            channel=outcome.channel,
            note=f"{outcome.state} delivered after {outcome.attempts} attempt(s)",
        )
    return report
