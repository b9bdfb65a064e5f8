"""From incident state changes to notifications: the glue between ``incidents`` and ``notify``.

``model_health`` calls ``dispatch`` after ``incidents.update``: every change (opened, escalated, resolved)
becomes one ``notify.Alert`` with the links a person needs (the day's drift report for drift incidents, the
Dagster run, the playbook), goes through the outbox to the plan's channels, and each delivery is written to the
incident's timeline (``notified``). Acknowledgements are timeline events only; they are not sent. With no
change, ``dispatch`` still retries the model's pending notifications, so an outage of a channel delays alerts
and never drops them. Delivery problems are in the returned report (and logged), never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from monitoring_pipelines import incidents
from monitoring_pipelines.incidents import IncidentChange
from monitoring_pipelines.notify import Alert, DeliveryReport, dagster_run_url, notify, playbook_for
from monitoring_pipelines.plan import MonitoringPlan
from monitoring_pipelines.store import MetricStore

SENT_KINDS = ("opened", "escalated", "resolved")


def alert_of(plan: MonitoringPlan, change: IncidentChange, *, run_id: str | None,
             report_url: Callable[[IncidentChange], str | None] = lambda _c: None) -> Alert:
    links = {"playbook": playbook_for(plan, change.family, change.metric)}
    report = report_url(change)
    if report:
        links["report"] = report
    run_link = dagster_run_url(plan, run_id) if run_id else None
    if run_link:
        links["dagster_run"] = run_link
    elif run_id:
        links["dagster_run"] = f"run {run_id}"  # no alerts.dagster_url in the plan: the id is still searchable
    return Alert(incident_id=change.incident_id, model=change.model, model_version=change.model_version,
                 family=change.family, metric=change.metric, segment=change.segment, day=change.day,
                 severity=change.severity, state=change.kind, value=change.value, threshold=change.threshold,
                 direction=change.direction, context=change.context, links=links, opened_at=change.opened_at,
                 at=change.at)


def dispatch(store: MetricStore, plan: MonitoringPlan, changes: Iterable[IncidentChange], *, run_id: str | None,
             report_url: Callable[[IncidentChange], str | None] = lambda _c: None) -> DeliveryReport:
    """Notify the plan's channels of ``changes`` (and retry older pending notifications of the model)."""
    alerts = [alert_of(plan, c, run_id=run_id, report_url=report_url) for c in changes if c.kind in SENT_KINDS]
    report = notify(store, plan, alerts)
    for outcome in report.delivered:
        incidents.record_notified(store, outcome.incident_id, channel=outcome.channel,
                                  note=f"{outcome.state} delivered after {outcome.attempts} attempt(s)")
    return report
