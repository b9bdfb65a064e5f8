"""The decisions behind the automatic actions, as pure functions: plain inputs, a typed verdict with its reason.

* the blocked day: did a day's blocking quality checks fail (from the stored quality figures)?
* the retrain trigger: which of the plan's rules a day's health meets, then cooldown / running / blocked;
* the promotion verdict: the challenger's pooled shadow evidence against the plan's promote rule;
* the rollback decision: a promoted champion breaching the plan's rules on its first served days, when the
  previous champion was better on those days.

The sensors and assets gather the inputs (metric store, registry, Dagster's event log) and act on the verdict;
nothing here reads a store, a registry or Dagster, so every branch is tested without them (test_decisions.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from monitoring_pipelines.families.comparison.calculator import PREVIOUS_ROLE, Evidence, accumulate
from monitoring_pipelines.judge.metrics import Status
from monitoring_pipelines.plan.schema import PromoteAction, RetrainAction, RollbackAction

BLOCKED = "blocking quality checks failed"


# ----------------------------------------------------------------------------------------------------------
# blocked day


@dataclass(frozen=True)
class BlockedDay:
    day: dt.date
    blocked: bool
    reason: str


def blocked_day(day: dt.date, blocked_days: Collection[dt.date]) -> BlockedDay:
    """Whether ``day`` is blocked, given the model's blocked days (``MetricStore.blocked_days``: the one read of
    the rule, a stored ``quality.blocking_failed_checks`` above 0; a missing or NaN figure does not block)."""
    if day in blocked_days:
        return BlockedDay(day, True, BLOCKED)
    return BlockedDay(day, False, "no blocking quality check failed")


# ----------------------------------------------------------------------------------------------------------
# retrain trigger


def fired_rules(statuses: Mapping[str, str], rules: Iterable[str]) -> list[str]:
    """The plan rules ('<family>.<warning|critical>') that a day's worst status per family meets or exceeds;
    a family without a status counts as unknown."""
    return [r for r in rules if Status(statuses.get(r.split(".")[0], "unknown")).rank >= Status(r.split(".")[1]).rank]


def day_fired_rules(rows: pd.DataFrame, rules: Iterable[str]) -> list[str]:
    """The plan rules ('<family>.<warning|critical>') that any of a day's stored rows meets or exceeds."""
    out = []
    for r in rules:
        family, _, severity = r.partition(".")
        statuses = rows.loc[rows["family"] == family, "status"]
        if any(Status(s).rank >= Status(severity).rank for s in statuses):
            out.append(r)
    return out


class RetrainOutcome(StrEnum):
    RETRAIN = "retrain"
    NO_RULE = "no_rule"  # the plan starts no retraining
    NOT_TRIGGERED = "not_triggered"  # no rule fired on the day
    BLOCKED = "blocked"
    RUNNING = "running"  # look again once the running retrain has finished
    COOLDOWN = "cooldown"


@dataclass(frozen=True)
class RetrainTrigger:
    outcome: RetrainOutcome
    rules: tuple[str, ...]  # the rules that fired
    reason: str

    @property
    def retrain(self) -> bool:
        return self.outcome is RetrainOutcome.RETRAIN


def retrain_trigger(
    rule: RetrainAction | None,
    day: dt.date,
    statuses: Mapping[str, str],
    *,
    blocked: bool,
    running: bool,
    earlier_trigger_days: Sequence[dt.date],
) -> RetrainTrigger:
    """Whether ``day``'s health (worst status per family) starts a retrain. The cooldown is measured between
    trigger days (partition time, ``earlier_trigger_days`` of earlier and pending retrains), so backfills and
    the demo behave as nightly production does."""
    if rule is None or not rule.on:
        return RetrainTrigger(RetrainOutcome.NO_RULE, (), "the plan starts no retraining (actions.retrain.on)")
    hit = tuple(fired_rules(statuses, rule.on))
    if not hit:
        return RetrainTrigger(RetrainOutcome.NOT_TRIGGERED, hit, "no breach that retrains")
    if blocked:
        return RetrainTrigger(RetrainOutcome.BLOCKED, hit, BLOCKED)
    if running:
        return RetrainTrigger(RetrainOutcome.RUNNING, hit, "a retrain is already running")
    for earlier in earlier_trigger_days:
        if abs((day - earlier).days) * 24 < rule.cooldown_hours:
            why = f"cooldown: a retrain was triggered for {earlier} ({rule.cooldown_hours:g} h cooldown)"
            return RetrainTrigger(RetrainOutcome.COOLDOWN, hit, why)
    return RetrainTrigger(RetrainOutcome.RETRAIN, hit, f"{', '.join(hit)} on {day}")


# ----------------------------------------------------------------------------------------------------------
# promotion verdict


class PromotionOutcome(StrEnum):
    PROMOTE = "promote"
    AWAIT_APPROVAL = "await_approval"  # the evidence holds; a person approves (approval: manual)
    REFUSE = "refuse"


@dataclass(frozen=True)
class PromotionVerdict:
    outcome: PromotionOutcome
    refusals: tuple[str, ...]  # why the rule does not hold; () when it does
    reason: str  # the evidence and, when refused, why
    day: dt.date | None = None  # the last day of evidence, when the rule holds

    @property
    def holds(self) -> bool:
        return self.outcome is not PromotionOutcome.REFUSE


def promotion_verdict(
    rule: PromoteAction | None,
    *,
    challenger: str | None,
    evidence: Evidence | None,
    champion: str | None = None,
) -> PromotionVerdict:
    """Whether the challenger version's pooled shadow evidence holds the plan's promotion rule. ``champion``:
    the current champion version, when known (a challenger that already is the champion is not promoted);
    ``evidence`` is needed whenever a challenger other than the champion exists."""

    def refuse(*why: str, reason: str | None = None) -> PromotionVerdict:
        return PromotionVerdict(PromotionOutcome.REFUSE, why, reason or "; ".join(why))

    if challenger is None:
        return refuse("no challenger")
    if rule is None:
        return refuse("the plan allows no promotion")
    if challenger == champion:
        return refuse(f"challenger v{challenger} is already the champion")
    if evidence is None or evidence.version != challenger:
        raise ValueError(f"promotion verdict for challenger v{challenger} needs that version's evidence")
    refusals = evidence.refusals(rule)
    if refusals:
        return refuse(*refusals, reason=f"{evidence.describe()}; not promoted: {'; '.join(refusals)}")
    outcome = PromotionOutcome.AWAIT_APPROVAL if rule.approval == "manual" else PromotionOutcome.PROMOTE
    return PromotionVerdict(outcome, (), evidence.describe(), evidence.last_day)


# ----------------------------------------------------------------------------------------------------------
# rollback decision


@dataclass(frozen=True)
class RollbackDecision:
    rollback: bool
    reason: str
    trigger: str | None = None  # the first rule breached on the first breached day
    trigger_day: dt.date | None = None
    last_served_day: dt.date | None = None  # the newest day the champion served


def champion_stint(served: Mapping[dt.date, str], version: str) -> list[dt.date]:
    """The days ``version`` served since it last took over (``served``: day -> version that served most of the
    day's rows), oldest first."""
    stint = []
    for day in sorted(served, reverse=True):
        if served[day] != version:
            break
        stint.append(day)
    return sorted(stint)


def rollback_decision(
    rule: RollbackAction,
    *,
    champion: str,
    promoted: bool,
    previous: str | None,
    stint: Sequence[dt.date],
    rows: pd.DataFrame | None,
) -> RollbackDecision:
    """Whether to roll the champion back: it breaches one of ``rule.on`` on one of the first
    ``within_days_of_promotion`` days of its ``stint`` (see :func:`champion_stint`), and the previous champion,
    scored in shadow on the breached days, was better. ``promoted``: the champion took over by a promotion
    (only then is there one to undo); ``rows``: the stored rows of at least the window's days."""
    if previous is None or not promoted:
        return RollbackDecision(False, "no promotion to roll back")
    window = list(stint)[: rule.within_days_of_promotion]
    if not window or rows is None:
        return RollbackDecision(False, f"champion v{champion} has served no monitored day yet")
    breached = {d: hit for d in window if (hit := day_fired_rules(rows[rows["partition_date"] == d], rule.on))}
    if not breached:
        return RollbackDecision(
            False, f"champion v{champion} healthy on its first {len(window)} served day(s) {window[0]}..{window[-1]}"
        )
    evidence = accumulate(rows, role=PREVIOUS_ROLE, version=previous, since=None, min_coverage=0.0, days=set(breached))
    if not evidence.days or evidence.delta <= 0:
        why = "was not scored on them" if not evidence.days else f"was not better (roc_auc delta {evidence.delta:+.4f})"
        return RollbackDecision(
            False,
            f"champion v{champion} breached {sorted(d.isoformat() for d in breached)}, but previous champion "
            f"v{previous} {why}; not rolling back",
        )
    first = min(breached)
    reason = (
        f"champion v{champion} breached {', '.join(breached[first])} on {first} (served day "
        f"{window.index(first) + 1} of {rule.within_days_of_promotion}); previous champion "
        f"v{previous} was better on the breached days (roc_auc delta {evidence.delta:+.4f}, "
        f"{evidence.rows} rows)"
    )
    return RollbackDecision(True, reason, breached[first][0], first, stint[-1])
