"""The decisions behind the automatic actions, without Dagster, a store or a registry: the bundled plan's own
rules (plans/adult_income.yaml) against hand-built figures."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from monitoring_pipelines.actions import decisions
from monitoring_pipelines.actions.decisions import PromotionOutcome, RetrainOutcome
from monitoring_pipelines.families.comparison.calculator import PREVIOUS_ROLE, DayEvidence, Evidence, segment

D = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(12)]


def _row(day, family, metric, value, segment="", status="ok"):
    return {"partition_date": day, "family": family, "metric": metric, "segment": segment, "value": value,
            "status": status}  # fmt: skip


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["partition_date", "family", "metric", "segment", "value", "status"])


# ---------------------------------------------------------------------------------------------- blocked day


def test_a_day_is_blocked_only_when_it_is_among_the_stored_blocked_days():
    # which days are blocked (the rule on stored figures) is MetricStore.blocked_days, tested in test_store.py
    blocked = decisions.blocked_day(D[0], {D[0], D[3]})
    assert blocked.blocked and blocked.reason == "blocking quality checks failed" and blocked.day == D[0]
    for day in (D[1], D[2], D[4]):
        assert not decisions.blocked_day(day, {D[0], D[3]}).blocked
    assert not decisions.blocked_day(D[0], set()).blocked


# ----------------------------------------------------------------------------------------------- retrain


def _retrain(plan, statuses, *, rule=None, blocked=False, running=False, earlier=(), day=D[10]):
    rule = plan.actions.retrain if rule is None else rule
    return decisions.retrain_trigger(
        rule, day, statuses, blocked=blocked, running=running, earlier_trigger_days=list(earlier)
    )


def test_a_critical_breach_named_in_the_plan_fires_a_retrain(plan):
    assert plan.actions.retrain.on == ["drift.critical", "performance.critical"]
    fired = _retrain(plan, {"drift": "critical", "performance": "ok", "fairness": "critical"})
    assert fired.outcome is RetrainOutcome.RETRAIN and fired.retrain
    assert fired.rules == ("drift.critical",)  # fairness.critical is not a rule of the plan
    both = _retrain(plan, {"performance": "critical", "drift": "critical"})
    assert both.rules == ("drift.critical", "performance.critical")  # in the plan's order


@pytest.mark.parametrize(
    "statuses",
    [{"drift": "warning", "performance": "ok"}, {"drift": "unknown"}, {}, {"quality": "critical"}],
)
def test_no_rule_fires_below_the_rules_severity_or_without_a_status(plan, statuses):
    got = _retrain(plan, statuses)
    assert got.outcome is RetrainOutcome.NOT_TRIGGERED and not got.retrain and got.rules == ()


def test_a_warning_rule_fires_on_warning_and_on_critical(plan):
    rule = plan.actions.retrain.model_copy(update={"on": ["drift.warning"]})
    assert _retrain(plan, {"drift": "warning"}, rule=rule).retrain
    assert _retrain(plan, {"drift": "critical"}, rule=rule).retrain
    assert not _retrain(plan, {"drift": "unknown"}, rule=rule).retrain  # unknown ranks below warning


def test_a_plan_without_retrain_rules_never_retrains(plan):
    for rule in (plan.actions.retrain.model_copy(update={"on": []}), None):
        got = decisions.retrain_trigger(
            rule, D[10], {"drift": "critical"}, blocked=False, running=False, earlier_trigger_days=[]
        )
        assert got.outcome is RetrainOutcome.NO_RULE and not got.retrain
        assert got.reason == "the plan starts no retraining (actions.retrain.on)"


def test_a_blocked_day_never_retrains_even_while_another_retrain_runs(plan):
    got = _retrain(plan, {"drift": "critical"}, blocked=True, running=True)
    assert got.outcome is RetrainOutcome.BLOCKED and got.reason == "blocking quality checks failed"


def test_one_retrain_at_a_time(plan):
    got = _retrain(plan, {"drift": "critical"}, running=True, earlier=[D[9]])
    assert got.outcome is RetrainOutcome.RUNNING and got.reason == "a retrain is already running"


def test_the_cooldown_is_measured_between_trigger_days(plan):
    assert plan.actions.retrain.cooldown_hours == 168  # 7 days
    held = _retrain(plan, {"drift": "critical"}, day=D[10], earlier=[D[0], D[4]])
    assert held.outcome is RetrainOutcome.COOLDOWN and not held.retrain
    assert held.reason == f"cooldown: a retrain was triggered for {D[4]} (168 h cooldown)"
    # 6 days later (144 h) is inside, exactly 7 days (168 h) is not; a later trigger day counts the same
    assert _retrain(plan, {"drift": "critical"}, day=D[6], earlier=[D[0]]).outcome is RetrainOutcome.COOLDOWN
    assert _retrain(plan, {"drift": "critical"}, day=D[7], earlier=[D[0]]).retrain
    assert _retrain(plan, {"drift": "critical"}, day=D[0], earlier=[D[3]]).outcome is RetrainOutcome.COOLDOWN
    no_cooldown = plan.actions.retrain.model_copy(update={"cooldown_hours": 0})
    assert _retrain(plan, {"drift": "critical"}, rule=no_cooldown, earlier=[D[10]]).retrain


# --------------------------------------------------------------------------------------------- promotion


def _evidence(*days, version="7", fairness=None) -> Evidence:
    """Evidence of challenger ``version`` from (rows, delta, z) per day, on consecutive days."""
    counted = tuple(DayEvidence(D[i], rows, delta, z) for i, (rows, delta, z) in enumerate(days))
    return Evidence("challenger", version, None, counted, {}, fairness or {})


def _stouffer_p(days) -> float:
    """The one-sided p-value of Stouffer's weighted Z, computed here independently of Evidence."""
    z = sum(math.sqrt(n) * zi for n, _, zi in days) / math.sqrt(sum(n for n, _, _ in days))
    return 0.5 * math.erfc(z / math.sqrt(2))


GOOD = ((400, 0.03, 2.5), (400, 0.02, 2.0))  # pooled delta 0.025, z = 90 / sqrt(800) = 3.18, p = 0.00073


def test_evidence_that_holds_the_plans_rule_promotes_on_its_last_day(plan):
    rule = plan.actions.promote
    assert (rule.min_days, rule.min_uplift, rule.significance, rule.approval) == (2, 0.01, 0.05, "auto")
    assert _stouffer_p(GOOD) < 0.001
    verdict = decisions.promotion_verdict(rule, challenger="7", champion="5", evidence=_evidence(*GOOD))
    assert verdict.outcome is PromotionOutcome.PROMOTE and verdict.holds
    assert verdict.refusals == () and verdict.day == D[1]
    assert verdict.reason.startswith("challenger v7: better on 2 of 2 labelled days")
    assert "pooled roc_auc delta +0.0250" in verdict.reason


def test_manual_approval_holds_the_promotion_for_a_person(plan):
    rule = plan.actions.promote.model_copy(update={"approval": "manual"})
    verdict = decisions.promotion_verdict(rule, challenger="7", evidence=_evidence(*GOOD))
    assert verdict.outcome is PromotionOutcome.AWAIT_APPROVAL and verdict.holds and verdict.day == D[1]


@pytest.mark.parametrize(
    "days, fairness, refusal",
    [
        (GOOD[:1], None, "1 labelled day(s) of evidence, the plan needs 2"),
        (((400, 0.005, 2.5), (400, 0.005, 2.5)), None, "pooled roc_auc delta +0.0050 is below min_uplift 0.01"),
        (((400, 0.03, 0.5), (400, 0.02, 0.5)), None, "not significant: one-sided p = 0.24 >= 0.05"),
        (
            GOOD,
            {"sex.equal_opportunity_difference": 0.08, "race.demographic_parity_difference": 0.01},
            "fairness regression sex.equal_opportunity_difference +0.080 exceeds max_fairness_regression 0.05",
        ),
    ],
    ids=["too-few-days", "too-small-uplift", "not-significant", "fairness-regression"],
)
def test_evidence_that_falls_short_is_refused_naming_the_reason(plan, days, fairness, refusal):
    evidence = _evidence(*days, fairness=fairness)
    verdict = decisions.promotion_verdict(plan.actions.promote, challenger="7", champion="5", evidence=evidence)
    assert verdict.outcome is PromotionOutcome.REFUSE and not verdict.holds and verdict.day is None
    assert verdict.refusals == (refusal,)
    assert verdict.reason == f"{evidence.describe()}; not promoted: {refusal}"


def test_not_significant_matches_an_independent_stouffer_p_value(plan):
    days = ((400, 0.03, 0.5), (400, 0.02, 0.5))
    assert _stouffer_p(days) == pytest.approx(0.2398, abs=1e-4)
    assert _evidence(*days).p_value == pytest.approx(_stouffer_p(days), rel=1e-9)


def test_no_challenger_no_rule_or_a_challenger_that_already_serves_is_never_promoted(plan):
    rule = plan.actions.promote
    none = decisions.promotion_verdict(rule, challenger=None, evidence=None)
    assert not none.holds and none.refusals == ("no challenger",) and none.reason == "no challenger"
    no_rule = decisions.promotion_verdict(None, challenger="7", evidence=_evidence(*GOOD))
    assert not no_rule.holds and no_rule.refusals == ("the plan allows no promotion",)
    same = decisions.promotion_verdict(rule, challenger="7", champion="7", evidence=None)
    assert not same.holds and same.reason == "challenger v7 is already the champion"


def test_a_verdict_without_the_challengers_own_evidence_is_an_error(plan):
    with pytest.raises(ValueError, match="v7"):
        decisions.promotion_verdict(plan.actions.promote, challenger="7", evidence=None)
    with pytest.raises(ValueError, match="v7"):
        decisions.promotion_verdict(plan.actions.promote, challenger="7", evidence=_evidence(*GOOD, version="8"))


# ---------------------------------------------------------------------------------------------- rollback


def test_the_stint_is_the_champions_latest_unbroken_run_of_served_days():
    served = {D[0]: "5", D[1]: "7", D[2]: "5", D[3]: "7", D[4]: "7"}
    assert decisions.champion_stint(served, "7") == [D[3], D[4]]
    assert decisions.champion_stint(served, "5") == []  # 5 no longer serves the newest day
    assert decisions.champion_stint({}, "7") == []


def _day_rows(day, *, performance="ok", previous=None, version="5"):
    """A served day of the champion: its performance status and, if given, the previous champion's shadow
    comparison (rows, roc_auc delta, z)."""
    rows = [
        _row(day, "performance", "roc_auc", 0.8, status=performance),
        _row(day, "comparison", "compared_rows", 500.0),
    ]
    if previous is not None:
        n, delta, z = previous
        seg = segment(PREVIOUS_ROLE, version)
        rows += [
            _row(day, "comparison", "roc_auc_delta", delta, seg),
            _row(day, "comparison", "roc_auc_delta_z", z, seg),
            _row(day, "comparison", "labelled_rows", float(n), seg),
        ]
    return rows


def _rollback(plan, rows, *, stint, previous="5", promoted=True):
    return decisions.rollback_decision(
        plan.actions.rollback, champion="7", promoted=promoted, previous=previous, stint=stint, rows=rows
    )


def test_a_promoted_champion_breaching_in_its_window_is_rolled_back_when_the_previous_was_better(plan):
    assert plan.actions.rollback.on == ["performance.critical"] and plan.actions.rollback.within_days_of_promotion == 7
    rows = _frame(
        _day_rows(D[0], previous=(300, 0.01, 0.5))
        + _day_rows(D[1], performance="critical", previous=(300, 0.04, 2.0))
        + _day_rows(D[2], performance="critical", previous=(100, 0.00, 0.0))
    )
    got = _rollback(plan, rows, stint=D[:3])
    assert got.rollback and got.trigger == "performance.critical"
    assert got.trigger_day == D[1] and got.last_served_day == D[2]
    # pooled over the breached days only: (300 * 0.04 + 100 * 0.00) / 400 = 0.03
    assert got.reason == (
        f"champion v7 breached performance.critical on {D[1]} (served day 2 of 7); previous champion v5 was "
        "better on the breached days (roc_auc delta +0.0300, 400 rows)"
    )


def test_no_rollback_while_the_champion_is_healthy_in_its_window(plan):
    rows = _frame(_day_rows(D[0], previous=(300, 0.05, 3.0)) + _day_rows(D[1], previous=(300, 0.05, 3.0)))
    got = _rollback(plan, rows, stint=D[:2])
    assert not got.rollback and got.reason == f"champion v7 healthy on its first 2 served day(s) {D[0]}..{D[1]}"


def test_a_breach_after_the_window_never_rolls_back(plan):
    stint = D[:9]  # the 8th served day is outside within_days_of_promotion = 7
    rows = _frame([r for d in stint[:7] for r in _day_rows(d)] + _day_rows(stint[7], performance="critical"))
    got = _rollback(plan, rows, stint=stint)
    assert not got.rollback and got.reason == f"champion v7 healthy on its first 7 served day(s) {D[0]}..{D[6]}"


def test_no_rollback_unless_the_previous_champion_was_better_on_the_breached_days(plan):
    worse = _frame(_day_rows(D[0], performance="critical", previous=(300, -0.02, -1.0)))
    got = _rollback(plan, worse, stint=D[:1])
    assert not got.rollback
    assert got.reason == (
        f"champion v7 breached ['{D[0]}'], but previous champion v5 was not better (roc_auc delta -0.0200); "
        "not rolling back"
    )
    tie = _frame(_day_rows(D[0], performance="critical", previous=(300, 0.0, 0.0)))  # as good is not better
    got = _rollback(plan, tie, stint=D[:1])
    assert not got.rollback and "was not better (roc_auc delta +0.0000)" in got.reason
    unscored = _frame(_day_rows(D[0], performance="critical"))
    got = _rollback(plan, unscored, stint=D[:1])
    assert not got.rollback and got.reason.endswith("previous champion v5 was not scored on them; not rolling back")


def test_no_rollback_without_a_promotion_a_previous_version_or_a_served_day(plan):
    rows = _frame(_day_rows(D[0], performance="critical", previous=(300, 0.05, 3.0)))
    assert _rollback(plan, rows, stint=D[:1], previous=None).reason == "no promotion to roll back"
    assert _rollback(plan, rows, stint=D[:1], promoted=False).reason == "no promotion to roll back"
    got = _rollback(plan, None, stint=[])
    assert not got.rollback and got.reason == "champion v7 has served no monitored day yet"
