"""What the fairness family adds to an incident: the group served worst behind a breached figure."""

from __future__ import annotations

from typing import Any

import pandas as pd

from monitoring_pipelines.families.fairness.names import FAMILY, Metric
from monitoring_pipelines.judge.metrics import Status
from monitoring_pipelines.store.metric_values import number

# the rate behind each gap between groups, and whether a low rate is the worse one
GAP_RATE: dict[str, tuple[str, bool]] = {
    Metric.DEMOGRAPHIC_PARITY_DIFFERENCE.value: (Metric.SELECTION_RATE.value, True),
    Metric.DEMOGRAPHIC_PARITY_RATIO.value: (Metric.SELECTION_RATE.value, True),
    Metric.EQUAL_OPPORTUNITY_DIFFERENCE.value: (Metric.TRUE_POSITIVE_RATE.value, True),
    Metric.EQUALIZED_ODDS_DIFFERENCE.value: (Metric.TRUE_POSITIVE_RATE.value, True),
}


def worst_group(rows: pd.DataFrame, metric: str, segment: str, value: float | None) -> dict[str, Any] | None:
    """``{"group", "metric", "value"}`` of the group served worst behind the breached ``metric`` of ``segment``
    (its worst segment, of value ``value``) in the day's stored ``rows``: for a per-group metric
    (``sex=Female``) the segment itself; for a gap over an attribute (``sex``, ``sex&race``), the group of that
    attribute with the lowest (or highest) underlying rate. None when the rows do not tell."""
    if "=" in segment:
        return {"group": segment, "metric": metric, "value": number(value)}
    rate, low_is_worse = GAP_RATE.get(metric, (None, True))
    if rate is None:
        return None
    attrs = segment.split("&")
    groups = rows[
        (rows["family"] == FAMILY.value)
        & (rows["metric"] == rate)
        & rows["value"].notna()
        & (rows["status"] != Status.UNKNOWN.value)
    ]
    groups = groups[groups["segment"].map(lambda g: [p.partition("=")[0] for p in g.split("&")] == attrs)]
    if groups.empty:
        return None
    pick = groups.loc[groups["value"].idxmin() if low_is_worse else groups["value"].idxmax()]
    return {"group": pick["segment"], "metric": rate, "value": float(pick["value"])}
