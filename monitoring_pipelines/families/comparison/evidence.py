"""A candidate's evidence across days: the stored daily comparisons pooled with Stouffer's weighted Z
(calculator module doc, "Evidence across days"). ``Evidence.refusals`` is the promotion rule's verdict."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from monitoring_pipelines.families.comparison.names import (
    CHALLENGER_ROLE,
    FAIRNESS_GAPS,
    FAMILY,
    Metric,
    delta_name,
    segment,
)
from monitoring_pipelines.families.comparison.result import DayEvidence, Evidence
from monitoring_pipelines.plan.schema import MonitoringPlan
from monitoring_pipelines.store.metric_store import MetricStore


def accumulate(
    rows: pd.DataFrame,
    *,
    role: str,
    version: str,
    since: dt.date | None,
    min_coverage: float,
    blocked: set[dt.date] = frozenset(),
    days: set[dt.date] | None = None,
) -> Evidence:
    """Pool the stored daily comparisons (``rows``: metric rows of the comparison family, any days) of one
    candidate version. ``since``: first day that may count; ``blocked``: days whose blocking quality checks
    failed; ``days``: if given, only these days may count (e.g. a rollback window)."""
    seg = segment(role, version)
    comp = rows[rows["family"] == FAMILY.value]

    def series(metric: str, seg_: str = seg) -> dict:
        hit = comp[(comp["metric"] == metric) & (comp["segment"] == seg_)]
        return {d: (None if pd.isna(v) else float(v)) for d, v in zip(hit["partition_date"], hit["value"])}

    delta, z, labelled, compared = (
        series(Metric.ROC_AUC_DELTA.value),
        series(Metric.ROC_AUC_DELTA_Z.value),
        series(Metric.LABELLED_ROWS.value),
        series(Metric.COMPARED_ROWS.value, ""),
    )
    counted, skipped = [], {}
    for day in sorted(delta):
        if since is not None and day < since:
            continue
        if days is not None and day not in days:
            continue
        if day in blocked:
            skipped[day.isoformat()] = "blocking quality checks failed"
        elif delta[day] is None or z.get(day) is None:
            skipped[day.isoformat()] = "no labelled comparison"
        elif not compared.get(day) or (labelled.get(day) or 0) / compared[day] < min_coverage:
            skipped[day.isoformat()] = f"label coverage below {min_coverage}"
        else:
            counted.append(DayEvidence(day, int(labelled[day]), delta[day], z[day]))
    kept = {d.day: d.rows for d in counted}
    regression = {}
    prefix = seg + "|"
    gaps = comp[comp["segment"].str.startswith(prefix) & comp["metric"].isin([delta_name(g) for g in FAIRNESS_GAPS])]
    for (seg_, metric), group in gaps.groupby(["segment", "metric"]):
        pairs = [(kept[d], v) for d, v in zip(group["partition_date"], group["value"]) if d in kept and pd.notna(v)]
        name = f"{seg_.removeprefix(prefix)}.{metric.removesuffix('_delta')}"
        regression[name] = sum(n * v for n, v in pairs) / sum(n for n, _ in pairs) if pairs else None
    return Evidence(role, version, since, tuple(counted), skipped, regression)


def stored_evidence(
    store: MetricStore,
    plan: MonitoringPlan,
    ref: Any,
    *,
    role: str = CHALLENGER_ROLE,
    through: dt.date | None = None,
    current: pd.DataFrame | None = None,
) -> Evidence:
    """``accumulate`` over the metric store's comparison rows of ``ref`` (a registry ``ModelVersionRef``) from
    its ``evidence_since`` day up to ``through``; ``current``: rows of a day being computed, which replace
    that day's stored rows. Days whose stored blocking quality checks failed do not count."""
    since = ref.evidence_since
    rows = store.rows(plan.name, family=FAMILY.value, start=since, end=through)
    if current is not None and len(current):
        rows = pd.concat(
            [rows[~rows["partition_date"].isin(set(current["partition_date"]))], current], ignore_index=True
        )
    blocked = store.blocked_days(plan.name, start=since, end=through)
    min_coverage = plan.data.labels.min_coverage if plan.data.labels else 1.0
    return accumulate(rows, role=role, version=ref.version, since=since, min_coverage=min_coverage, blocked=blocked)
