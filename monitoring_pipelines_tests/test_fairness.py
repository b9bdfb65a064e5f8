"""fairness.compute against a hand calculation, pandas and fairlearn's MetricFrame."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from monitoring_pipelines.families.fairness import calculator as fairness
from monitoring_pipelines.judge.metrics import Family

COLS = dict(label_col="label", prediction_col="pred")


def block(sex, tp, fn, fp, tn, **extra):
    """Rows of one group with exact confusion counts."""
    rows = [(1, 1)] * tp + [(1, 0)] * fn + [(0, 1)] * fp + [(0, 0)] * tn
    return pd.DataFrame(rows, columns=["label", "pred"]).assign(sex=sex, **extra)


@pytest.fixture
def three_groups():
    """A: 40 rows, TPR 15/20, FPR 4/20.  B: 50 rows, TPR 5/10, FPR 10/40.  C: 10 rows (small), TPR 0/5, FPR 5/5."""
    df = pd.concat([block("A", 15, 5, 4, 16), block("B", 5, 5, 10, 30), block("C", 0, 5, 5, 0)], ignore_index=True)
    return df.sample(frac=1, random_state=0).reset_index(drop=True)


def by_segment(result):
    return {g.segment: g for g in result.groups}


def test_per_group_figures_by_hand(three_groups):
    r = fairness.compute(three_groups, **COLS, protected_attributes=["sex"], min_group_size=30)
    g = by_segment(r)
    assert list(g) == ["sex=A", "sex=B", "sex=C"]
    a, b, c = g["sex=A"], g["sex=B"], g["sex=C"]
    assert (a.group_count, a.selection_rate, a.true_positive_rate, a.false_positive_rate, a.accuracy) == (
        40,
        pytest.approx(19 / 40),
        pytest.approx(0.75),
        pytest.approx(0.2),
        pytest.approx(31 / 40),
    )
    assert (b.group_count, b.selection_rate, b.true_positive_rate, b.false_positive_rate, b.accuracy) == (
        50,
        pytest.approx(0.3),
        pytest.approx(0.5),
        pytest.approx(0.25),
        pytest.approx(0.7),
    )
    assert (c.group_count, c.selection_rate, c.true_positive_rate, c.false_positive_rate, c.accuracy) == (
        10,
        pytest.approx(0.5),
        0.0,
        1.0,
        0.0,
    )
    assert (a.small, b.small, c.small) == (False, False, True)


def test_per_group_figures_equal_pandas_and_metricframe(three_groups):
    r = fairness.compute(three_groups, **COLS, protected_attributes=["sex"], min_group_size=30)
    df = three_groups
    by_pandas = df.groupby("sex").apply(
        lambda d: pd.Series(
            {
                "group_count": len(d),
                "selection_rate": d["pred"].mean(),
                "true_positive_rate": d.loc[d["label"] == 1, "pred"].mean(),
                "false_positive_rate": d.loc[d["label"] == 0, "pred"].mean(),
                "accuracy": (d["label"] == d["pred"]).mean(),
            }
        ),
        include_groups=False,
    )
    mf = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "accuracy": accuracy_score,
        },
        y_true=df["label"],
        y_pred=df["pred"],
        sensitive_features=df["sex"],
    ).by_group
    for value, g in zip(by_pandas.index, r.groups):
        assert g.segment == f"sex={value}"
        for metric in ("group_count", "selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"):
            assert getattr(g, metric) == pytest.approx(by_pandas.loc[value, metric], abs=1e-12)
            if metric != "group_count":
                assert getattr(g, metric) == pytest.approx(mf.loc[value, metric], abs=1e-12)


def test_gaps_leave_out_small_groups(three_groups):
    r = fairness.compute(three_groups, **COLS, protected_attributes=["sex"], min_group_size=30)
    d = r.disparity("sex")
    assert d.compared_groups == ("sex=A", "sex=B") and d.excluded_groups == ("sex=C",)
    assert r.small_groups == ("sex=C",)
    # with C (TPR 0, FPR 1) these would be 0.75 and 1.0
    assert d.demographic_parity_difference == pytest.approx(19 / 40 - 0.3, abs=1e-12)
    assert d.demographic_parity_ratio == pytest.approx(0.3 / (19 / 40), abs=1e-12)
    assert d.equal_opportunity_difference == pytest.approx(0.25, abs=1e-12)
    assert d.equalized_odds_difference == pytest.approx(0.25, abs=1e-12)  # TPR gap .25 > FPR gap .05
    for metric in fairness.GAP_METRICS:
        assert d.worst_group(metric) == "sex=B"

    # the same gaps as fairlearn's, once the small group is removed by hand
    big = three_groups[three_groups["sex"] != "C"]
    kw = dict(y_true=big["label"], y_pred=big["pred"], sensitive_features=big["sex"])
    assert d.demographic_parity_difference == pytest.approx(demographic_parity_difference(**kw), abs=1e-12)
    assert d.demographic_parity_ratio == pytest.approx(demographic_parity_ratio(**kw), abs=1e-12)
    assert d.equalized_odds_difference == pytest.approx(equalized_odds_difference(**kw), abs=1e-12)

    # and once small groups count, C dominates
    everyone = fairness.compute(three_groups, **COLS, protected_attributes=["sex"], min_group_size=1).disparity("sex")
    assert everyone.equal_opportunity_difference == pytest.approx(0.75)
    assert everyone.equalized_odds_difference == pytest.approx(0.8)  # FPR 1.0 - 0.2 beats TPR 0.75 - 0
    assert everyone.worst_group("equalized_odds_difference") == "sex=C"


def test_single_large_group_has_no_gap(three_groups):
    d = fairness.compute(three_groups, **COLS, protected_attributes=["sex"], min_group_size=45).disparity("sex")
    assert d.compared_groups == ("sex=B",)
    assert all(getattr(d, m) is None for m in fairness.GAP_METRICS)


def test_intersection_segments(three_groups):
    rng = np.random.default_rng(1)
    df = three_groups.assign(race=rng.choice(["Black", "White"], len(three_groups)))
    df.loc[df["sex"] == "C", "race"] = "White"  # so C&Black never occurs
    r = fairness.compute(df, **COLS, protected_attributes=["sex", "race"], min_group_size=15)
    assert r.attributes == ("sex", "race", "sex&race")

    inter = [g for g in r.groups if g.attribute == "sex&race"]
    sizes = df.groupby(["sex", "race"]).size()
    assert {g.segment: g.group_count for g in inter} == {f"sex={s}&race={c}": n for (s, c), n in sizes.items()}
    assert "sex=C&race=Black" not in {g.segment for g in inter}  # unobserved combinations are not groups

    mf = MetricFrame(
        metrics={"tpr": true_positive_rate, "sel": selection_rate},
        y_true=df["label"],
        y_pred=df["pred"],
        sensitive_features=df[["sex", "race"]],
    ).by_group
    for g in inter:
        s, c = (part.split("=")[1] for part in g.segment.split("&"))
        assert g.true_positive_rate == pytest.approx(mf.loc[(s, c), "tpr"], abs=1e-12)
        assert g.selection_rate == pytest.approx(mf.loc[(s, c), "sel"], abs=1e-12)

    d = r.disparity("sex&race")
    large = [g for g in inter if g.group_count >= 15]
    assert set(d.compared_groups) == {g.segment for g in large}
    tprs = [g.true_positive_rate for g in large]
    assert d.equal_opportunity_difference == pytest.approx(max(tprs) - min(tprs), abs=1e-12)
    assert d.worst_group("equal_opportunity_difference") == min(large, key=lambda g: g.true_positive_rate).segment
    segments = {(m.metric, m.segment) for m in r.metrics()}
    assert ("equal_opportunity_difference", "sex&race") in segments
    assert ("true_positive_rate", "sex=A&race=Black") in segments


def test_attributes_follow_plan_order_in_intersection(three_groups):
    df = three_groups.assign(race="White")
    r = fairness.compute(df, **COLS, protected_attributes=["race", "sex"], min_group_size=1)
    assert r.attributes == ("race", "sex", "race&sex")
    assert "race=White&sex=A" in by_segment(r)


def test_missing_protected_values_form_their_own_group(three_groups):
    df = three_groups.copy()
    df["sex"] = df["sex"].astype(object)
    df.loc[:6, "sex"] = None
    df["age_band"] = np.where(np.arange(len(df)) % 10 == 0, np.nan, 3.0)  # numeric with NaN
    r = fairness.compute(df, **COLS, protected_attributes=["sex", "age_band"], min_group_size=1)
    g = by_segment(r)
    assert g["sex=<missing>"].group_count == 7
    assert g["age_band=<missing>"].group_count == 10
    assert g["age_band=3.0"].group_count == 90
    for attribute in r.attributes:
        assert sum(x.group_count for x in r.groups if x.attribute == attribute) == len(df)


def test_undefined_rates_are_none_and_left_out():
    # group N has no actual positives: fairlearn reports TPR 0.0, which would make a gap of 0.8
    df = pd.concat([block("P", 8, 2, 1, 9), block("N", 0, 0, 3, 17)], ignore_index=True)
    r = fairness.compute(df, **COLS, protected_attributes=["sex"], min_group_size=1)
    n = by_segment(r)["sex=N"]
    assert n.true_positive_rate is None and n.false_positive_rate == pytest.approx(0.15)
    d = r.disparity("sex")
    assert d.equal_opportunity_difference is None
    assert d.equalized_odds_difference == pytest.approx(0.15 - 0.1)  # FPR gap, the one defined
    assert d.worst_group("equalized_odds_difference") == "sex=N"
    assert {m.value for m in r.metrics() if m.metric == "true_positive_rate" and m.segment == "sex=N"} == {None}


def test_no_labelled_rows_is_partial():
    df = pd.DataFrame({"label": [np.nan, np.nan], "pred": [1, 0], "sex": ["A", "B"], "race": ["x", "y"]})
    r = fairness.compute(df, **COLS, protected_attributes=["sex", "race"], min_group_size=30)
    assert r.partial and r.rows == 0 and r.skipped_rows == 2 and r.groups == ()
    gaps = [(m.metric, m.segment, m.value) for m in r.metrics()]
    assert len(gaps) == 4 * 3 and all(v is None for _, _, v in gaps)
    assert {s for _, s, _ in gaps} == {"sex", "race", "sex&race"}


def test_matches_fairlearn_on_adult_like_data():
    """UCI Adult-like imbalance: ~24% positives, a 2:1 sex split and a rare race group."""
    rng = np.random.default_rng(7)
    n = 5000
    sex = rng.choice(["Male", "Female"], n, p=[0.67, 0.33])
    race = rng.choice(["White", "Black", "Asian-Pac-Islander", "Other"], n, p=[0.85, 0.1, 0.04, 0.01])
    label = (rng.random(n) < np.where(sex == "Male", 0.31, 0.11)).astype(int)
    pred = np.where(rng.random(n) < 0.8, label, 1 - label)
    df = pd.DataFrame({"label": label, "pred": pred, "sex": sex, "race": race})
    r = fairness.compute(df, **COLS, protected_attributes=["sex", "race"], min_group_size=1)

    kw = dict(y_true=df["label"], y_pred=df["pred"])
    for attribute in ("sex", "race"):
        d = r.disparity(attribute)
        assert d.demographic_parity_difference == pytest.approx(
            demographic_parity_difference(**kw, sensitive_features=df[attribute]), abs=1e-12
        )
        assert d.equalized_odds_difference == pytest.approx(
            equalized_odds_difference(**kw, sensitive_features=df[attribute]), abs=1e-12
        )
        mf = MetricFrame(metrics=true_positive_rate, **kw, sensitive_features=df[attribute]).by_group
        assert d.equal_opportunity_difference == pytest.approx(mf.max() - mf.min(), abs=1e-12)
    assert r.disparity("sex").worst_group("demographic_parity_difference") == "sex=Female"

    with_threshold = fairness.compute(df, **COLS, protected_attributes=["sex", "race"], min_group_size=100)
    assert "race=Other" in with_threshold.small_groups
    assert "race=Other" not in with_threshold.disparity("race").compared_groups


def test_metrics_and_headline(three_groups):
    r = fairness.compute(three_groups, **COLS, protected_attributes=["sex"], min_group_size=30)
    ms = r.metrics()
    assert all(m.family is Family.FAIRNESS for m in ms)
    assert len(ms) == 3 * 5 + 4
    h = r.headline()
    assert h["sex.equal_opportunity_difference"] == pytest.approx(0.25)
    assert h["sex.equal_opportunity_worst_group"] == "sex=B"
    assert h["small_groups"] == "sex=C"


def test_positive_class_other_than_one(three_groups):
    coded = three_groups.assign(label=three_groups["label"] * 5, pred=three_groups["pred"] * 5)
    r5 = fairness.compute(coded, **COLS, protected_attributes=["sex"], min_group_size=30, positive_class=5)
    r1 = fairness.compute(three_groups, **COLS, protected_attributes=["sex"], min_group_size=30)
    assert r5 == r1


def test_rate_gaps_compare_only_groups_with_enough_actual_positives_or_negatives(three_groups):
    """A group's TPR counts in the gap only with >= min_rate_support actual positives (FPR: negatives)."""
    loose = fairness.compute(three_groups, **COLS, protected_attributes=["sex"], min_group_size=1).disparity("sex")
    counts = three_groups.groupby("sex")["label"].agg(positives="sum", rows="size")
    support = int(counts["positives"].min()) + 1  # excludes exactly the group with the fewest positives
    strict = fairness.compute(
        three_groups, **COLS, protected_attributes=["sex"], min_group_size=1, min_rate_support=support
    ).disparity("sex")
    fewest = f"sex={counts['positives'].idxmin()}"
    assert fewest in {loose.worst_group("equal_opportunity_difference")} | set(loose.compared_groups)
    assert strict.demographic_parity_difference == pytest.approx(loose.demographic_parity_difference)
    kept = three_groups[three_groups["sex"] != counts["positives"].idxmin()]
    tprs = kept[kept["label"] == 1].groupby("sex")["pred"].mean()
    assert strict.equal_opportunity_difference == pytest.approx(tprs.max() - tprs.min(), abs=1e-12)


def test_the_calculator_takes_the_plans_rules_and_the_attributes_present(plan, three_groups):
    calculator = fairness.FairnessCalculator.from_plan(plan)
    assert calculator.protected_attributes == tuple(plan.protected_attributes)
    assert calculator.fit(None) is calculator  # nothing to learn from the reference
    day = three_groups  # sex only: the plan's other attribute (race) is absent from these rows
    got = calculator.calculate(dt.date(2026, 1, 5), day, **COLS)
    present = [a for a in plan.protected_attributes if a in day.columns]
    assert present and len(present) < len(plan.protected_attributes)
    expected = fairness.compute(
        day,
        **COLS,
        protected_attributes=present,
        min_group_size=plan.fairness.min_group_size,
        min_rate_support=plan.fairness.min_rate_support,
        positive_class=plan.model.positive_class,
    )
    assert got == expected
    (row,) = fairness.attribute_missing(["sex"])
    assert (row.family, row.metric, row.value, row.segment) == (Family.FAIRNESS, "attribute_missing", 1.0, "sex")
