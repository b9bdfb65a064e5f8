"""What a notification is about: one state change of one incident, and the playbook that answers it."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitoring_pipelines.plan.schema import ALERT_TYPES, MonitoringPlan

SEVERITIES = ("warning", "critical", "ok")  # ok: the metric recovered (state resolved)
STATES = ("opened", "escalated", "resolved")
SEVERITY_RANK = {"warning": 1, "critical": 2}
ACTION_FAMILY = "action"  # alerts about an automatic action (a failed retrain), metric = the action name

PLAYBOOKS_DIR = "docs/playbooks"


@dataclass(frozen=True)
class Alert:
    """One incident state change, as the incident tracker hands it to the notification layer.

    ``context`` carries what a person looks at first; the renderers know these keys and show any other one as
    ``key: value``:

    * ``top_drifted_features``: list of ``{"feature": str, "score": float}`` (or plain names), worst first;
    * ``worst_group``: ``{"group": "sex=Female", "value": 0.31}`` (or a plain string);
    * ``breaches``: list of one-line descriptions of the other breaches of the same incident.

    ``links``: ``report``, ``dagster_run``, ``playbook`` (URLs or repository paths). A missing ``playbook`` is
    filled from the plan (see ``playbook_for``).
    """

    incident_id: str
    model: str
    model_version: str | None
    family: str
    metric: str
    segment: str
    day: dt.date
    severity: str
    state: str
    value: float | None
    threshold: float | None
    direction: str | None
    context: Mapping[str, Any] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    opened_at: dt.datetime | None = None
    at: dt.datetime | None = None  # when this state change happened

    def __post_init__(self):
        where = f"alert of model {self.model!r}, incident {self.incident_id!r}"
        if not self.incident_id or not isinstance(self.incident_id, str):
            raise ValueError(f"{where}: incident_id must be a non-empty string")
        if self.state not in STATES:
            raise ValueError(f"{where}: state {self.state!r} is not one of {STATES}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{where}: severity {self.severity!r} is not one of {SEVERITIES}")
        if (self.state == "resolved") != (self.severity == "ok"):
            raise ValueError(
                f"{where}: a resolved incident has severity 'ok' and only it does "
                f"(got state {self.state!r}, severity {self.severity!r})"
            )
        if isinstance(self.day, dt.datetime) or not isinstance(self.day, dt.date):
            raise ValueError(f"{where}: day must be a datetime.date, got {self.day!r}")
        if self.direction not in ("max", "min", None):
            raise ValueError(f"{where}: direction {self.direction!r} is not 'max', 'min' or None")
        for name in ("opened_at", "at"):
            moment = getattr(self, name)
            if moment is not None and (not isinstance(moment, dt.datetime) or moment.utcoffset() is None):
                raise ValueError(f"{where}: {name} must be a timezone-aware datetime, got {moment!r}")
        alert_type(self.family, self.metric)  # an unknown family is a caller bug: say so now, not at delivery

    @property
    def metric_path(self) -> str:
        """``drift.feature_drift_score[age]``."""
        return f"{self.family}.{self.metric}" + (f"[{self.segment}]" if self.segment else "")

    @property
    def comparison(self) -> str:
        """Value against threshold in words: ``0.45 > 0.4 (critical level)``."""
        if self.state == "resolved":
            limit = f" (threshold {fmt(self.threshold)})" if self.threshold is not None else ""
            return f"{fmt(self.value)}, back within limits{limit}"
        if self.threshold is None:
            return fmt(self.value)
        op = "<" if self.direction == "min" else ">"
        return f"{fmt(self.value)} {op} {fmt(self.threshold)} ({self.severity} level)"

    @property
    def headline(self) -> str:
        """One line for subjects, summaries and fallbacks."""
        label = "RESOLVED" if self.state == "resolved" else self.severity.upper()
        verb = {"opened": "", "escalated": "escalated: ", "resolved": ""}[self.state]
        return f"[{label}] {self.model}: {verb}{self.metric_path} = {self.comparison} on {self.day.isoformat()}"


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4g}"


# -- playbooks -------------------------------------------------------------------------------------------------

_FAMILY_TYPES = {
    "quality": "data-quality-failure",
    "performance": "performance-drop",
    "performance_estimated": "performance-drop",
    "fairness": "fairness-gap",
    "service": "latency-error-spike",
    # a challenger that compares badly and a retrain that failed are both "the automatic fix did not work"
    "comparison": "failed-retrain",
    ACTION_FAMILY: "failed-retrain",
}


def alert_type(family: str, metric: str) -> str:
    """The alert type (and playbook name) of a metric: one of ``plan.schema.ALERT_TYPES``."""
    family = getattr(family, "value", family)
    if family == "drift":
        return "prediction-drift" if metric == "prediction_drift_score" else "feature-drift"
    try:
        return _FAMILY_TYPES[family]
    except KeyError:
        raise ValueError(
            f"no alert type for {family}.{metric}: family must be drift or one of {sorted(_FAMILY_TYPES)}"
        ) from None


def playbook_for(plan: MonitoringPlan, family: str, metric: str) -> str:
    """The playbook link of an alert: ``alerts.playbooks[<type>]``, else ``owners.playbook``, else the bundled
    ``docs/playbooks/<type>.md`` (prefixed by ``alerts.playbook_base_url`` when set)."""
    kind = alert_type(family, metric)
    assert kind in ALERT_TYPES, kind  # the plan schema and this mapping must list the same types
    if kind in plan.alerts.playbooks:
        return plan.alerts.playbooks[kind]
    if plan.owners.playbook:
        return plan.owners.playbook
    base = plan.alerts.playbook_base_url
    return f"{base.rstrip('/')}/{kind}.md" if base else f"{PLAYBOOKS_DIR}/{kind}.md"


def dagster_run_url(plan: MonitoringPlan, run_id: str) -> str | None:
    """The Dagster UI page of a run, when the plan gives ``alerts.dagster_url``."""
    base = plan.alerts.dagster_url
    return f"{base.rstrip('/')}/runs/{run_id}" if base else None
