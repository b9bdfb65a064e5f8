"""Metric vocabulary shared by every family: the catalogue of names, the value type, and status judging.

A *metric value* is one figure a monitoring step computed (``family``, ``metric``, ``segment``, ``value``).
The plan's thresholds turn it into a judged row (status ok / warning / critical / unknown) before it is
stored. The catalogue is the families' ``names`` enums, registered here (``register_metrics``); the plan validator uses it to reject a
threshold on a metric that does not exist (a typo would otherwise never fire).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
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


# family -> its metric names. Each family registers its own names (``families/<family>/names.py`` calls
# ``register_metrics`` at import); ``families/catalogue.py`` imports them all.
_REGISTERED: dict[Family, frozenset[str]] = {}


def register_metrics(family: Family, names: Iterable) -> None:
    """Add a family's metric names (an enum of ``str`` members, or strings) to the catalogue."""
    _REGISTERED[family] = _REGISTERED.get(family, frozenset()) | frozenset(getattr(n, "value", n) for n in names)


def known_metric(family: str, metric: str) -> bool:
    """Whether ``family.metric`` is a registered metric name (import ``families.catalogue`` to register all)."""
    try:
        return metric in _REGISTERED.get(Family(family), frozenset())
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
                f"metric {self.family.value}.{self.metric} is not in the catalogue (monitoring_pipelines/families/<family>/names.py)"
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
