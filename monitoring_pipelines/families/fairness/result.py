"""Results of the fairness family: per-group figures and the gaps between groups, per attribute segment."""

from __future__ import annotations

from dataclasses import dataclass

from monitoring_pipelines.families.fairness.names import FAMILY, Metric
from monitoring_pipelines.judge.metrics import MetricValue

GAP_METRICS = tuple(
    m.value
    for m in (
        Metric.DEMOGRAPHIC_PARITY_DIFFERENCE,
        Metric.DEMOGRAPHIC_PARITY_RATIO,
        Metric.EQUAL_OPPORTUNITY_DIFFERENCE,
        Metric.EQUALIZED_ODDS_DIFFERENCE,
    )
)
GROUP_METRICS = tuple(
    m.value
    for m in (
        Metric.GROUP_COUNT,
        Metric.SELECTION_RATE,
        Metric.TRUE_POSITIVE_RATE,
        Metric.FALSE_POSITIVE_RATE,
        Metric.ACCURACY,
    )
)


@dataclass(frozen=True)
class GroupFigures:
    """One group of one attribute (or of the intersection)."""

    attribute: str
    segment: str
    group_count: int
    positives: int
    negatives: int
    selection_rate: float
    true_positive_rate: float | None
    false_positive_rate: float | None
    accuracy: float
    small: bool


@dataclass(frozen=True)
class Disparity:
    """Gaps between the compared (large enough) groups of one attribute segment."""

    attribute: str
    compared_groups: tuple[str, ...]
    excluded_groups: tuple[str, ...]
    demographic_parity_difference: float | None = None
    demographic_parity_ratio: float | None = None
    equal_opportunity_difference: float | None = None
    equalized_odds_difference: float | None = None
    worst_groups: tuple[tuple[str, str | None], ...] = ()

    def worst_group(self, metric: str) -> str | None:
        return dict(self.worst_groups).get(metric)


@dataclass(frozen=True)
class FairnessResult:
    """Per-group figures and per-attribute gaps. ``attributes`` lists the attribute segments in order."""

    rows: int
    skipped_rows: int
    min_group_size: int
    attributes: tuple[str, ...]
    groups: tuple[GroupFigures, ...]
    disparities: tuple[Disparity, ...]
    partial: bool
    partial_reason: str | None

    @property
    def small_groups(self) -> tuple[str, ...]:
        """Segments of the groups below ``min_group_size``: reported, excluded from gaps, not to be alerted on."""
        return tuple(g.segment for g in self.groups if g.small)

    def disparity(self, attribute: str) -> Disparity:
        return next(d for d in self.disparities if d.attribute == attribute)

    def metrics(self) -> list[MetricValue]:
        out = []
        for g in self.groups:
            out += [MetricValue(FAMILY, m, _float(getattr(g, m)), g.segment) for m in GROUP_METRICS]
        for d in self.disparities:
            out += [MetricValue(FAMILY, m, getattr(d, m), d.attribute) for m in GAP_METRICS]
        return out

    def headline(self) -> dict[str, float | str | None]:
        out: dict[str, float | str | None] = {"rows": self.rows}
        for d in self.disparities:
            for metric, short in (
                ("demographic_parity_difference", "demographic_parity"),
                ("equal_opportunity_difference", "equal_opportunity"),
            ):
                out[f"{d.attribute}.{metric}"] = getattr(d, metric)
                out[f"{d.attribute}.{short}_worst_group"] = d.worst_group(metric)
            out[f"{d.attribute}.equalized_odds_difference"] = d.equalized_odds_difference
        out["small_groups"] = ", ".join(self.small_groups) or None
        out["partial_reason"] = self.partial_reason
        return out


def attribute_missing(attributes: list[str]) -> list[MetricValue]:
    """The row saying a protected attribute is missing from the day's log (reported, never skipped)."""
    return [MetricValue(FAMILY, Metric.ATTRIBUTE_MISSING.value, 1.0, a) for a in attributes]


def _float(value) -> float | None:
    return None if value is None else float(value)
