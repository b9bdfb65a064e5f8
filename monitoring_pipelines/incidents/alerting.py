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
from collections.abc import Callable, Iterable

from monitoring_pipelines.incidents import tracker as incidents
from monitoring_pipelines.incidents.tracker import IncidentChange
from monitoring_pipelines.notify import Alert, DeliveryReport, dagster_run_url, notify, playbook_for
from monitoring_pipelines.plan.schema import MonitoringPlan
from monitoring_pipelines.store import incidents as repo
from monitoring_pipelines.store.incidents import SENT_KINDS
from monitoring_pipelines.store.metric_store import MetricStore

__all__ = ["SENT_KINDS"]  # re-exported: the incident changes that are sent
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
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=since_days)
    with store.read(f"finding unsent incident changes of {plan.name}") as conn:
        records = repo.unsent_events(conn, plan.name, resolved_since=since)
    out = []
    for r in records:
        segs = tuple(r.segments)
        out.append(
            IncidentChange(
                kind=r.kind,
                incident_id=r.incident_id,
                model=plan.name,
                model_version=r.model_version,
                family=r.family,
                metric=r.metric,
                segments=segs,
                segment=segs[0] if segs else "",
                day=r.day,
                severity="ok" if r.kind == "resolved" else r.severity,
                previous_severity=None,
                value=r.value,
                threshold=r.threshold,
                direction=r.direction,
                context={"note": "sent late: an earlier run stopped before its notification was queued"},
                opened_at=r.opened_at,
                at=r.at,
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
