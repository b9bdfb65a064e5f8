"""Plan validation refuses every value that would silently disable a rule (issue 14, item 3): non-finite
numbers anywhere (YAML's ``.nan``, ``.inf``, ``-.inf``), negative counts and days, drift thresholds no score
can cross, promotion guards no challenger can fail, GX kwargs that make a check pass whatever the data.
Each is reported as ``file: field.path: message``, like every other plan mistake."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from monitoring_pipelines.errors import PlanError
from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR, read_yaml
from monitoring_pipelines.validation import load_plan, parse_plan

BUNDLED = BUNDLED_PLANS_DIR / "adult_income.yaml"
NAN, INF = float("nan"), float("inf")
SHARE = "drift.share_of_drifted_features"


def edited(*changes: tuple[tuple, object]) -> dict:
    """The bundled plan with each ``(key path, value)`` set (missing mappings on the way are created)."""
    raw = read_yaml(BUNDLED.read_text())
    for keys, value in changes:
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return raw


def problems_of(raw: dict, tmp_path: Path) -> list[tuple[str, str]]:
    """(field, message) of every problem of ``raw`` written as YAML and loaded from the file; [] when it loads."""
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))  # float('nan') is written as .nan, inf as .inf
    try:
        load_plan(path)
    except PlanError as exc:
        assert {file for file, _, _ in exc.problems} == {str(path)}
        assert all(f"{path}: {field}: {message}" in str(exc) for _, field, message in exc.problems)
        return [(field, message) for _, field, message in exc.problems]
    return []


# --------------------------------------------------------------------------------------------------------
# why: a non-finite threshold judges every figure ok (the hostile run's finding), so it must never load


def test_a_nan_threshold_would_judge_a_fully_drifted_day_ok_which_is_why_validation_refuses_it(plan):
    threshold = plan.thresholds[SHARE]
    assert threshold.bounds.judge(1.0) == "critical"  # the bundled plan: critical at 0.4
    # model_copy skips validation: this is the threshold validation must never let through
    nan_threshold = threshold.model_copy(update={"warning": NAN, "critical": NAN})
    assert nan_threshold.bounds.judge(1.0) == "ok"


# --------------------------------------------------------------------------------------------------------
# non-finite numbers: every typed numeric field of the plan

NON_FINITE = {
    "nan warning": ([(("thresholds", SHARE, "warning"), NAN)], "thresholds.drift.share_of_drifted_features.warning"),
    "inf critical": ([(("thresholds", SHARE, "critical"), INF)], "thresholds.drift.share_of_drifted_features.critical"),
    "-inf warning, direction min": (
        [(("thresholds", "performance.roc_auc", "warning"), -INF)],
        "thresholds.performance.roc_auc.warning",
    ),
    "nan ratio of a relative rule": (
        [(("thresholds", SHARE, "relative"), {"ratio": {"warning": NAN}})],
        "thresholds.drift.share_of_drifted_features.relative.ratio.warning",
    ),
    "inf zscore of a relative rule": (
        [(("thresholds", SHARE, "relative"), {"zscore": {"critical": INF}})],
        "thresholds.drift.share_of_drifted_features.relative.zscore.critical",
    ),
    "nan baseline_days": (
        [(("thresholds", SHARE, "relative"), {"baseline_days": NAN, "ratio": {"warning": 0.1}})],
        "thresholds.drift.share_of_drifted_features.relative.baseline_days",
    ),
    "inf persistence m": (
        [(("thresholds", SHARE, "persistence"), {"k": 1, "m": INF})],
        "thresholds.drift.share_of_drifted_features.persistence.m",
    ),
    "nan min_coverage": ([(("data", "labels", "min_coverage"), NAN)], "data.labels.min_coverage"),
    "inf retrain cooldown": ([(("actions", "retrain", "cooldown_hours"), INF)], "actions.retrain.cooldown_hours"),
    "nan min_uplift": ([(("actions", "promote", "min_uplift"), NAN)], "actions.promote.min_uplift"),
    "nan significance": ([(("actions", "promote", "significance"), NAN)], "actions.promote.significance"),
    "inf fairness regression": (
        [(("actions", "promote", "max_fairness_regression"), INF)],
        "actions.promote.max_fairness_regression",
    ),
    "nan min_group_size": ([(("fairness", "min_group_size"), NAN)], "fairness.min_group_size"),
    "inf alert max backoff": (
        [(("alerts", "retry"), {"max_backoff_seconds": INF})],
        "alerts.retry.max_backoff_seconds",
    ),
    "nan drift column threshold": (
        [(("drift", "columns"), {"age": {"method": "ks", "threshold": NAN}})],
        "drift.columns.age.threshold",
    ),
    "inf volume max_ratio": ([(("quality", "volume"), {"max_ratio": INF})], "quality.volume.max_ratio"),
    "nan volume min_ratio": ([(("quality", "volume"), {"min_ratio": NAN})], "quality.volume.min_ratio"),
}


@pytest.mark.parametrize(("changes", "field"), NON_FINITE.values(), ids=NON_FINITE.keys())
def test_a_non_finite_number_is_refused_at_its_field(changes, field, tmp_path):
    [(got_field, message)] = problems_of(edited(*changes), tmp_path)
    value = changes[0][1]
    while isinstance(value, dict):  # the non-finite number inside a nested mapping
        value = next(v for v in value.values() if isinstance(v, dict | float) and not v == 0.1)
    written = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    assert got_field == field
    assert message == f"{written} is not a finite number: a NaN or infinite value would silently disable what it sets"


@pytest.mark.parametrize("literal", [".nan", ".NaN", ".inf", "-.inf", "+.Inf", "1.0e999", '"nan"', '"-inf"'])
def test_every_yaml_spelling_of_a_non_finite_threshold_is_refused(literal, tmp_path):
    text = BUNDLED.read_text()
    line = "drift.share_of_drifted_features: {warning: 0.2, critical: 0.4}"
    assert line in text
    path = tmp_path / "plan.yaml"
    path.write_text(text.replace(line, f"drift.share_of_drifted_features: {{warning: {literal}, critical: 0.4}}"))
    with pytest.raises(PlanError) as exc:
        load_plan(path)
    [(file, field, message)] = exc.value.problems
    assert (file, field) == (str(path), "thresholds.drift.share_of_drifted_features.warning")
    assert "is not a finite number" in message
    assert f"{path}: thresholds.drift.share_of_drifted_features.warning: " in str(exc.value)


def test_every_non_finite_number_of_a_file_is_reported_together(tmp_path):
    raw = edited(
        (("thresholds", SHARE, "warning"), NAN),
        (("thresholds", "service.error_rate", "critical"), INF),
        (("fairness", "min_rate_support"), -INF),
    )
    assert [field for field, _ in problems_of(raw, tmp_path)] == [
        "thresholds.drift.share_of_drifted_features.warning",
        "thresholds.service.error_rate.critical",
        "fairness.min_rate_support",
    ]


# --------------------------------------------------------------------------------------------------------
# negative or zero counts and days

COUNTS = {
    "persistence k of -1": ((("thresholds", SHARE, "persistence"), {"k": -1, "m": 3}), "persistence.k"),
    "persistence m of 0": ((("thresholds", SHARE, "persistence"), {"k": 1, "m": 0}), "persistence.m"),
    "baseline of -3 days": (
        (("thresholds", SHARE, "relative"), {"baseline_days": -3, "min_days": 1, "ratio": {"warning": 0.1}}),
        "relative.baseline_days",
    ),
    "min_days of 0": (
        (("thresholds", SHARE, "relative"), {"min_days": 0, "ratio": {"warning": 0.1}}),
        "relative.min_days",
    ),
    "negative label delay": ((("data", "labels", "expected_delay_days"), -1), "data.labels.expected_delay_days"),
    "min_coverage above 1": ((("data", "labels", "min_coverage"), 1.5), "data.labels.min_coverage"),
    "negative cooldown": ((("actions", "retrain", "cooldown_hours"), -24), "actions.retrain.cooldown_hours"),
    "retrain window of 0 days": ((("actions", "retrain", "window_days"), 0), "actions.retrain.window_days"),
    "promotion evidence of 0 days": ((("actions", "promote", "min_days"), 0), "actions.promote.min_days"),
    "rollback window of -1 days": (
        (("actions", "rollback", "within_days_of_promotion"), -1),
        "actions.rollback.within_days_of_promotion",
    ),
    "fairness groups of 0 rows": ((("fairness", "min_group_size"), 0), "fairness.min_group_size"),
    "negative rate support": ((("fairness", "min_rate_support"), -5), "fairness.min_rate_support"),
    "incidents resolving after 0 days": (
        (("incidents", "resolve_after_ok_days"), 0),
        "incidents.resolve_after_ok_days",
    ),
    "negative min_rows": ((("quality", "volume"), {"min_rows": -10}), "quality.volume.min_rows"),
    "volume lookback of 0 days": ((("quality", "volume"), {"lookback_days": 0}), "quality.volume.lookback_days"),
    "0 delivery attempts": ((("alerts", "retry"), {"attempts_per_call": 0}), "alerts.retry.attempts_per_call"),
    "negative delivery timeout": ((("alerts", "retry"), {"timeout_seconds": -1}), "alerts.retry.timeout_seconds"),
}


@pytest.mark.parametrize(("change", "field"), COUNTS.values(), ids=COUNTS.keys())
def test_a_negative_or_zero_count_or_day_is_refused_at_its_field(change, field, tmp_path):
    [(got_field, message)] = problems_of(edited(change), tmp_path)
    assert got_field.endswith(field) and got_field.startswith(change[0][0])
    assert "greater than" in message or "less than" in message


# --------------------------------------------------------------------------------------------------------
# values a family knows would disable a rule

DRIFT_THRESHOLDS = {
    "p-value threshold of 0: no column ever drifts": ("ks", 0.0, "no column would ever drift"),
    "negative p-value threshold": ("ks", -0.05, "no column would ever drift"),
    "p-value threshold of 1: every column drifts": ("ks", 1.0, "every column would drift"),
    "distance threshold of 0: every column drifts": ("wasserstein", 0.0, "every column would drift"),
    "negative distance threshold": ("psi", -0.1, "every column would drift"),
    "Jensen-Shannon beyond sqrt(ln 2)": ("jensenshannon", 0.9, "no column would ever drift"),
    "Hellinger beyond 1": ("hellinger", 1.2, "no column would ever drift"),
}


@pytest.mark.parametrize(("method", "threshold", "fragment"), DRIFT_THRESHOLDS.values(), ids=DRIFT_THRESHOLDS.keys())
def test_a_drift_threshold_no_score_can_cross_is_refused(method, threshold, fragment, tmp_path):
    raw = edited((("drift", "columns"), {"age": {"method": method, "threshold": threshold}}))
    [(field, message)] = problems_of(raw, tmp_path)
    assert field == "drift.columns.age.threshold" and fragment in message


@pytest.mark.parametrize(
    ("method", "threshold"),
    [("ks", 0.05), ("ks", 0.999), ("wasserstein", 0.1), ("psi", 5.0), ("jensenshannon", 0.83), ("hellinger", 1.0)],
)
def test_a_drift_threshold_that_can_both_flag_and_clear_drift_loads(method, threshold):
    raw = edited((("drift", "columns"), {"age": {"method": method, "threshold": threshold}}))
    assert parse_plan(raw, "p.yaml").drift.columns["age"].threshold == threshold


def test_the_largest_jensen_shannon_distance_is_sqrt_ln2_so_the_limit_is_right():
    from scipy.spatial.distance import jensenshannon

    assert jensenshannon([1, 0], [0, 1]) == pytest.approx(math.sqrt(math.log(2)))  # disjoint distributions


PROMOTION = {
    "min_uplift of 1: never promotes": ("min_uplift", 1.0, "no challenger would ever be promoted"),
    "min_uplift of -1: always promotes": ("min_uplift", -1.0, "is met by any challenger"),
    "fairness regression of 1: never refuses": ("max_fairness_regression", 1.0, "never refuses a challenger"),
}


@pytest.mark.parametrize(("field", "value", "fragment"), PROMOTION.values(), ids=PROMOTION.keys())
def test_a_promotion_guard_that_can_never_hold_or_never_fail_is_refused(field, value, fragment, tmp_path):
    [(got_field, message)] = problems_of(edited((("actions", "promote", field), value)), tmp_path)
    assert got_field == f"actions.promote.{field}" and fragment in message


def test_promotion_guards_inside_their_range_load():
    raw = edited(
        (("actions", "promote", "min_uplift"), -0.5), (("actions", "promote", "max_fairness_regression"), 0.99)
    )
    promote = parse_plan(raw, "p.yaml").actions.promote
    assert (promote.min_uplift, promote.max_fairness_regression) == (-0.5, 0.99)


def test_gx_kwargs_with_a_non_finite_bound_or_a_mostly_of_zero_are_refused(tmp_path):
    raw = edited(
        (
            ("quality", "expectations"),
            [
                {
                    "name": "age_plausible",
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": "age", "min_value": 17, "max_value": INF},
                },
                {
                    "name": "hours_set",
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": "hours_per_week", "value_set": [40, NAN]},
                },
            ],
        ),
        (("quality", "overrides"), {"age_not_null": {"kwargs": {"mostly": 0}}}),
    )
    assert problems_of(raw, tmp_path) == [
        (
            "quality.expectations[0].kwargs.max_value",
            ".inf is not a finite number: a NaN or infinite value would silently disable what it sets",
        ),
        (
            "quality.expectations[1].kwargs.value_set[1]",
            ".nan is not a finite number: a NaN or infinite value would silently disable what it sets",
        ),
        ("quality.overrides.age_not_null.kwargs.mostly", "0 lets every row fail: the check would always pass"),
    ]


def test_the_bundled_plan_is_within_every_limit(tmp_path):
    assert problems_of(read_yaml(BUNDLED.read_text()), tmp_path) == []
