"""What every monitoring family has in common: the calculator protocol and the result protocol.

A family (quality, drift, performance with its label-free estimate, fairness, service, comparison) is one
package under ``families/`` holding

* ``names.py``: ``FAMILY`` (a :class:`~monitoring_pipelines.judge.metrics.Family`) and ``Metric``, a
  ``str`` enum of every metric name the family writes (the metric catalogue in ``families/catalogue.py`` is
  built from these enums; plan validation uses it);
* its result dataclass(es), satisfying :class:`FamilyResult`;
* a calculator satisfying :class:`Calculator`: ``fit`` once per model version on the reference (slow,
  cached by the ``reference_profile`` asset), ``calculate`` on one day (fast, every night). The split follows
  NannyML's ``fit(reference)`` / ``calculate(current)``;
* at most one adapter module per third-party library it uses (Evidently, Great Expectations, scikit-learn),
  which is the only place that library is imported;
* the incident context it contributes (top drifted features, worst group) as a pure function of the day's
  stored rows.

Families import ``judge``, ``data`` and ``plan``; never each other, never ``defs``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol, TypeVar, runtime_checkable

from monitoring_pipelines.judge.metrics import MetricValue


@runtime_checkable
class FamilyResult(Protocol):
    """One family's figures for one model-day."""

    def metrics(self) -> list[MetricValue]:
        """Every figure as a metric value (judged against the plan, then stored)."""
        ...

    def headline(self) -> dict[str, float | str | None]:
        """The few figures a person looks at first (asset metadata; numbers plot over partitions)."""
        ...


R_co = TypeVar("R_co", bound=FamilyResult, covariant=True)


class Calculator(Protocol[R_co]):
    """Fit on the reference once per model version; calculate one day at a time."""

    def fit(self, reference: Any) -> Calculator[R_co]:
        """Learn what the family needs from the reference; returns the fitted calculator."""
        ...

    def calculate(self, day: dt.date, *args: Any, **kwargs: Any) -> R_co:
        """The family's result for ``day``."""
        ...
