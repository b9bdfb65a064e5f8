"""Judging figures against the plan and summarising a model's day.

``judge`` turns computed ``MetricValue``s into stored rows with thresholds and a status; ``summarise``
reads a day's stored rows back and gives the worst status per family and the breaches behind it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from monitoring_pipelines.metrics import Family, MetricValue, Status
from monitoring_pipelines.plan import MonitoringPlan
from monitoring_pipelines.store import MetricRow


def judge(plan: MonitoringPlan, day: dt.date, values: list[MetricValue], *, model_version: str, alias: str,
          run_id: str, unjudged_segments: frozenset[str] = frozenset()) -> list[MetricRow]:
    """Attach the plan's thresholds and a status to every value.

    Values whose segment is in ``unjudged_segments`` (e.g. fairness groups below the minimum size) keep
    their figure but get status unknown, so they are reported and never alerted on.
    """
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for v in values:
        bounds = plan.bounds(v.family, v.metric)
        status = Status.UNKNOWN if v.segment in unjudged_segments else bounds.judge(v.value)
        rows.append(MetricRow(
            model=plan.name, model_version=str(model_version), alias=alias, partition_date=day,
            family=v.family.value, metric=v.metric, segment=v.segment, value=v.value,
            warning_threshold=bounds.warning, critical_threshold=bounds.critical,
            direction=bounds.direction if (bounds.warning is not None or bounds.critical is not None) else None,
            status=status.value, run_id=run_id, computed_at=now,
        ))
    return rows


@dataclass(frozen=True)
class Breach:
    family: str
    metric: str
    segment: str
    value: float | None
    status: Status
    threshold: float | None

    def describe(self) -> str:
        seg = f"[{self.segment}]" if self.segment else ""
        return f"{self.family}.{self.metric}{seg} = {self.value:.4g} ({self.status.value}, threshold {self.threshold})"


@dataclass(frozen=True)
class DaySummary:
    model: str
    day: dt.date
    family_status: dict[str, Status]
    breaches: list[Breach]

    @property
    def status(self) -> Status:
        return Status.worst(self.family_status.values())


def summarise(plan: MonitoringPlan, day: dt.date, rows: pd.DataFrame) -> DaySummary:
    """Worst status per family of the plan's families, and every warning/critical row (the breaches)."""
    family_status: dict[str, Status] = {}
    breaches: list[Breach] = []
    for fam in Family:
        sub = rows[rows["family"] == fam.value] if len(rows) else rows
        family_status[fam.value] = Status.worst(Status(s) for s in sub["status"]) if len(sub) else Status.UNKNOWN
        for r in sub.itertuples():
            st = Status(r.status)
            if st in (Status.WARNING, Status.CRITICAL):
                limit = r.critical_threshold if st is Status.CRITICAL else r.warning_threshold
                breaches.append(Breach(r.family, r.metric, r.segment, r.value, st, limit))
    breaches.sort(key=lambda b: (-b.status.rank, b.family, b.metric, b.segment))
    return DaySummary(plan.name, day, family_status, breaches)


def figure(rows: pd.DataFrame, family: str, metric: str, segment: str = "") -> float | None:
    """One stored figure of a day's rows, or None when absent or not computed."""
    if rows.empty:
        return None
    hit = rows[(rows["family"] == family) & (rows["metric"] == metric) & (rows["segment"] == segment)]
    return None if hit.empty or pd.isna(hit["value"].iloc[0]) else float(hit["value"].iloc[0])


def worst_fairness_gap(rows: pd.DataFrame) -> float | None:
    """The largest equal-opportunity gap of the day over the plan's attributes and their intersection."""
    if rows.empty:
        return None
    gaps = rows[(rows["family"] == "fairness") & (rows["metric"] == "equal_opportunity_difference")]["value"].dropna()
    return None if gaps.empty else float(gaps.max())
