"""quality.validate (Great Expectations) and reference.build_profile on real UCI Adult rows, checked with pandas.

Reference: 20,000 Adult rows; a day: 3,000 other Adult rows. Each scenario damages one column of a clean day
and asserts that exactly the expected checks fail, with counts recomputed by pandas.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from monitoring_pipelines import profiling
from monitoring_pipelines.data import reference
from monitoring_pipelines.demo import load_adult
from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.families.base import FamilyResult
from monitoring_pipelines.families.quality import calculator as quality
from monitoring_pipelines.judge.metrics import Family
from monitoring_pipelines.plan.schema import Features

N_DAY = 3000


@pytest.fixture(scope="module")
def rows(plan):
    """All Adult rows in a seeded order, with the plan's id and score columns (score = logistic of age)."""
    df = load_adult().sample(frac=1, random_state=7).reset_index(drop=True)
    df[plan.data.predictions.id] = [f"req-{i:06d}" for i in range(len(df))]
    df[plan.data.predictions.score] = 1 / (1 + np.exp(-(df["age"] - 38) / 10))
    return df


@pytest.fixture(scope="module")
def ref_rows(rows):
    return rows.iloc[:20_000].reset_index(drop=True)


@pytest.fixture(scope="module")
def day(rows):
    """A clean day: 3,000 Adult rows not in the reference."""
    return rows.iloc[20_000 : 20_000 + N_DAY].reset_index(drop=True)


@pytest.fixture(scope="module")
def profile(ref_rows, plan):
    return profiling.build_profile(ref_rows, plan, "3")


@pytest.fixture(scope="module")
def clean_result(day, plan, profile):
    return quality.validate(day, plan, profile)


def pick(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(n, k, replace=False)


def with_values(day: pd.DataFrame, col: str, k: int, value, seed: int = 0) -> pd.DataFrame:
    """A copy of ``day`` with ``value`` written into ``k`` seeded random rows of ``col``."""
    out = day.copy()
    if out[col].dtype.kind in "iu" and not isinstance(value, (int, np.integer)):
        out[col] = out[col].astype("float64")  # NaN or a float in an int column, as pandas would read it
    out.loc[pick(len(out), k, seed), col] = value
    return out


def by_name(result) -> dict:
    return {o.spec.name: o for o in result.outcomes}


def failed_names(result) -> set[str]:
    return {o.spec.name for o in result.outcomes if not o.passed}


# --------------------------------------------------------------------------------------------------------
# check names


def test_check_specs_cover_the_plan_with_dagster_safe_names(plan):
    specs = quality.check_specs(plan)
    names = [s.name for s in specs]
    f = plan.features
    assert (
        len(names)
        == len(set(names))
        == (4 + len(f.context) + len(f.model_inputs) + 2 * len(f.numerical) + len(f.categorical))
    )
    assert names[:2] == ["row_count", "row_volume"]
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", n) for n in names)
    blocking = {s.name for s in specs if s.blocking}
    assert blocking == {
        "row_count",
        "request_id_unique",
        "score_in_unit_interval",
        *(f"{c}_not_null" for c in f.model_inputs),
        *(f"{c}_numeric" for c in f.numerical),
    }
    assert quality.check_name("native-country.v2", "not_null") == "native_country_v2_not_null"


def test_outcome_names_equal_check_specs_and_dagster_checks(clean_result, plan):
    from monitoring_pipelines.defs.model_assets import build_model_assets

    spec_names = [s.name for s in quality.check_specs(plan)]
    outcome_names = [o.spec.name for o in clean_result.outcomes]
    assert sorted(outcome_names) == sorted(spec_names) and len(outcome_names) == len(spec_names)
    dagster = {c.name: c.blocking for a in build_model_assets(plan) for c in (getattr(a, "check_specs", None) or [])}
    assert dagster == {o.spec.name: o.spec.blocking for o in clean_result.outcomes}


# --------------------------------------------------------------------------------------------------------
# clean day and single defects


def test_clean_day_passes_every_check(clean_result, day):
    assert failed_names(clean_result) == set()
    assert clean_result.row_count == len(day) == N_DAY
    assert by_name(clean_result)["row_count"].observed == N_DAY
    for o in clean_result.outcomes:
        assert o.error is None, o.spec.name
    # columns with nulls in real Adult data still pass, and their count is pandas' count
    wc = by_name(clean_result)["workclass_not_null"]
    assert wc.unexpected_count == day["workclass"].isna().sum() > 0


def test_all_null_column_fails_its_blocking_not_null_check(day, plan, profile):
    bad = day.assign(occupation=np.nan)
    r = quality.validate(bad, plan, profile)
    assert failed_names(r) == {"occupation_not_null"}
    o = by_name(r)["occupation_not_null"]
    assert o.spec.blocking and o.spec.column == "occupation"
    assert o.unexpected_count == bad["occupation"].isna().sum() == len(bad)
    assert o.unexpected_share == pytest.approx(1.0)
    assert len(o.examples) == quality.EXAMPLES and all(pd.isna(v) for v in o.examples)
    assert r.blocking_failed == [o]
    assert r.null_shares["occupation"] == 1.0


@pytest.mark.parametrize("share, passes", [(0.03, True), (0.05, True), (0.08, False)])
def test_nulls_are_tolerated_up_to_five_points_above_reference(day, plan, profile, ref_rows, share, passes):
    col = "hours_per_week"
    assert ref_rows[col].isna().mean() == profile.column(col).null_share == 0.0
    k = round(share * N_DAY)
    r = quality.validate(with_values(day, col, k, np.nan), plan, profile)
    assert failed_names(r) == (set() if passes else {f"{col}_not_null"})
    o = by_name(r)[f"{col}_not_null"]
    assert o.unexpected_count == k and o.unexpected_share == pytest.approx(share)
    assert r.null_shares[col] == pytest.approx(share)


@pytest.mark.parametrize("extra, passes", [(0.04, True), (0.06, False)])
def test_null_tolerance_is_relative_to_the_reference_share(day, plan, profile, ref_rows, extra, passes):
    """workclass is ~5.7% null in Adult: allowed = reference share + 5 points, measured with pandas."""
    col = "workclass"
    ref_share = ref_rows[col].isna().mean()
    assert profile.column(col).null_share == pytest.approx(ref_share) and ref_share > 0.04
    already = int(day[col].isna().sum())
    target = round((ref_share + extra) * N_DAY)
    candidates = np.flatnonzero(day[col].notna().to_numpy())
    bad = day.copy()
    bad.loc[np.random.default_rng(1).choice(candidates, target - already, replace=False), col] = np.nan
    assert bad[col].isna().sum() == target
    r = quality.validate(bad, plan, profile)
    assert failed_names(r) == (set() if passes else {f"{col}_not_null"})
    assert by_name(r)[f"{col}_not_null"].unexpected_count == target


def test_numeric_column_arriving_as_strings_fails_numeric(day, plan, profile):
    bad = day.assign(age=day["age"].astype(str))
    r = quality.validate(bad, plan, profile)
    o = by_name(r)["age_numeric"]
    assert not o.passed and o.spec.blocking
    assert o.unexpected_count == len(bad)
    assert set(o.examples) <= set(bad["age"]) and all(isinstance(v, str) for v in o.examples)
    # the range check cannot compare strings with numbers: it fails with GX's error, it does not pass silently
    rng_o = by_name(r)["age_in_range"]
    assert not rng_o.passed and rng_o.error
    assert failed_names(r) == {"age_numeric", "age_in_range"}
    assert {o.spec.name for o in r.blocking_failed} == {"age_numeric"}


def test_nullable_dtypes_count_as_numeric(day, plan, profile):
    """pandas' nullable Int64 / Float64 (what pyarrow restores from a parquet written with them) are numeric.
    (They used to fail the blocking <col>_numeric check: GX did not recognise the names "Int64" / "Float64".)"""
    bad = with_values(day, "age", 30, np.nan)
    bad["age"] = bad["age"].astype("Int64")
    bad["hours_per_week"] = bad["hours_per_week"].astype("Float64")
    bad.loc[pick(N_DAY, 60, 8), "hours_per_week"] = 10_000.0
    assert bad["age"].isna().sum() == 30
    r = quality.validate(bad, plan, profile)
    assert failed_names(r) == {"hours_per_week_in_range"}
    assert by_name(r)["age_not_null"].unexpected_count == 30
    assert by_name(r)["hours_per_week_in_range"].unexpected_count == 60


def widened_range(ref_rows, col):
    lo, hi = ref_rows[col].min(), ref_rows[col].max()
    pad = quality.RANGE_TOLERANCE * (hi - lo)
    return lo - pad, hi + pad


@pytest.mark.parametrize("share, passes", [(0.02, False), (0.005, True)])
def test_values_far_outside_reference_range(day, plan, profile, ref_rows, share, passes):
    col = "hours_per_week"
    k = round(share * N_DAY)
    bad = with_values(day, col, k, 10_000.0)
    lo, hi = widened_range(ref_rows, col)
    outside = int(((bad[col] < lo) | (bad[col] > hi)).sum())
    assert outside == k
    r = quality.validate(bad, plan, profile)
    o = by_name(r)[f"{col}_in_range"]
    assert o.passed is passes and not o.spec.blocking
    assert o.unexpected_count == outside
    assert o.unexpected_share == pytest.approx(outside / bad[col].notna().sum())
    assert o.expected["min_value"] == pytest.approx(lo) and o.expected["max_value"] == pytest.approx(hi)
    assert o.expected["mostly"] == quality.MOSTLY
    assert failed_names(r) == (set() if passes else {f"{col}_in_range"})
    if not passes:
        assert o.examples and set(o.examples) == {10_000.0}
        assert r.blocking_failed == []


def test_range_is_widened_by_the_tolerance(day, plan, profile, ref_rows):
    """Values beyond the reference max but inside the 10% widening pass; just outside it they fail."""
    col = "hours_per_week"
    lo, hi = widened_range(ref_rows, col)
    assert hi > ref_rows[col].max() + 1
    inside = quality.validate(with_values(day, col, 300, float(hi) - 0.01), plan, profile)
    assert by_name(inside)[f"{col}_in_range"].passed and by_name(inside)[f"{col}_in_range"].unexpected_count == 0
    outside = quality.validate(with_values(day, col, 300, float(hi) + 0.01), plan, profile)
    assert not by_name(outside)[f"{col}_in_range"].passed
    assert by_name(outside)[f"{col}_in_range"].unexpected_count == 300


@pytest.mark.parametrize("share, passes", [(0.02, False), (0.005, True)])
def test_unseen_category(day, plan, profile, share, passes):
    col, unseen = "education", "Doctorate-of-Magic"
    assert unseen not in profile.column(col).categories
    k = round(share * N_DAY)
    bad = day.copy()
    bad.loc[pick(N_DAY, k, 3), col] = unseen
    r = quality.validate(bad, plan, profile)
    o = by_name(r)[f"{col}_known_categories"]
    assert o.passed is passes and not o.spec.blocking
    assert o.unexpected_count == (~bad[col].isin(list(profile.column(col).categories))).sum() == k
    assert failed_names(r) == (set() if passes else {f"{col}_known_categories"})
    if not passes:
        assert unseen in o.examples


def test_nulls_are_not_unseen_categories(day, plan, profile):
    """native_country has nulls in Adult; known_categories looks at non-null values only."""
    o = by_name(quality.validate(day, plan, profile))["native_country_known_categories"]
    assert day["native_country"].isna().sum() > 0 and o.passed and o.unexpected_count == 0


@pytest.fixture(scope="module")
def duplicate_result(day, plan, profile):
    id_col = plan.data.predictions.id
    bad = day.copy()
    rows = pick(N_DAY, 11, 4)
    bad.loc[rows[1:], id_col] = bad.loc[rows[0], id_col]  # 11 rows share one id
    return bad, quality.validate(bad, plan, profile)


def test_duplicate_request_ids_fail_uniqueness(duplicate_result, plan):
    bad, r = duplicate_result
    id_col = plan.data.predictions.id
    o = by_name(r)["request_id_unique"]
    assert not o.passed and o.spec.blocking
    assert failed_names(r) == {"request_id_unique"}
    # GX counts every row of a duplicated id, the first occurrence included
    assert o.unexpected_count == bad[id_col].duplicated(keep=False).sum() == 11
    assert set(o.examples) == {bad.loc[bad[id_col].duplicated(), id_col].iloc[0]}


def test_empty_day_fails_row_count_only(day, plan, profile):
    r = quality.validate(day.iloc[:0], plan, profile)
    assert failed_names(r) == {"row_count"}
    o = by_name(r)["row_count"]
    assert o.spec.blocking and o.observed == 0
    assert r.row_count == 0
    assert all(np.isnan(v) for v in r.null_shares.values())


@pytest.fixture(scope="module")
def score_result(day, plan, profile):
    s = plan.data.predictions.score
    bad = day.copy()
    bad.loc[17, s] = 1.3
    bad.loc[18, s] = 1.0  # the interval is closed: 0 and 1 are valid scores
    bad.loc[19, s] = 0.0
    return bad, quality.validate(bad, plan, profile)


def test_score_outside_unit_interval_fails(score_result):
    bad, r = score_result
    o = by_name(r)["score_in_unit_interval"]
    assert not o.passed and o.spec.blocking
    assert o.unexpected_count == 1 == int(((bad["score"] < 0) | (bad["score"] > 1)).sum())
    assert o.examples == [1.3]
    assert failed_names(r) == {"score_in_unit_interval"}


def test_integer_coded_categorical_matches_its_reference(plan):
    """A categorical feature stored as int codes: the profile keeps str(value), the day arrives as ints.
    The same distribution must pass known_categories (it used to fail with 100% unexpected)."""
    p = plan.model_copy(
        update={"features": Features(numerical=["x"], categorical=["code"]), "protected_attributes": []}
    )
    rng = np.random.default_rng(0)

    def frame(n):
        return pd.DataFrame(
            {
                "request_id": np.arange(n),
                "score": rng.uniform(size=n),
                "x": rng.normal(size=n),
                "code": rng.integers(1, 4, n),
            }
        )

    prof = profiling.build_profile(frame(2000), p, "1")
    assert set(prof.column("code").categories) == {"1", "2", "3"}
    day_ = frame(500)
    r = quality.validate(day_, p, prof)
    assert failed_names(r) == set()
    day_.loc[:19, "code"] = 9  # 4% unseen code
    r = quality.validate(day_, p, prof)
    o = by_name(r)["code_known_categories"]
    assert failed_names(r) == {"code_known_categories"} and o.unexpected_count == 20 and "9" in o.examples
    assert day_["code"].dtype.kind == "i"  # the caller's frame is not modified


# --------------------------------------------------------------------------------------------------------
# metrics()


@pytest.fixture(scope="module")
def broken_result(day, plan, profile):
    """Several defects at once: 2 blocking, 2 non-blocking."""
    bad = day.copy()
    bad["occupation"] = np.nan  # blocking
    bad.loc[5, plan.data.predictions.score] = 1.3  # blocking
    bad["capital_loss"] = bad["capital_loss"].astype("float64")
    bad.loc[pick(N_DAY, 90, 5), "capital_loss"] = 1e7  # non-blocking
    bad.loc[pick(N_DAY, 90, 6), "marital_status"] = "Married-to-the-job"  # non-blocking
    return bad, quality.validate(bad, plan, profile)


def test_broken_day_fails_exactly_the_damaged_checks(broken_result):
    _, r = broken_result
    assert failed_names(r) == {
        "occupation_not_null",
        "score_in_unit_interval",
        "capital_loss_in_range",
        "marital_status_known_categories",
    }
    assert {o.spec.name for o in r.blocking_failed} == {"occupation_not_null", "score_in_unit_interval"}


def test_metrics_count_failures_and_null_shares(broken_result, plan):
    bad, r = broken_result
    values = {(m.metric, m.segment): m.value for m in r.metrics()}
    assert all(m.family == Family.QUALITY for m in r.metrics())
    n_failed = sum(not o.passed for o in r.outcomes)
    n_blocking = sum(not o.passed and o.spec.blocking for o in r.outcomes)
    assert (n_failed, n_blocking) == (4, 2)
    segment = next(m.segment for m in r.metrics() if m.metric == "failed_checks")
    assert values[("failed_checks", segment)] == n_failed
    assert values[("blocking_failed_checks", segment)] == n_blocking
    assert values[("row_count", segment)] == len(bad)
    per_check = {seg: v for (metric, seg), v in values.items() if metric == "check_failed"}
    assert set(per_check) == {s.name for s in quality.check_specs(plan)}
    assert per_check == {o.spec.name: float(not o.passed) for o in r.outcomes}
    nulls = {seg: v for (metric, seg), v in values.items() if metric == "null_share"}
    assert set(nulls) == set(plan.features.model_inputs)
    for col, v in nulls.items():
        assert v == pytest.approx(bad[col].isna().mean(), abs=1e-12), col
    assert nulls["occupation"] == 1.0


def test_metrics_of_clean_day(clean_result):
    values = {
        m.metric: m.value for m in clean_result.metrics() if m.metric in ("failed_checks", "blocking_failed_checks")
    }
    assert values == {"failed_checks": 0.0, "blocking_failed_checks": 0.0}


# --------------------------------------------------------------------------------------------------------
# reference.build_profile


def test_profile_figures_equal_pandas(profile, ref_rows, plan):
    assert (profile.model, profile.model_version, profile.row_count) == (plan.name, "3", len(ref_rows))
    score = plan.data.predictions.score
    assert set(profile.columns) == {*plan.features.model_inputs, score}
    for col in [*plan.features.numerical, score]:
        c, s = profile.column(col), ref_rows[col]
        assert c.kind == "numerical"
        assert (c.null_share, c.minimum, c.maximum) == (s.isna().mean(), s.min(), s.max())
        assert c.quantiles["q50"] == pytest.approx(s.median())
        assert c.quantiles["q01"] == pytest.approx(np.nanpercentile(s, 1))
        assert c.quantiles["q99"] == pytest.approx(np.nanpercentile(s, 99))
    for col in plan.features.categorical:
        c, s = profile.column(col), ref_rows[col]
        assert c.kind == "categorical"
        assert c.null_share == pytest.approx(s.isna().mean(), abs=1e-15)
        counts = s.dropna().value_counts()
        expected = (counts / counts.sum()).to_dict()
        assert c.categories.keys() == expected.keys()
        for k, v in expected.items():
            assert c.categories[k] == pytest.approx(v, abs=1e-15), (col, k)
        assert sum(c.categories.values()) == pytest.approx(1.0)
    assert profile.column("workclass").null_share > 0.04  # the real Adult missing values made it in


def test_profile_sample_holds_inputs_score_and_protected_attributes_and_is_capped(ref_rows, plan, monkeypatch):
    needed = [*plan.features.model_inputs, plan.data.predictions.score, *plan.protected_attributes]
    full = profiling.build_profile(ref_rows, plan, "3")
    assert list(full.sample.columns) == needed and len(full.sample) == len(ref_rows)
    monkeypatch.setattr(reference, "REFERENCE_SAMPLE_ROWS", 1000)
    capped = profiling.build_profile(ref_rows, plan, "3")
    assert len(capped.sample) == 1000 and capped.row_count == len(ref_rows)
    assert list(capped.sample.index) == list(range(1000))
    again = profiling.build_profile(ref_rows, plan, "3")
    pd.testing.assert_frame_equal(capped.sample, again.sample)  # seeded
    # statistics still come from every row, not the sample
    assert capped.column("age").maximum == ref_rows["age"].max()


def test_profile_missing_feature_names_column_and_version(ref_rows, plan):
    with pytest.raises(DataSourceError) as exc:
        profiling.build_profile(ref_rows.drop(columns=["occupation"]), plan, "7")
    msg = str(exc.value)
    assert "occupation" in msg and "version 7" in msg and plan.name in msg
    assert "relationship" not in msg


def test_profile_missing_score_and_empty_reference(ref_rows, plan):
    with pytest.raises(DataSourceError, match="'score'"):
        profiling.build_profile(ref_rows.drop(columns=["score"]), plan, "7")
    with pytest.raises(DataSourceError, match="version 7: reference data has no rows"):
        profiling.build_profile(ref_rows.iloc[:0], plan, "7")


# --------------------------------------------------------------------------------------------------------
# daily volume (row_volume)


RECENT = [3000, 3100, 2900, 3050, 2950]  # row counts of the model's previous days (median 3000)


def test_volume_drop_to_a_tenth_of_recent_days_fails_row_volume(day, plan, profile):
    r = quality.validate(day.iloc[:300], plan, profile, recent_row_counts=RECENT)
    o = by_name(r)["row_volume"]
    assert failed_names(r) == {"row_volume"}
    assert o.observed == 300 and not o.spec.blocking
    assert (o.expected["min_value"], o.expected["max_value"]) == (1500, 6000)
    assert "median of 5 recent days = 3000 rows" in o.expected["basis"]
    assert by_name(quality.validate(day, plan, profile, recent_row_counts=RECENT))["row_volume"].passed


def test_volume_spike_fails_and_too_little_history_derives_no_range(day, plan, profile):
    spike = quality.validate(day, plan, profile, recent_row_counts=[1000, 1200, 1100])
    assert failed_names(spike) == {"row_volume"} and by_name(spike)["row_volume"].expected["max_value"] == 2200
    young = by_name(quality.validate(day.iloc[:10], plan, profile, recent_row_counts=[3000, 3000]))["row_volume"]
    assert young.passed and young.expected.get("max_value") is None and young.expected["min_value"] == 0
    assert "2 recent day(s) stored, 3 needed" in young.expected["basis"]


def test_plan_volume_bounds_replace_the_derived_ones_side_by_side_and_can_block(day, profile):
    p = plan_with({"volume": {"min_rows": 3500, "blocking": True}})
    r = quality.validate(day, p, profile, recent_row_counts=RECENT)
    o = by_name(r)["row_volume"]
    assert (o.expected["min_value"], o.expected["max_value"]) == (3500, 6000)
    assert not o.passed and r.blocking_failed == [o]
    assert quality.volume_bounds(p.quality.volume, [2001, 2001, 2003]).max_rows == 4002
    assert quality.volume_bounds(p.quality.volume, [2001, 2001, float("nan")]).max_rows is None


# --------------------------------------------------------------------------------------------------------
# plan expectations, overrides, disable


def plan_with(quality_section: dict, **predictions):
    from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR, read_yaml
    from monitoring_pipelines.validation import parse_plan

    raw = read_yaml((BUNDLED_PLANS_DIR / "adult_income.yaml").read_text())
    raw["quality"] = quality_section
    raw["data"]["predictions"].update(predictions)
    return parse_plan(raw, "adult_income.yaml")


def test_plan_expectations_pass_or_fail_as_gx_computes_them(day, profile):
    mean = day["age"].mean()
    p = plan_with(
        {
            "expectations": [
                {
                    "name": "age_mean_plausible",
                    "type": "expect_column_mean_to_be_between",
                    "kwargs": {"column": "age", "min_value": mean - 1, "max_value": mean + 1},
                    "meta": {"owner": "risk-ml"},
                },
                {
                    "name": "age_mean_of_retirees",
                    "type": "expect_column_mean_to_be_between",
                    "kwargs": {"column": "age", "min_value": 60, "max_value": 70},
                    "description": "Traffic of retirees.",
                },
                {
                    "name": "request_id_format",
                    "type": "expect_column_values_to_match_regex",
                    "kwargs": {"column": "request_id", "regex": r"^req-\d{6}$"},
                    "blocking": True,
                },
            ]
        }
    )
    bad = day.copy()
    bad.loc[pick(N_DAY, 3, 9), "request_id"] = ["bad-1", "bad-2", "bad-3"]
    r = quality.validate(bad, p, profile)
    got = by_name(r)
    assert failed_names(r) == {"age_mean_of_retirees", "request_id_format"}
    assert got["age_mean_plausible"].observed == pytest.approx(mean)
    assert got["age_mean_of_retirees"].expected == {"min_value": 60, "max_value": 70}
    assert got["age_mean_of_retirees"].spec.description == "Traffic of retirees."
    fmt = got["request_id_format"]
    assert fmt.spec.blocking and fmt.spec.origin == "quality.expectations[2]" and r.blocking_failed == [fmt]
    assert fmt.unexpected_count == (~bad["request_id"].str.match(r"^req-\d{6}$")).sum() == 3
    assert set(fmt.examples) == {"bad-1", "bad-2", "bad-3"}
    per_check = {m.segment: m.value for m in r.metrics() if m.metric == "check_failed"}
    assert per_check["request_id_format"] == 1.0 and per_check["age_mean_plausible"] == 0.0


def test_plan_expectations_become_dagster_checks_with_their_blocking_flag():
    from monitoring_pipelines.defs.model_assets import build_model_assets

    p = plan_with(
        {
            "expectations": [
                {
                    "name": "age_mean",
                    "type": "expect_column_mean_to_be_between",
                    "kwargs": {"column": "age", "min_value": 1},
                    "blocking": True,
                }
            ],
            "disable": ["capital_gain_in_range"],
            "overrides": {"age_in_range": {"blocking": True}},
        }
    )
    checks = {c.name: c.blocking for a in build_model_assets(p) for c in (getattr(a, "check_specs", None) or [])}
    assert checks["age_mean"] is True and checks["age_in_range"] is True
    assert "capital_gain_in_range" not in checks and "capital_gain_not_null" in checks
    assert checks == {s.name: s.blocking for s in quality.check_specs(p)}


def test_override_changes_mostly_bounds_and_blocking_of_a_derived_check(day, plan, profile):
    col = "hours_per_week"
    bad = with_values(day, col, 60, 10_000.0)  # 2% out of range: fails the derived 99%
    assert failed_names(quality.validate(bad, plan, profile)) == {f"{col}_in_range"}
    lenient = plan_with({"overrides": {f"{col}_in_range": {"kwargs": {"mostly": 0.95}}}})
    o = by_name(quality.validate(bad, lenient, profile))[f"{col}_in_range"]
    assert o.passed and o.expected["mostly"] == 0.95 and o.unexpected_count == 60
    assert o.spec.origin == f"derived, quality.overrides.{col}_in_range"
    strict = plan_with(
        {
            "overrides": {
                f"{col}_in_range": {"kwargs": {"max_value": 60}, "blocking": True, "description": "A working week."}
            }
        }
    )
    r = quality.validate(day, strict, profile)
    o = by_name(r)[f"{col}_in_range"]
    assert o.expected["max_value"] == 60 and o.expected["min_value"] == pytest.approx(
        widened_range(day, col)[0], abs=10
    )
    assert not o.passed and o.unexpected_count == (day[col] > 60).sum() and o.spec.blocking
    assert r.blocking_failed == [o] and o.spec.description == "A working week."


def test_disable_removes_a_derived_check_everywhere(day, profile):
    p = plan_with({"disable": ["occupation_not_null", "occupation_known_categories"]})
    names = [s.name for s in quality.check_specs(p)]
    assert "occupation_not_null" not in names and "occupation_known_categories" not in names
    r = quality.validate(day.assign(occupation=np.nan), p, profile)
    assert failed_names(r) == set() and "occupation_not_null" not in by_name(r)
    assert r.null_shares["occupation"] == 1.0  # still reported


# --------------------------------------------------------------------------------------------------------
# column-wise, chunked validation == one GX validate() on all rows


EXTRA = [
    {
        "name": "age_mean",
        "type": "expect_column_mean_to_be_between",
        "kwargs": {"column": "age", "min_value": 30, "max_value": 45},
    },
    {
        "name": "age_median",
        "type": "expect_column_median_to_be_between",
        "kwargs": {"column": "age", "min_value": 30, "max_value": 40},
    },
    {
        "name": "capital_gain_max",
        "type": "expect_column_max_to_be_between",
        "kwargs": {"column": "capital_gain", "max_value": 50_000},
    },
    {
        "name": "request_id_format",
        "type": "expect_column_values_to_match_regex",
        "kwargs": {"column": "request_id", "regex": r"^req-\d{6}$", "mostly": 0.999},
    },
    {
        "name": "sex_values",
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "sex", "value_set": ["Male", "Female"]},
    },
    {
        "name": "education_num_lengths",
        "type": "expect_column_value_lengths_to_be_between",
        "kwargs": {"column": "education", "min_value": 3, "max_value": 12, "mostly": 0.5},
    },
    {
        "name": "hours_above_age",
        "type": "expect_column_pair_values_a_to_be_greater_than_b",
        "kwargs": {"column_A": "age", "column_B": "education_num", "mostly": 0.9},
    },
    {
        "name": "columns_present",
        "type": "expect_table_columns_to_match_set",
        "kwargs": {"column_set": ["age", "sex"], "exact_match": False},
    },
    {"name": "rows_exact", "type": "expect_table_row_count_to_equal", "kwargs": {"value": 3000}},
]


@pytest.fixture(scope="module")
def damaged(day, plan):
    """Defects spread over every chunk of 700 rows: more than 20 of some (GX keeps 20 examples)."""
    bad = day.copy()
    bad.loc[pick(N_DAY, 90, 11), "hours_per_week"] = 10_000.0
    bad.loc[pick(N_DAY, 40, 12), "education"] = "Doctorate-of-Magic"
    bad.loc[pick(N_DAY, 200, 13), "workclass"] = np.nan
    bad.loc[[5, 2990], plan.data.predictions.score] = [1.5, -0.1]
    bad.loc[[10, 2500, 2999], plan.data.predictions.id] = bad.loc[10, plan.data.predictions.id]  # across chunks
    bad.loc[pick(N_DAY, 4, 14), plan.data.predictions.id] = ["x1", "x2", "x3", "x4"]
    return bad


def assert_same_outcomes(got, want):
    assert got.row_count == want.row_count
    assert got.null_shares == pytest.approx(want.null_shares, nan_ok=True)
    assert [o.spec for o in got.outcomes] == [o.spec for o in want.outcomes]
    for g, w in zip(got.outcomes, want.outcomes):
        for attr in (
            "passed",
            "expectation",
            "expected",
            "observed",
            "observed_text",
            "unexpected_count",
            "unexpected_share",
            "examples",
            "error",
            "result",
        ):
            assert getattr(g, attr) == getattr(w, attr), (g.spec.name, attr)


def test_chunked_validation_equals_one_validate_on_all_rows(damaged, profile):
    p = plan_with({"expectations": EXTRA, "overrides": {"workclass_not_null": {"kwargs": {"mostly": 0.5}}}})
    single = quality.validate_single(damaged, p, profile, recent_row_counts=RECENT)
    chunked = quality.validate(damaged, p, profile, recent_row_counts=RECENT, chunk_rows=700)
    assert_same_outcomes(chunked, single)
    # the defects are really there, so the comparison covers failures, counts and 20-example lists
    assert failed_names(single) >= {
        "hours_per_week_in_range",
        "education_known_categories",
        "request_id_unique",
        "score_in_unit_interval",
        "request_id_format",
    }
    o = by_name(chunked)["hours_per_week_in_range"]
    assert o.unexpected_count == 90 and len(o.result["partial_unexpected_list"]) == 20
    assert o.result["partial_unexpected_index_list"] == sorted(o.result["partial_unexpected_index_list"])
    assert by_name(chunked)["request_id_unique"].unexpected_count == 3


def test_chunked_validation_reports_gx_errors_like_one_validate(day, plan, profile):
    bad = day.assign(age=day["age"].astype(str))
    single = quality.validate_single(bad, plan, profile)
    chunked = quality.validate(bad, plan, profile, chunk_rows=700)
    assert failed_names(chunked) == failed_names(single) == {"age_numeric", "age_in_range"}
    assert by_name(chunked)["age_in_range"].error and by_name(single)["age_in_range"].error
    assert by_name(chunked)["age_numeric"].result == by_name(single)["age_numeric"].result


@pytest.mark.slow
def test_parquet_day_read_in_chunks_equals_the_frame(damaged, profile, tmp_path):
    from monitoring_pipelines.data import sources

    p = plan_with({"expectations": EXTRA}, path=str(tmp_path))
    d = dt.date(2026, 1, 5)
    served = damaged.assign(
        ts=pd.Timestamp(d, tz="UTC") + pd.to_timedelta(np.arange(N_DAY) * 28, unit="s"),
        predicted_label=1,
        latency_ms=20.0,
        status="ok",
        model_version="3",
    )
    other_day = served.iloc[:50].assign(ts=pd.Timestamp(d, tz="UTC") - pd.Timedelta(hours=1))
    pd.concat([other_day, served], ignore_index=True).to_parquet(tmp_path / f"{d}.parquet", row_group_size=400)
    frame = sources.read_predictions(p, d)
    assert len(frame) == N_DAY
    streamed = quality.validate_parquet(p, profile, d, recent_row_counts=RECENT, chunk_rows=300)
    assert_same_outcomes(streamed, quality.validate_single(frame, p, profile, recent_row_counts=RECENT))
    # the family's calculator: fitted on the profile, reading the day itself (one chunk here: the whole-frame path)
    fitted = quality.QualityCalculator(p).fit(profile)
    result = fitted.calculate(d, recent_row_counts=RECENT)
    assert_same_outcomes(result, streamed)
    assert isinstance(result, FamilyResult)
    assert result.headline() == {
        "row_count": N_DAY,
        "failed_checks": len(result.failed),
        "blocking_failed_checks": len(result.blocking_failed),
    }
    assert len(result.failed) > len(result.blocking_failed) > 0
    with pytest.raises(ValueError, match=r"model adult_income: the quality calculator is not fitted"):
        quality.QualityCalculator(p).calculate(d)
    with pytest.raises(DataSourceError, match=r"model adult_income, day 2026-01-06: prediction file not found"):
        quality.validate_parquet(p, profile, dt.date(2026, 1, 6))


# --------------------------------------------------------------------------------------------------------
# plan mistakes


def problems_of(quality_section: dict) -> dict[str, str]:
    from monitoring_pipelines.errors import PlanError

    with pytest.raises(PlanError) as exc:
        plan_with(quality_section)
    return {field: msg for _, field, msg in exc.value.problems}


def test_quality_section_mistakes_are_reported_at_load_with_their_field():
    got = problems_of(
        {
            "volume": {"min_rows": 10, "max_rows": 5},
            "expectations": [
                {"name": "age_not_null", "type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}},
                {"name": "my-check", "type": "check_the_mean", "kwargs": {"column": "age", "row_condition": "age>3"}},
                {
                    "name": "ok_name",
                    "type": "expect_column_mean_to_be_between",
                    "kwargs": {"column": "age", "min_value": 1},
                },
                {
                    "name": "ok_name",
                    "type": "expect_column_mean_to_be_between",
                    "kwargs": {"column": "age", "min_value": 1},
                },
            ],
            "overrides": {
                "age_in_rnage": {"blocking": True},
                "row_volume": {"blocking": True},
                "sex_present": {"kwargs": {"column": "gender"}},
                "race_present": {},
            },
            "disable": ["no_such_check", "age_numeric", "age_numeric"],
        }
    )
    assert set(got) == {
        "quality.volume.min_rows",
        "quality.expectations[0].name",
        "quality.expectations[1].name",
        "quality.expectations[1].type",
        "quality.expectations[1].kwargs.row_condition",
        "quality.expectations[3].name",
        "quality.overrides.age_in_rnage",
        "quality.overrides.row_volume",
        "quality.overrides.sex_present.kwargs.column",
        "quality.overrides.race_present",
        "quality.disable[0]",
        "quality.disable[2]",
    }
    assert "derived check; change it under quality.overrides.age_not_null" in got["quality.expectations[0].name"]
    assert "unknown check 'age_in_rnage'" in got["quality.overrides.age_in_rnage"]
    assert "age_in_range" in got["quality.overrides.age_in_rnage"]  # lists the names that exist
    assert "also quality.expectations[2].name" in got["quality.expectations[3].name"]
    with pytest.raises(Exception, match="Extra inputs are not permitted"):
        plan_with({"expectations": [{"name": "a", "type": "expect_column_to_exist", "kwarg": {}}]})


def test_gx_rejects_unknown_types_and_bad_kwargs_naming_the_field(day, profile):
    from monitoring_pipelines.errors import PlanError

    p = plan_with(
        {
            "expectations": [
                {"name": "typo", "type": "expect_column_mean_to_be_betwen", "kwargs": {"column": "age"}},
                {
                    "name": "bad_bound",
                    "type": "expect_column_mean_to_be_between",
                    "kwargs": {"column": "age", "min_value": "old"},
                },
                {"name": "no_column", "type": "expect_column_values_to_not_be_null", "kwargs": {}},
                {
                    "name": "other_table",
                    "type": "expect_table_row_count_to_equal_other_table",
                    "kwargs": {"other_table_name": "t"},
                },
                {
                    "name": "fine",
                    "type": "expect_column_max_to_be_between",
                    "kwargs": {"column": "age", "max_value": 99},
                },
            ],
            "overrides": {"age_in_range": {"kwargs": {"mostly": 1.5}}, "age_not_null": {"kwargs": {"colour": "red"}}},
        }
    )  # loads: the plan schema does not import GX
    got = dict(quality.expectation_problems(p))
    assert set(got) == {
        "quality.expectations[0].type",
        "quality.expectations[1].kwargs.min_value",
        "quality.expectations[2].kwargs.column",
        "quality.expectations[3].type",
        "quality.overrides.age_in_range.kwargs.mostly",
        "quality.overrides.age_not_null.kwargs.colour",
    }
    assert "did you mean 'expect_column_mean_to_be_between'" in got["quality.expectations[0].type"]
    assert "not a valid float" in got["quality.expectations[1].kwargs.min_value"]
    assert "field required" in got["quality.expectations[2].kwargs.column"]
    assert "not supported on a day's batch" in got["quality.expectations[3].type"]
    assert "less than or equal to 1.0" in got["quality.overrides.age_in_range.kwargs.mostly"]
    assert "has no argument 'colour'" in got["quality.overrides.age_not_null.kwargs.colour"]
    with pytest.raises(PlanError) as exc:  # the nightly run refuses the plan before reading data
        quality.validate(day, p, profile)
    assert {(f, fld) for f, fld, _ in exc.value.problems} == {("model adult_income", fld) for fld in got}
    assert "model adult_income: quality.expectations[0].type: unknown" in str(exc.value)
