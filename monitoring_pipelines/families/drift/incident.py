"""What the drift family adds to an incident: the features that drifted most on the day."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from monitoring_pipelines.families.drift.names import FAMILY, Metric
from monitoring_pipelines.store.metric_values import number


def top_drifted_features(rows: pd.DataFrame, n: int = 5) -> list[dict[str, Any]]:
    """``[{"feature", "score", "drifted"}]`` of the day's stored ``rows``: drifted features first, then by drift
    score (the default tests are distances: higher is worse), at most ``n``."""
    drift = rows[rows["family"] == FAMILY.value]
    flags = drift[drift["metric"] == Metric.FEATURE_DRIFTED.value].set_index("segment")["value"]
    scores = drift[drift["metric"] == Metric.FEATURE_DRIFT_SCORE.value].set_index("segment")["value"]
    items = [
        {"feature": s, "score": number(scores.get(s)), "drifted": bool(flags.get(s, 0) == 1)}
        for s in sorted(set(flags.index) | set(scores.index))
    ]
    items.sort(key=lambda i: (not i["drifted"], -(i["score"] if i["score"] is not None else -math.inf)))
    return items[:n]
