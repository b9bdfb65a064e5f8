"""The metric catalogue: every metric name of every family, built from the families' ``names`` enums.

Importing this module registers every family's names (``judge.metrics.register_metrics``); plan validation
uses it to refuse a threshold on a metric that does not exist (a typo would otherwise never fire).
"""

from types import MappingProxyType

from monitoring_pipelines.families.comparison import names as comparison
from monitoring_pipelines.families.drift import names as drift
from monitoring_pipelines.families.fairness import names as fairness
from monitoring_pipelines.families.performance import names as performance
from monitoring_pipelines.families.quality import names as quality
from monitoring_pipelines.families.service import names as service
from monitoring_pipelines.judge.metrics import Family

CATALOGUE: MappingProxyType[Family, frozenset[str]] = MappingProxyType(
    {
        quality.FAMILY: frozenset(m.value for m in quality.Metric),
        drift.FAMILY: frozenset(m.value for m in drift.Metric),
        performance.FAMILY: frozenset(m.value for m in performance.Metric),
        performance.ESTIMATED_FAMILY: frozenset(m.value for m in performance.EstimatedMetric),
        fairness.FAMILY: frozenset(m.value for m in fairness.Metric),
        service.FAMILY: frozenset(m.value for m in service.Metric),
        comparison.FAMILY: frozenset(m.value for m in comparison.Metric),
    }
)
