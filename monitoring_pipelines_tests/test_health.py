"""Judging figures against the plan (monitoring_pipelines.judge.health): absolute levels, relative rules against the model's
own baseline (ratio and z-score), persistence (k of the last m days), and the plan validation of these rules.

Every expected level below is computed by hand in the test, not by the code under test.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from monitoring_pipelines.errors import PlanError
from monitoring_pipelines.judge.health import assess_rows, judge, summarise
from monitoring_pipelines.judge.metrics import Family, MetricValue, Status
from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR, parse_plan, read_yaml
from monitoring_pipelines.store.metric_store import METRIC_COLUMNS

DAY = dt.date(2026, 3, 20)
T0 = dt.datetime(2026, 3, 21, 2, 0, tzinfo=dt.UTC)


def plan_with(thresholds: dict, **sections):
    raw = read_yaml((BUNDLED_PLANS_DIR / "adult_income.yaml").read_text())
    raw["thresholds"] = thresholds
    raw.update(sections)
    return parse_plan(raw, "plan.yaml")


def history(
    family: str, metric: str, values: dict[int, float | None], segment: str = "", statuses: dict[int, str] | None = None
) -> pd.DataFrame:
    """Stored rows of earlier days: ``values`` maps 'days before DAY' to the value."""
    statuses = statuses or {}
    records = [
        dict(
            model="adult_income",
            model_version="1",
            alias="champion",
            partition_date=DAY - dt.timedelta(days=k),
            family=family,
            metric=metric,
            segment=segment,
            value=v,
            warning_threshold=None,
            critical_threshold=None,
            direction=None,
            status=statuses.get(k, "ok"),
            run_id="r",
            computed_at=T0,
        )
        for k, v in values.items()
    ]
    return pd.DataFrame(records, columns=list(METRIC_COLUMNS))


def judged(plan, value, hist, *, family=Family.PERFORMANCE, metric="roc_auc", segment="", day=DAY, unjudged=()):
    [row] = judge(
        plan,
        day,
        [MetricValue(family, metric, value, segment)],
        model_version="1",
        alias="champion",
        run_id="run",
        history=hist,
        unjudged_segments=frozenset(unjudged),
    )
    return row


# -- relative: ratio --------------------------------------------------------------------------------------------

RATIO = {
    "performance.roc_auc": {
        "direction": "min",
        "relative": {"baseline_days": 14, "min_days": 7, "ratio": {"warning": 0.05, "critical": 0.10}},
    }
}
# 14 days alternating 0.88 / 0.92: mean 0.90
FOURTEEN = {k: (0.88 if k % 2 else 0.92) for k in range(1, 15)}


@pytest.mark.parametrize(
    ("value", "status"), [(0.86, "ok"), (0.855, "ok"), (0.85, "warning"), (0.811, "warning"), (0.80, "critical")]
)
def test_ratio_rule_breaches_a_drop_from_the_baseline_mean(value, status):
    plan = plan_with(RATIO)
    row = judged(plan, value, history("performance", "roc_auc", FOURTEEN))
    # by hand: mean 0.90; warning below 0.90 * (1 - 0.05) = 0.855, critical below 0.90 * (1 - 0.10) = 0.81
    assert row.status == status
    assert row.warning_threshold == pytest.approx(0.855) and row.critical_threshold == pytest.approx(0.81)
    assert row.direction == "min"


def test_ratio_rule_uses_only_the_baseline_window_before_the_day():
    plan = plan_with(RATIO)
    # day 15 before (outside the 14-day window) and the judged day itself (a stale row of it) are ignored
    hist = pd.concat(
        [history("performance", "roc_auc", {**FOURTEEN, 15: 0.10}), history("performance", "roc_auc", {0: 0.10})]
    )
    row = judged(plan, 0.85, hist)
    assert row.warning_threshold == pytest.approx(0.855)


def test_ratio_rule_on_a_rise_uses_the_absolute_baseline_mean():
    plan = plan_with(
        {"service.error_rate": {"relative": {"baseline_days": 4, "min_days": 4, "ratio": {"warning": 0.5}}}}
    )
    hist = history("service", "error_rate", {1: 0.01, 2: 0.02, 3: 0.03, 4: 0.02})  # mean 0.02
    assert judged(plan, 0.031, hist, family=Family.SERVICE, metric="error_rate").status == "warning"  # > 0.03
    row = judged(plan, 0.029, hist, family=Family.SERVICE, metric="error_rate")
    assert row.status == "ok" and row.warning_threshold == pytest.approx(0.03) and row.critical_threshold is None


# -- relative: z-score ------------------------------------------------------------------------------------------

ZSCORE = {
    "service.latency_p99_ms": {"relative": {"baseline_days": 7, "min_days": 5, "zscore": {"warning": 2, "critical": 3}}}
}
SEVEN = {k: float(8 - k) for k in range(1, 8)}  # 7, 6, ..., 1 -> mean 4
STD = math.sqrt(((7 - 4) ** 2 + 2**2 + 1 + 0 + 1 + 2**2 + 3**2) / 6)  # sample std = sqrt(28 / 6)


@pytest.mark.parametrize(("value", "status"), [(8.3, "ok"), (8.33, "warning"), (10.4, "warning"), (10.5, "critical")])
def test_zscore_rule_breaches_beyond_k_baseline_standard_deviations(value, status):
    plan = plan_with(ZSCORE)
    row = judged(
        plan, value, history("service", "latency_p99_ms", SEVEN), family=Family.SERVICE, metric="latency_p99_ms"
    )
    assert row.status == status
    # by hand: 4 + 2 * 2.1602 = 8.3205 and 4 + 3 * 2.1602 = 10.4807
    assert row.warning_threshold == pytest.approx(4 + 2 * STD) and row.critical_threshold == pytest.approx(4 + 3 * STD)
    assert row.direction == "max"


def test_directional_zscore_ignores_a_deviation_the_other_way_and_two_sided_does_not():
    hist = history("service", "latency_p99_ms", SEVEN)
    one_way = judged(plan_with(ZSCORE), -1.0, hist, family=Family.SERVICE, metric="latency_p99_ms")
    assert one_way.status == "ok"
    both = {"service.latency_p99_ms": {"relative": {**ZSCORE["service.latency_p99_ms"]["relative"], "two_sided": True}}}
    row = judged(plan_with(both), -1.0, hist, family=Family.SERVICE, metric="latency_p99_ms")
    # z = (-1 - 4) / 2.1602 = -2.31: beyond -2 (warning), within -3; the row carries the low side's levels
    assert row.status == "warning" and row.direction == "min"
    assert row.warning_threshold == pytest.approx(4 - 2 * STD) and row.critical_threshold == pytest.approx(4 - 3 * STD)


def test_absolute_and_relative_levels_combine_into_the_tightest_and_name_the_rule():
    plan = plan_with(
        {
            "performance.roc_auc": {
                "warning": 0.85,
                "critical": 0.70,
                "direction": "min",
                "relative": RATIO["performance.roc_auc"]["relative"],
            }
        }
    )
    hist = history("performance", "roc_auc", FOURTEEN)
    row = judged(plan, 0.80, hist)
    # warning: max(0.85, 0.855) = 0.855; critical: max(0.70, 0.81) = 0.81
    assert (row.warning_threshold, row.critical_threshold) == (pytest.approx(0.855), pytest.approx(0.81))
    assert row.status == "critical"
    rows = pd.DataFrame([row.__dict__])
    a = assess_rows(plan, DAY, rows, hist)[("performance", "roc_auc", "")]
    assert a.rules == ("ratio",) and a.baseline.mean == pytest.approx(0.90) and a.baseline.days == 14
    a = assess_rows(plan, DAY, pd.DataFrame([judged(plan, 0.852, hist).__dict__]), hist)[("performance", "roc_auc", "")]
    assert a.status is Status.WARNING and a.rules == ("ratio",)  # 0.852 < 0.855, not < 0.85
    a = assess_rows(plan, DAY, pd.DataFrame([judged(plan, 0.84, hist).__dict__]), hist)[("performance", "roc_auc", "")]
    assert a.rules == ("absolute", "ratio")


# -- a baseline that cannot judge -------------------------------------------------------------------------------


def test_too_few_baseline_days_fall_back_to_the_absolute_levels():
    plan = plan_with(
        {
            "performance.roc_auc": {
                "warning": 0.80,
                "direction": "min",
                "relative": RATIO["performance.roc_auc"]["relative"],
            }
        }
    )
    hist = history("performance", "roc_auc", {1: 0.95, 2: 0.95, 3: None, 4: 0.95})  # 3 values < min_days 7
    row = judged(plan, 0.85, hist)  # 10% below the baseline, but the ratio rule cannot judge yet
    assert row.status == "ok" and row.warning_threshold == 0.80
    a = assess_rows(plan, DAY, pd.DataFrame([row.__dict__]), hist)[("performance", "roc_auc", "")]
    assert "baseline has 3 of the 7 days" in a.note and "absolute levels only" in a.note


def test_too_few_baseline_days_without_absolute_levels_is_unknown():
    plan = plan_with(RATIO)
    hist = history("performance", "roc_auc", {1: 0.95, 2: 0.95})
    row = judged(plan, 0.10, hist)
    assert row.status == "unknown" and row.warning_threshold is None and row.critical_threshold is None
    a = assess_rows(plan, DAY, pd.DataFrame([row.__dict__]), hist)[("performance", "roc_auc", "")]
    assert "cannot judge" in a.note


def test_a_constant_baseline_cannot_scale_a_zscore():
    plan = plan_with(ZSCORE)
    row = judged(
        plan,
        99.0,
        history("service", "latency_p99_ms", {k: 5.0 for k in range(1, 8)}),
        family=Family.SERVICE,
        metric="latency_p99_ms",
    )
    assert row.status == "unknown"


def test_missing_value_and_unjudged_segment_are_unknown():
    plan = plan_with(RATIO)
    hist = history("performance", "roc_auc", FOURTEEN)
    assert judged(plan, None, hist).status == "unknown"
    assert judged(plan, 0.10, hist, segment="", unjudged=[""]).status == "unknown"


# -- persistence ------------------------------------------------------------------------------------------------

PERSIST = {"service.error_rate": {"warning": 0.01, "critical": 0.05, "persistence": {"k": 2, "m": 3}}}


def persisted(values: dict[int, float | None], today: float, statuses=None, plan=None):
    plan = plan or plan_with(PERSIST)
    hist = history("service", "error_rate", values, statuses=statuses)
    row = judged(plan, today, hist, family=Family.SERVICE, metric="error_rate")
    a = assess_rows(plan, DAY, pd.DataFrame([row.__dict__]), hist)[("service", "error_rate", "")]
    return row, a


def test_one_breached_day_is_held_back_and_kept_ok_with_its_count():
    row, a = persisted({1: 0.0, 2: 0.0}, 0.02)
    assert row.status == "ok" and row.value > row.warning_threshold  # the raw breach shows against the stored level
    assert a.raw is Status.WARNING and a.held_back and a.persistence == "1 of 3"
    assert "warning on 1 of the last 3 days (2 needed): held back" in a.note


@pytest.mark.parametrize(
    ("earlier", "today", "status", "count"),
    [
        ({1: 0.02}, 0.02, "warning", "2 of 3"),  # yesterday and today
        ({2: 0.02, 1: 0.0}, 0.02, "warning", "2 of 3"),  # k of m need not be consecutive
        ({3: 0.02, 2: 0.0, 1: 0.0}, 0.02, "ok", "1 of 3"),  # 3 days ago is outside the window
        ({1: 0.02}, 0.09, "warning", "2 of 3"),  # critical once: held back at critical, warning reached
        ({1: 0.06}, 0.09, "critical", "2 of 3"),
        ({2: 0.06, 1: 0.02}, 0.0, "ok", None),  # today ok: ok, whatever came before
    ],
)
def test_persistence_raises_a_level_on_k_of_the_last_m_days(earlier, today, status, count):
    row, a = persisted(earlier, today)
    assert row.status == status
    assert (a.persistence or None) == count


def test_earlier_days_without_a_value_or_stored_unknown_do_not_count_as_breached():
    row, _ = persisted({1: None, 2: 0.9}, 0.02, statuses={2: "unknown"})
    assert row.status == "ok"


def test_persistence_recomputes_earlier_days_against_their_own_baseline():
    plan = plan_with(
        {
            "service.error_rate": {
                "relative": {"baseline_days": 3, "min_days": 3, "ratio": {"warning": 0.5}},
                "persistence": {"k": 2, "m": 2},
            }
        }
    )
    # yesterday (k=1): 0.2 against days 2..4 (0.1 each, mean 0.1, limit 0.15) breached; today: 0.3 against
    # days 1..3 = 0.2, 0.1, 0.1 (mean 0.1333, limit 0.2) breaches too -> warning on 2 of 2
    row, a = persisted({4: 0.1, 3: 0.1, 2: 0.1, 1: 0.2}, 0.3, plan=plan)
    assert row.warning_threshold == pytest.approx((0.2 + 0.1 + 0.1) / 3 * 1.5)
    assert row.status == "warning" and a.persistence == "2 of 2"
    # yesterday at 0.14 is within its own limit 0.15: today alone does not persist
    row, a = persisted({4: 0.1, 3: 0.1, 2: 0.1, 1: 0.14}, 0.3, plan=plan)
    assert row.status == "ok" and a.persistence == "1 of 2"


def test_summary_lists_breaches_with_their_rule_and_the_held_back_ones():
    plan = plan_with({**PERSIST, **RATIO})
    rows = pd.DataFrame(
        [
            judged(plan, 0.80, history("performance", "roc_auc", FOURTEEN)).__dict__,
            judged(
                plan, 0.02, history("service", "error_rate", {1: 0.0}), family=Family.SERVICE, metric="error_rate"
            ).__dict__,
        ]
    )
    hist = pd.concat([history("performance", "roc_auc", FOURTEEN), history("service", "error_rate", {1: 0.0})])
    summary = summarise(plan, DAY, rows, assess_rows(plan, DAY, rows, hist))
    [b] = summary.breaches
    assert (b.metric, b.status, b.rules, b.baseline_days) == ("roc_auc", Status.CRITICAL, ("ratio",), 14)
    assert b.threshold == pytest.approx(0.81) and "baseline 0.9 over 14 days" in b.describe()
    [h] = summary.held_back
    assert (h.metric, h.status, h.persistence) == ("error_rate", Status.WARNING, "1 of 3")
    assert summary.family_status["service"] is Status.OK and summary.family_status["performance"] is Status.CRITICAL


# -- plan validation --------------------------------------------------------------------------------------------

KEY = "performance.roc_auc"
WHERE = f"thresholds.{KEY}"
BAD = {
    "relative without a rule": (
        {"direction": "min", "relative": {"baseline_days": 14}},
        [(f"{WHERE}.relative", "give ratio or zscore")],
    ),
    "ratio warning beyond critical": (
        {"direction": "min", "relative": {"ratio": {"warning": 0.2, "critical": 0.1}}},
        [(f"{WHERE}.relative.ratio", "warning 0.2 is beyond critical 0.1")],
    ),
    "zscore without levels": (
        {"relative": {"zscore": {}}},
        [(f"{WHERE}.relative.zscore", "give a warning or a critical level")],
    ),
    "min_days above baseline_days": (
        {"relative": {"baseline_days": 7, "min_days": 10, "ratio": {"warning": 0.1}}},
        [(f"{WHERE}.relative.min_days", "10 is more than baseline_days 7")],
    ),
    "zscore on one day": (
        {"relative": {"baseline_days": 7, "min_days": 1, "zscore": {"warning": 3}}},
        [(f"{WHERE}.relative.min_days", "the zscore rule needs at least 2 baseline days")],
    ),
    "negative ratio": (
        {"relative": {"ratio": {"warning": -0.1}}},
        [(f"{WHERE}.relative.ratio.warning", "greater than 0")],
    ),
    "misspelt relative key": (
        {"warning": 0.8, "relative": {"baseline_day": 7, "ratio": {"warning": 0.1}}},
        [(f"{WHERE}.relative.baseline_day", "Extra inputs are not permitted")],
    ),
    "persistence k above m": (
        {"warning": 0.8, "direction": "min", "persistence": {"k": 3, "m": 2}},
        [(f"{WHERE}.persistence.k", "3 is more than m 2")],
    ),
    "persistence without m": (
        {"warning": 0.8, "direction": "min", "persistence": {"k": 2}},
        [(f"{WHERE}.persistence.m", "Field required")],
    ),
    "nothing to judge with": (
        {"direction": "min", "persistence": {"k": 1, "m": 1}},
        [(WHERE, "give a warning or a critical threshold (or both), or a relative rule")],
    ),
}


@pytest.mark.parametrize(("threshold", "expected"), BAD.values(), ids=BAD.keys())
def test_bad_relative_or_persistence_rule_is_reported_at_its_field(threshold, expected):
    with pytest.raises(PlanError) as err:
        plan_with({KEY: threshold})
    got = [(field, message) for _, field, message in err.value.problems]
    assert [f for f, _ in got] == [f for f, _ in expected]
    for (_, message), (_, fragment) in zip(got, expected):
        assert fragment in message


def test_incidents_section_is_validated_and_defaults_to_two_ok_days():
    assert plan_with({}).incidents.resolve_after_ok_days == 2
    assert plan_with({}, incidents={"resolve_after_ok_days": 5}).incidents.resolve_after_ok_days == 5
    with pytest.raises(PlanError) as err:
        plan_with({}, incidents={"resolve_after_ok_days": 0})
    assert [f for _, f, _ in err.value.problems] == ["incidents.resolve_after_ok_days"]


def test_a_full_relative_and_persistent_threshold_loads():
    plan = plan_with(
        {
            KEY: {
                "warning": 0.85,
                "critical": 0.80,
                "direction": "min",
                "relative": {
                    "baseline_days": 14,
                    "min_days": 7,
                    "ratio": {"warning": 0.05, "critical": 0.1},
                    "zscore": {"warning": 3},
                    "two_sided": False,
                },
                "persistence": {"k": 2, "m": 3},
            }
        }
    )
    t = plan.thresholds[KEY]
    assert t.relative.ratio.critical == 0.1 and t.persistence.k == 2 and t.history_days == 14 + 2
