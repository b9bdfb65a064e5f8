"""The quality family's typed result: one outcome per check of one day's batch."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitoring_pipelines.families.quality.checks import CheckSpec
from monitoring_pipelines.families.quality.names import FAMILY, Metric
from monitoring_pipelines.judge.metrics import MetricValue


@dataclass(frozen=True)
class CheckOutcome:
    spec: CheckSpec
    passed: bool
    expectation: str
    expected: dict
    observed: float | None
    unexpected_count: int | None
    unexpected_share: float | None
    examples: list
    error: str | None = None
    observed_text: str | None = None  # a non-numeric observed value (a dtype, a set of values), shortened
    result: dict = field(default_factory=dict, repr=False)  # GX's result fields (SUMMARY format)


@dataclass(frozen=True)
class QualityResult:
    outcomes: list[CheckOutcome]
    row_count: int
    null_shares: dict[str, float]

    @property
    def failed(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def blocking_failed(self) -> list[CheckOutcome]:
        return [o for o in self.failed if o.spec.blocking]

    def metrics(self) -> list[MetricValue]:
        out = [MetricValue(FAMILY, Metric.CHECK_FAILED.value, float(not o.passed), o.spec.name) for o in self.outcomes]
        out += [MetricValue(FAMILY, Metric.NULL_SHARE.value, v, c) for c, v in self.null_shares.items()]
        out += [
            MetricValue(FAMILY, Metric.ROW_COUNT.value, float(self.row_count)),
            MetricValue(FAMILY, Metric.FAILED_CHECKS.value, float(len(self.failed))),
            MetricValue(FAMILY, Metric.BLOCKING_FAILED_CHECKS.value, float(len(self.blocking_failed))),
        ]
        return out

    def headline(self) -> dict[str, float | str | None]:
        """The day's row count and how many checks failed (blocking ones apart)."""
        return {
            Metric.ROW_COUNT.value: float(self.row_count),
            Metric.FAILED_CHECKS.value: float(len(self.failed)),
            Metric.BLOCKING_FAILED_CHECKS.value: float(len(self.blocking_failed)),
        }
