"""Metric vocabulary shared by every family: the catalogue of names, the value type, and status judging.

A *metric value* is one figure a monitoring step computed (``family``, ``metric``, ``segment``, ``value``).
The plan's thresholds turn it into a judged row (status ok / warning / critical / unknown) before it is
stored. The catalogue below is the single list of metric names; the plan validator uses it to reject a
threshold on a metric that does not exist (a typo would otherwise never fire).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


class Family(str, Enum):
    QUALITY = "quality"
    DRIFT = "drift"
    PERFORMANCE = "performance"
    PERFORMANCE_ESTIMATED = "performance_estimated"
    FAIRNESS = "fairness"
    SERVICE = "service"
    COMPARISON = "comparison"


class Status(str, Enum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return _STATUS_RANK[self]

    @classmethod
    def worst(cls, statuses) -> Status:
        statuses = list(statuses)
        return max(statuses, key=lambda s: s.rank) if statuses else cls.OK


# unknown ranks below warning: a figure that cannot be judged is reported, not alerted on.
_STATUS_RANK = {Status.OK: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.CRITICAL: 3}


CATALOGUE: dict[Family, frozenset[str]] = {
    Family.QUALITY: frozenset({"failed_checks", "blocking_failed_checks", "check_failed", "row_count", "null_share"}),
    Family.DRIFT: frozenset(
        {
            "share_of_drifted_features",
            "drifted_features",
            "feature_drift_score",
            "feature_drifted",
            "prediction_drift_score",
            "protected_drift_score",
            "protected_drifted",
        }
    ),
    Family.PERFORMANCE: frozenset(
        {
            "roc_auc",
            "pr_auc",
            "accuracy",
            "precision",
            "recall",
            "f1",
            "log_loss",
            "brier_score",
            "expected_calibration_error",
            "labelled_rows",
            "label_coverage",
            "labels_duplicate_ids",
            "labels_out_of_classes",
            "scores_out_of_range",
        }
    ),
    Family.PERFORMANCE_ESTIMATED: frozenset({"roc_auc", "accuracy", "precision", "recall", "f1", "estimated_rows"}),
    Family.FAIRNESS: frozenset(
        {
            "group_count",
            "selection_rate",
            "attribute_missing",
            "true_positive_rate",
            "false_positive_rate",
            "accuracy",
            "demographic_parity_difference",
            "demographic_parity_ratio",
            "equal_opportunity_difference",
            "equalized_odds_difference",
        }
    ),
    Family.SERVICE: frozenset(
        {
            "request_count",
            "throughput_avg_rps",
            "throughput_peak_rps",
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
            "latency_max_ms",
            "error_rate",
            "version_mismatch_rows",
        }
    ),
    # comparison rows of a candidate carry the segment "<role>=<version>" (challenger=4, previous_champion=1);
    # monitoring_pipelines/comparison.py documents every figure
    Family.COMPARISON: frozenset(
        {
            "challenger_present",
            "compared_rows",
            "served_rows",
            "prediction_agreement",
            "score_correlation",
            "labelled_rows",
            "score_drift",
            "score_drifted",
            *(
                f"{m}{suffix}"
                for m in ("roc_auc", "pr_auc", "accuracy", "f1", "log_loss", "brier_score")
                for suffix in ("", "_delta", "_delta_ci_low", "_delta_ci_high")
            ),
            "roc_auc_delta_variance",
            "roc_auc_delta_z",
            "roc_auc_delta_p_value",
            "equal_opportunity_difference_delta",
            "demographic_parity_difference_delta",
            "evidence_days",
            "evidence_rows",
            "evidence_better_days",
            "evidence_roc_auc_delta",
            "evidence_z",
            "evidence_p_value",
            "evidence_fairness_regression",
        }
    ),
}


def known_metric(family: str, metric: str) -> bool:
    try:
        return metric in CATALOGUE[Family(family)]
    except ValueError:
        return False


@dataclass(frozen=True)
class MetricValue:
    """One computed figure, before judging. ``segment`` is a feature name or a group (``sex=Female``), or ''."""

    family: Family
    metric: str
    value: float | None
    segment: str = ""

    def __post_init__(self):
        if not known_metric(self.family.value, self.metric):
            raise ValueError(
                f"metric {self.family.value}.{self.metric} is not in the catalogue (monitoring_pipelines/metrics.py)"
            )


@dataclass(frozen=True)
class Bounds:
    """Warning and critical thresholds of one metric. ``direction='max'``: values above are bad; 'min': below."""

    warning: float | None = None
    critical: float | None = None
    direction: str = "max"

    def judge(self, value: float | None) -> Status:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return Status.UNKNOWN
        if self.critical is not None and self._breaches(value, self.critical):
            return Status.CRITICAL
        if self.warning is not None and self._breaches(value, self.warning):
            return Status.WARNING
        return Status.OK

    def _breaches(self, value: float, limit: float) -> bool:
        return value > limit if self.direction == "max" else value < limit


NO_BOUNDS = Bounds()
