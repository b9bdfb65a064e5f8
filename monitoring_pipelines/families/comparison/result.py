"""Results of the comparison family: one candidate against the champion on one day, the day's whole comparison
(stored per model version), and a candidate's evidence pooled over days (with the promotion rule's verdict)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from monitoring_pipelines.families.comparison.names import (
    CHALLENGER_ROLE,
    CHAMPION_ROLE,
    FAMILY,
    METRICS,
    Metric,
    delta_name,
    fairness_segment,
    segment,
)
from monitoring_pipelines.families.comparison.stats import DeLong
from monitoring_pipelines.judge.metrics import MetricValue
from monitoring_pipelines.plan.schema import PromoteAction


@dataclass(frozen=True)
class ScoreDrift:
    """Drift of one model's scores on the day against the scores in its own reference data."""

    role: str
    version: str
    method: str | None
    score: float | None
    threshold: float | None
    drifted: bool | None
    reason: str | None = None  # why it could not be computed

    def values(self) -> list[MetricValue]:
        seg = segment(self.role, self.version)
        return [
            MetricValue(FAMILY, Metric.SCORE_DRIFT.value, self.score, seg),
            MetricValue(FAMILY, Metric.SCORE_DRIFTED.value, None if self.drifted is None else float(self.drifted), seg),
        ]


@dataclass(frozen=True)
class CandidateComparison:
    """One candidate (challenger or previous champion) against the champion on the day's rows."""

    role: str
    version: str
    compared_rows: int
    prediction_agreement: float | None
    score_correlation: float | None
    labelled_rows: int = 0
    champion: dict = field(default_factory=dict)  # metric -> champion's value on the labelled rows
    candidate: dict = field(default_factory=dict)  # metric -> candidate's value
    intervals: dict = field(default_factory=dict)  # metric -> (low, high) of the delta
    delong: DeLong | None = None
    fairness_delta: dict = field(default_factory=dict)  # (attribute, gap metric) -> candidate - champion
    score_drift: ScoreDrift | None = None

    @property
    def segment(self) -> str:
        return segment(self.role, self.version)

    def delta(self, metric: str) -> float | None:
        a, b = self.champion.get(metric), self.candidate.get(metric)
        return None if a is None or b is None else b - a

    def values(self) -> list[MetricValue]:
        f, seg = FAMILY, self.segment
        out = [
            MetricValue(f, Metric.PREDICTION_AGREEMENT.value, self.prediction_agreement, seg),
            MetricValue(f, Metric.SCORE_CORRELATION.value, self.score_correlation, seg),
            MetricValue(f, Metric.LABELLED_ROWS.value, float(self.labelled_rows), seg),
        ]
        for k in METRICS:
            low, high = self.intervals.get(k, (None, None))
            out += [
                MetricValue(f, k, self.candidate.get(k), seg),
                MetricValue(f, delta_name(k), self.delta(k), seg),
                MetricValue(f, Metric(f"{k}_delta_ci_low").value, low, seg),
                MetricValue(f, Metric(f"{k}_delta_ci_high").value, high, seg),
            ]
        d = self.delong
        out += [
            MetricValue(f, Metric.ROC_AUC_DELTA_VARIANCE.value, d.variance if d else None, seg),
            MetricValue(f, Metric.ROC_AUC_DELTA_Z.value, d.z if d and np.isfinite(d.z) else None, seg),
            MetricValue(f, Metric.ROC_AUC_DELTA_P_VALUE.value, d.p_value if d else None, seg),
        ]
        for (attribute, gap), value in self.fairness_delta.items():
            out.append(MetricValue(f, delta_name(gap), value, fairness_segment(self.role, self.version, attribute)))
        if self.score_drift is not None:
            out += self.score_drift.values()
        return out


@dataclass(frozen=True)
class ComparisonResult:
    model: str
    day: dt.date
    champion_version: str
    compared_rows: int
    served_versions: dict  # version -> served rows (from the log's model_version column)
    champion_score_drift: ScoreDrift | None
    candidates: tuple[CandidateComparison, ...] = ()
    evidence: Evidence | None = None
    champion_alias: str = CHAMPION_ROLE  # 'served' when the version that served the day is no longer champion

    def candidate(self, role: str) -> CandidateComparison | None:
        return next((c for c in self.candidates if c.role == role), None)

    @property
    def challenger_version(self) -> str | None:
        c = self.candidate(CHALLENGER_ROLE)
        return c.version if c else None

    def values_by_model(self) -> dict[tuple[str, str], list[MetricValue]]:
        """(version, alias) -> the values computed for that model version (how they are stored)."""
        f = FAMILY
        champ = [
            MetricValue(f, Metric.CHALLENGER_PRESENT.value, float(self.challenger_version is not None)),
            MetricValue(f, Metric.COMPARED_ROWS.value, float(self.compared_rows)),
        ]
        champ += [
            MetricValue(f, Metric.SERVED_ROWS.value, float(rows), f"version={v}")
            for v, rows in self.served_versions.items()
        ]
        if self.champion_score_drift is not None:
            champ += self.champion_score_drift.values()
        out = {(self.champion_version, self.champion_alias): champ}
        for c in self.candidates:
            values = c.values()
            if c.role == CHALLENGER_ROLE and self.evidence is not None:
                values += self.evidence.values()
            out.setdefault((c.version, c.role), []).extend(values)
        return out

    def headline(self) -> dict[str, float | str | None]:
        out: dict[str, float | str | None] = {"compared_rows": float(self.compared_rows)}
        for c in self.candidates:
            p = c.role
            out |= {
                f"{p}.prediction_agreement": c.prediction_agreement,
                f"{p}.labelled_rows": float(c.labelled_rows),
                f"{p}.roc_auc_delta": c.delta("roc_auc"),
                f"{p}.roc_auc_delta_ci_low": c.intervals.get("roc_auc", (None, None))[0],
                f"{p}.roc_auc_delta_ci_high": c.intervals.get("roc_auc", (None, None))[1],
                f"{p}.delong_p_value": c.delong.p_value if c.delong else None,
            }
        if self.evidence is not None:
            out |= self.evidence.headline()
        return out


@dataclass(frozen=True)
class DayEvidence:
    day: dt.date
    rows: int
    delta: float
    z: float


@dataclass(frozen=True)
class Evidence:
    """What the stored daily comparisons of one candidate version say, pooled over its evidence days."""

    role: str
    version: str
    since: dt.date | None  # first day that may count (None: every compared day)
    days: tuple[DayEvidence, ...]
    skipped: dict  # day -> why it does not count
    fairness_regression: dict  # "attribute.gap" -> pooled candidate - champion (positive = wider gap)

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.days)

    @property
    def better_days(self) -> int:
        return sum(1 for d in self.days if d.delta > 0)

    @property
    def last_day(self) -> dt.date | None:
        return self.days[-1].day if self.days else None

    @property
    def delta(self) -> float | None:
        return sum(d.rows * d.delta for d in self.days) / self.rows if self.days else None

    @property
    def z(self) -> float | None:
        if not self.days:
            return None
        return float(sum(np.sqrt(d.rows) * d.z for d in self.days) / np.sqrt(self.rows))

    @property
    def p_value(self) -> float | None:
        """One-sided: the probability of a combined Z this high if the candidate were not better."""
        return None if self.z is None else float(norm.sf(self.z))

    @property
    def worst_fairness_regression(self) -> float | None:
        values = [v for v in self.fairness_regression.values() if v is not None]
        return max(values) if values else None

    def refusals(self, rule: PromoteAction) -> list[str]:
        """Why the plan's promotion rule (``actions.promote``) does not hold; [] when it does."""
        out = []
        if len(self.days) < rule.min_days:
            out.append(f"{len(self.days)} labelled day(s) of evidence, the plan needs {rule.min_days}")
        if self.delta is not None and self.delta < rule.min_uplift:
            out.append(f"pooled {rule.metric} delta {self.delta:+.4f} is below min_uplift {rule.min_uplift}")
        if self.p_value is not None and self.p_value >= rule.significance:
            out.append(f"not significant: one-sided p = {self.p_value:.3g} >= {rule.significance}")
        worst = self.worst_fairness_regression
        if worst is not None and worst > rule.max_fairness_regression:
            which = max(
                (k for k, v in self.fairness_regression.items() if v is not None),
                key=lambda k: self.fairness_regression[k],
            )
            out.append(
                f"fairness regression {which} +{worst:.3f} exceeds max_fairness_regression "
                f"{rule.max_fairness_regression}"
            )
        return out

    def describe(self) -> str:
        if not self.days:
            return f"{self.role} v{self.version}: no labelled day of evidence yet"
        return (
            f"{self.role} v{self.version}: better on {self.better_days} of {len(self.days)} labelled days "
            f"({self.days[0].day}..{self.last_day}, {self.rows} rows), pooled roc_auc delta {self.delta:+.4f}, "
            f"Stouffer z {self.z:.2f}, one-sided p {self.p_value:.3g}"
        )

    def values(self) -> list[MetricValue]:
        f, seg = FAMILY, segment(self.role, self.version)
        return [
            MetricValue(f, Metric.EVIDENCE_DAYS.value, float(len(self.days)), seg),
            MetricValue(f, Metric.EVIDENCE_ROWS.value, float(self.rows), seg),
            MetricValue(f, Metric.EVIDENCE_BETTER_DAYS.value, float(self.better_days), seg),
            MetricValue(f, Metric.EVIDENCE_ROC_AUC_DELTA.value, self.delta, seg),
            MetricValue(f, Metric.EVIDENCE_Z.value, self.z, seg),
            MetricValue(f, Metric.EVIDENCE_P_VALUE.value, self.p_value, seg),
            MetricValue(f, Metric.EVIDENCE_FAIRNESS_REGRESSION.value, self.worst_fairness_regression, seg),
        ]

    def headline(self) -> dict[str, float | str | None]:
        return {
            "evidence_days": float(len(self.days)),
            "evidence_rows": float(self.rows),
            "evidence_better_days": float(self.better_days),
            "evidence_roc_auc_delta": self.delta,
            "evidence_p_value": self.p_value,
            "evidence_fairness_regression": self.worst_fairness_regression,
            "evidence": self.describe(),
        }
