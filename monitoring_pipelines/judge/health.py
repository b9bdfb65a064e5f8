"""Judging figures against the plan and summarising a model's day.

``judge`` turns computed ``MetricValue``s into stored rows with thresholds and a status; ``summarise``
reads a day's stored rows back and gives the worst status per family and the breaches behind it.

A figure is judged in two steps (docs/alerts-statuses.md):

1. **raw status**: against the threshold's absolute levels and its relative rules (a deviation from the
   model's own baseline: the values of the same metric and segment on the ``baseline_days`` days before). All
   levels that point the same way combine into the tightest one, so each stored row carries the *effective*
   warning and critical levels of its day and explains its status by itself.
2. **status**: the raw status, held back by the threshold's persistence rule (``k`` of the last ``m`` days)
   until the breach has lasted. A held-back breach is stored as ``ok`` (its value lies beyond its stored level)
   and listed with its count (``warning on 1 of the last 3 days, 2 needed``) by ``assess_rows``/``summarise``.

Everything here is pure: the history comes in as stored rows (``read_history`` fetches the window a plan
needs), so the same figures and history always give the same statuses.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from monitoring_pipelines.judge.metrics import Bounds, Family, MetricValue, Status
from monitoring_pipelines.plan.schema import MonitoringPlan, Threshold
from monitoring_pipelines.store.metric_store import METRIC_COLUMNS, MetricRow, MetricStore

_OPPOSITE = {"max": "min", "min": "max"}
# a baseline whose standard deviation is below this cannot scale a z-score
_MIN_STD = 1e-12

Key = tuple[str, str, str]  # (family, metric, segment)
Past = Mapping[dt.date, tuple[float | None, str]]  # earlier day -> (stored value, stored status)


@dataclass(frozen=True)
class Baseline:
    """The model's own recent history of one metric and segment: ``days`` values before the judged day."""

    days: int
    mean: float | None
    std: float | None  # sample standard deviation (ddof=1); None below 2 values

    @classmethod
    def of(cls, values: list[float]) -> Baseline:
        return cls(
            len(values),
            statistics.fmean(values) if values else None,
            statistics.stdev(values) if len(values) >= 2 else None,
        )


@dataclass(frozen=True)
class Assessment:
    """How one figure was judged.

    ``bounds`` are the effective levels of the side that judged it (stored as the row's thresholds); ``rules``
    names the rules behind the raw status (``absolute``, ``ratio``, ``zscore``; empty when ok); ``breach_days``
    of the last ``window_days`` days breached the raw level (persistence; None without a persistence rule).
    """

    raw: Status
    status: Status
    bounds: Bounds
    rules: tuple[str, ...] = ()
    baseline: Baseline | None = None
    breach_days: int | None = None
    window_days: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def held_back(self) -> bool:
        """A raw breach that the persistence rule kept below its level."""
        return self.raw.rank > self.status.rank and self.raw in (Status.WARNING, Status.CRITICAL)

    @property
    def persistence(self) -> str:
        return "" if self.breach_days is None else f"{self.breach_days} of {self.window_days}"

    @property
    def note(self) -> str:
        return "; ".join(self.notes)


_NO_JUDGEMENT = Assessment(Status.OK, Status.OK, Bounds())


def _beyond(value: float, limit: float, direction: str) -> bool:
    return value > limit if direction == "max" else value < limit


def _candidates(
    threshold: Threshold, direction: str, baseline: Baseline | None
) -> list[tuple[str, float | None, float | None]]:
    """(rule, warning level, critical level) of every rule that points in ``direction``; relative rules only
    with a ``baseline`` that can judge."""
    out = []
    if direction == threshold.direction and (threshold.warning is not None or threshold.critical is not None):
        out.append(("absolute", threshold.warning, threshold.critical))
    rel = threshold.relative
    if rel is not None and baseline is not None:
        sign = 1.0 if direction == "max" else -1.0
        scales = []
        if rel.ratio is not None:
            scales.append(("ratio", rel.ratio, abs(baseline.mean)))
        if rel.zscore is not None and baseline.std is not None and baseline.std > _MIN_STD:
            scales.append(("zscore", rel.zscore, baseline.std))
        for name, levels, scale in scales:
            out.append(
                (
                    name,
                    None if levels.warning is None else baseline.mean + sign * levels.warning * scale,
                    None if levels.critical is None else baseline.mean + sign * levels.critical * scale,
                )
            )
    return out


def _side(
    threshold: Threshold, direction: str, baseline: Baseline | None, value: float
) -> tuple[Status, Bounds, tuple[str, ...]] | None:
    """Judge ``value`` on one side: the tightest level of each severity wins (it fires first)."""
    rules = _candidates(threshold, direction, baseline)
    if not rules:
        return None
    tightest = min if direction == "max" else max
    warnings = [w for _, w, _ in rules if w is not None]
    criticals = [c for _, _, c in rules if c is not None]
    bounds = Bounds(tightest(warnings) if warnings else None, tightest(criticals) if criticals else None, direction)
    status = bounds.judge(value)
    level = {Status.WARNING: 1, Status.CRITICAL: 2}.get(status)
    hit = tuple(
        name
        for name, *limits in rules
        if level is not None and limits[level - 1] is not None and _beyond(value, limits[level - 1], direction)
    )
    return status, bounds, hit


def _raw(
    threshold: Threshold, value: float, earlier: list[float]
) -> tuple[Status, Bounds, Baseline | None, tuple[str, ...], tuple[str, ...]]:
    """Raw status of ``value`` given the baseline values ``earlier``: (status, bounds, baseline, rules, notes)."""
    notes: list[str] = []
    rel = threshold.relative
    baseline = Baseline.of(earlier) if rel is not None else None
    usable = baseline
    if rel is not None and baseline.days < rel.min_days:
        usable = None
        absolute = threshold.warning is not None or threshold.critical is not None
        notes.append(
            f"baseline has {baseline.days} of the {rel.min_days} days the relative rule needs: "
            + ("judged on the absolute levels only" if absolute else "cannot judge")
        )
    elif rel is not None and rel.zscore is not None and (baseline.std is None or baseline.std <= _MIN_STD):
        notes.append(f"baseline standard deviation is 0 over {baseline.days} days: the zscore rule cannot judge")
    sides = [threshold.direction] + ([_OPPOSITE[threshold.direction]] if rel is not None and rel.two_sided else [])
    judged = [j for j in (_side(threshold, d, usable, value) for d in sides) if j is not None]
    if not judged:
        return Status.UNKNOWN, Bounds(direction=threshold.direction), baseline, (), tuple(notes)
    # the worse side decides; on a tie the threshold's own direction is reported
    status, bounds, rules = max(judged, key=lambda j: j[0].rank)
    return status, bounds, baseline, rules, tuple(notes)


def _baseline_values(past: Past, day: dt.date, days: int) -> list[float]:
    out = []
    for i in range(days, 0, -1):
        value, _ = past.get(day - dt.timedelta(days=i), (None, ""))
        if value is not None and not math.isnan(value):
            out.append(value)
    return out


def assess(
    threshold: Threshold | None, day: dt.date, value: float | None, past: Past, *, unjudged: bool = False
) -> Assessment:
    """Judge ``value`` of ``day`` against ``threshold`` given the stored ``past`` of the same metric and segment.

    ``unjudged``: the figure is reported but never judged (e.g. a fairness group below the minimum size).
    Earlier days count as breached for persistence when their own raw status (recomputed from their value and
    their own baseline, under today's plan) reached the level; days without a value, or stored as unknown
    (unjudged), do not.
    """
    if value is not None and math.isnan(value):
        value = None
    if threshold is None:
        return _NO_JUDGEMENT if value is not None else Assessment(Status.UNKNOWN, Status.UNKNOWN, Bounds())
    if value is None:
        return Assessment(Status.UNKNOWN, Status.UNKNOWN, threshold.bounds, notes=("no value",))
    if unjudged:
        return Assessment(
            Status.UNKNOWN,
            Status.UNKNOWN,
            threshold.bounds,
            notes=("reported, not judged (e.g. a group below the minimum size)",),
        )
    n = threshold.relative.baseline_days if threshold.relative else 0
    raw, bounds, baseline, rules, notes = _raw(threshold, value, _baseline_values(past, day, n))
    p = threshold.persistence
    if p is None or raw not in (Status.WARNING, Status.CRITICAL):
        return Assessment(raw, raw, bounds, rules, baseline, None, None, notes)
    earlier = []
    for i in range(p.m - 1, 0, -1):
        d = day - dt.timedelta(days=i)
        v, stored = past.get(d, (None, ""))
        unusable = v is None or math.isnan(v) or stored == Status.UNKNOWN.value
        earlier.append(Status.OK if unusable else _raw(threshold, v, _baseline_values(past, d, n))[0])
    # ranks: ok < unknown < warning < critical, so "at least the level" never counts an unknown day
    hits = {
        level: 1 + sum(s.rank >= level.rank for s in earlier)
        for level in (Status.CRITICAL, Status.WARNING)
        if raw.rank >= level.rank
    }
    status = next((level for level, count in hits.items() if count >= p.k), Status.OK)
    if status is not raw:
        notes = (*notes, f"{raw.value} on {hits[raw]} of the last {p.m} days ({p.k} needed): held back")
    return Assessment(raw, status, bounds, rules, baseline, hits[raw if status is Status.OK else status], p.m, notes)


def _past_index(history: pd.DataFrame, day: dt.date) -> dict[Key, dict[dt.date, tuple[float | None, str]]]:
    """Stored rows before ``day`` by (family, metric, segment) and day."""
    index: dict[Key, dict[dt.date, tuple[float | None, str]]] = {}
    if history is None or history.empty:
        return index
    for r in history.itertuples(index=False):
        if r.partition_date >= day:
            continue
        value = None if pd.isna(r.value) else float(r.value)
        index.setdefault((r.family, r.metric, r.segment), {})[r.partition_date] = (value, r.status)
    return index


def _threshold(plan: MonitoringPlan, family: str, metric: str) -> Threshold | None:
    return plan.thresholds.get(f"{family}.{metric}")


def judge(
    plan: MonitoringPlan,
    day: dt.date,
    values: list[MetricValue],
    *,
    model_version: str,
    alias: str,
    run_id: str,
    history: pd.DataFrame,
    unjudged_segments: frozenset[str] = frozenset(),
) -> list[MetricRow]:
    """Attach the plan's thresholds and a status to every value.

    ``history``: the model's stored rows of the days before ``day`` that the plan's relative and persistence
    rules read (``read_history``); rows of other days are ignored. Values whose segment is in
    ``unjudged_segments`` (e.g. fairness groups below the minimum size) keep their figure but get status
    unknown, so they are reported and never alerted on. The stored thresholds are the effective levels of the
    day (absolute and relative combined, see the module docstring).
    """
    now = dt.datetime.now(dt.UTC)
    past = _past_index(history, day)
    rows = []
    for v in values:
        t = _threshold(plan, v.family.value, v.metric)
        a = assess(
            t,
            day,
            v.value,
            past.get((v.family.value, v.metric, v.segment), {}),
            unjudged=v.segment in unjudged_segments,
        )
        b = a.bounds
        limited = b.warning is not None or b.critical is not None
        rows.append(
            MetricRow(
                model=plan.name,
                model_version=str(model_version),
                alias=alias,
                partition_date=day,
                family=v.family.value,
                metric=v.metric,
                segment=v.segment,
                value=v.value,
                warning_threshold=b.warning,
                critical_threshold=b.critical,
                direction=b.direction if limited else None,
                status=a.status.value,
                run_id=run_id,
                computed_at=now,
            )
        )
    return rows


def history_days(plan: MonitoringPlan, families: list[str] | None = None) -> int:
    """How many days before a judged day the plan's rules read (0: no relative or persistence rule)."""
    return max(
        (t.history_days for k, t in plan.thresholds.items() if families is None or k.partition(".")[0] in families),
        default=0,
    )


def read_history(
    store: MetricStore, plan: MonitoringPlan, day: dt.date, families: list[str] | None = None
) -> pd.DataFrame:
    """The stored rows the plan's relative and persistence rules need to judge ``day`` (of ``families``, or all):
    for each such threshold, its metric on the ``history_days`` days before ``day``."""
    frames = []
    for key, t in sorted(plan.thresholds.items()):
        family, _, metric = key.partition(".")
        if t.history_days == 0 or (families is not None and family not in families):
            continue
        frames.append(
            store.rows(
                plan.name,
                family=family,
                metric=metric,
                start=day - dt.timedelta(days=t.history_days),
                end=day - dt.timedelta(days=1),
            )
        )
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(METRIC_COLUMNS))


def assess_rows(plan: MonitoringPlan, day: dt.date, rows: pd.DataFrame, history: pd.DataFrame) -> dict[Key, Assessment]:
    """Re-assess a day's stored rows (to explain them: baseline, persistence count, held-back breaches).

    A row stored ``unknown`` that the rules could judge was written unjudged (e.g. a small fairness group) and
    is assessed so again. Only rows with a threshold are returned.
    """
    past = _past_index(history, day)
    out: dict[Key, Assessment] = {}
    if rows.empty:
        return out
    for r in rows.itertuples(index=False):
        t = _threshold(plan, r.family, r.metric)
        if t is None:
            continue
        value = None if pd.isna(r.value) else float(r.value)
        key = (r.family, r.metric, r.segment)
        a = assess(t, day, value, past.get(key, {}))
        if r.status == Status.UNKNOWN.value and a.raw is not Status.UNKNOWN:  # it was written unjudged
            a = assess(t, day, value, past.get(key, {}), unjudged=True)
        out[key] = a
    return out


@dataclass(frozen=True)
class Breach:
    family: str
    metric: str
    segment: str
    value: float | None
    status: Status
    threshold: float | None
    direction: str | None = None
    rules: tuple[str, ...] = ()  # absolute / ratio / zscore: what put the value beyond its level
    baseline_mean: float | None = None
    baseline_days: int | None = None
    persistence: str = ""  # "2 of 3": breached days of the persistence window
    note: str = ""

    def describe(self) -> str:
        seg = f"[{self.segment}]" if self.segment else ""
        how = f", {'+'.join(self.rules)}" if self.rules else ""
        base = (
            f", baseline {self.baseline_mean:.4g} over {self.baseline_days} days"
            if self.baseline_mean is not None
            else ""
        )
        pers = f", on {self.persistence} days" if self.persistence else ""
        value = "None" if self.value is None else f"{self.value:.4g}"
        return f"{self.family}.{self.metric}{seg} = {value} ({self.status.value}, threshold {self.threshold}{how}{base}{pers})"


@dataclass(frozen=True)
class DaySummary:
    model: str
    day: dt.date
    family_status: dict[str, Status]
    breaches: list[Breach]
    held_back: list[Breach] = field(default_factory=list)  # raw breaches the persistence rule kept ok (or lower)

    @property
    def status(self) -> Status:
        return Status.worst(self.family_status.values())


def as_breach(r, status: Status, a: Assessment | None) -> Breach:
    """A stored row (namedtuple of store.rows) at ``status`` as a Breach, explained by its assessment if given."""
    if a is None:
        limit = r.critical_threshold if status is Status.CRITICAL else r.warning_threshold
        return Breach(
            r.family, r.metric, r.segment, r.value, status, None if pd.isna(limit) else float(limit), r.direction
        )
    limit = a.bounds.critical if status is Status.CRITICAL else a.bounds.warning
    return Breach(
        r.family,
        r.metric,
        r.segment,
        None if pd.isna(r.value) else float(r.value),
        status,
        limit,
        a.bounds.direction,
        a.rules,
        a.baseline.mean if a.baseline else None,
        a.baseline.days if a.baseline else None,
        a.persistence,
        a.note,
    )


def summarise(
    plan: MonitoringPlan, day: dt.date, rows: pd.DataFrame, assessments: Mapping[Key, Assessment] | None = None
) -> DaySummary:
    """Worst status per family of the plan's families, every warning/critical row (the breaches), and, given
    ``assessments`` (``assess_rows``), how each breach was judged and which raw breaches were held back."""
    family_status: dict[str, Status] = {}
    breaches: list[Breach] = []
    held: list[Breach] = []
    assessments = assessments or {}
    for fam in Family:
        sub = rows[rows["family"] == fam.value] if len(rows) else rows
        family_status[fam.value] = Status.worst(Status(s) for s in sub["status"]) if len(sub) else Status.UNKNOWN
        for r in sub.itertuples():
            st = Status(r.status)
            a = assessments.get((r.family, r.metric, r.segment))
            if st in (Status.WARNING, Status.CRITICAL):
                breaches.append(as_breach(r, st, a))
            if a is not None and a.held_back and a.raw.rank > st.rank:
                held.append(as_breach(r, a.raw, a))
    order = lambda b: (-b.status.rank, b.family, b.metric, b.segment)  # noqa: E731
    breaches.sort(key=order)
    held.sort(key=order)
    return DaySummary(plan.name, day, family_status, breaches, held)


def figure(rows: pd.DataFrame, family: str, metric: str, segment: str = "") -> float | None:
    """One stored figure of a day's rows, or None when absent or not computed."""
    if rows.empty:
        return None
    hit = rows[(rows["family"] == family) & (rows["metric"] == metric) & (rows["segment"] == segment)]
    return None if hit.empty or pd.isna(hit["value"].iloc[0]) else float(hit["value"].iloc[0])


def worst_fairness_gap(rows: pd.DataFrame) -> float | None:
    """The largest equal-opportunity gap of the day over the plan's attributes and their intersection."""
    if rows.empty:
        return None
    gaps = rows[(rows["family"] == "fairness") & (rows["metric"] == "equal_opportunity_difference")]["value"].dropna()
    return None if gaps.empty else float(gaps.max())
