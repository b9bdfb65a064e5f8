"""The shadow comparison's statistics (monitoring_pipelines.families.comparison.calculator), checked against independent references:
scikit-learn for every metric, a slow O(n^2) DeLong written here, scipy for ranks, normal tails and Stouffer's
method, fairlearn for the fairness gaps, and a resample-by-resample scikit-learn loop for the paired bootstrap."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm

from monitoring_pipelines import shadow
from monitoring_pipelines.families.comparison import calculator as cmp
from monitoring_pipelines.families.comparison import stats as cmp_stats
from monitoring_pipelines.plan.schema import PromoteAction


def _data(n=1500, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    a = np.clip(0.25 * y + rng.normal(0.4, 0.2, n), 0, 1)
    b = np.clip(0.35 * y + 0.5 * (a - 0.4) + rng.normal(0.4, 0.15, n), 0, 1)
    if ties:  # scores on a grid: many ties within and across classes
        a, b = a.round(2), b.round(2)
    return y, a, b


def _slow_delong(y, a, b):
    """DeLong's structural components straight from the definition: psi over every (positive, negative) pair."""
    comps = []
    for s in (a, b):
        x, z = s[y][:, None], s[~y][None, :]
        psi = (x > z) + 0.5 * (x == z)
        comps.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (auc_a, v10a, v01a), (auc_b, v10b, v01b) = comps
    s10, s01 = np.cov(np.vstack([v10a, v10b])), np.cov(np.vstack([v01a, v01b]))
    m, n = y.sum(), (~y).sum()
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    return auc_a, auc_b, var


def test_midrank_equals_scipys_average_ranks():
    x = np.array([3.0, 1.0, 2.0, 3.0, 3.0, 0.5, 2.0])
    np.testing.assert_array_equal(cmp.midrank(x), stats.rankdata(x, method="average"))
    _, a, _ = _data()
    np.testing.assert_allclose(cmp.midrank(a), stats.rankdata(a, method="average"))


@pytest.mark.parametrize("ties", [True, False], ids=["tied scores", "distinct scores"])
def test_delong_matches_the_quadratic_definition_and_sklearn(ties):
    y, a, b = _data(ties=ties)
    test = cmp.delong(y, a, b)
    auc_a, auc_b, var = _slow_delong(y, a, b)
    assert test.auc_a == pytest.approx(skm.roc_auc_score(y, a), abs=1e-12) == pytest.approx(auc_a, abs=1e-12)
    assert test.auc_b == pytest.approx(skm.roc_auc_score(y, b), abs=1e-12) == pytest.approx(auc_b, abs=1e-12)
    assert test.variance == pytest.approx(var, rel=1e-9)
    assert test.z == pytest.approx((auc_b - auc_a) / np.sqrt(var), rel=1e-9)
    assert test.p_value == pytest.approx(2 * stats.norm.sf(abs(test.z)), rel=1e-12)
    assert 0 < test.p_value < 1


def test_delong_variance_agrees_with_the_paired_bootstrap_spread():
    y, a, b = _data(n=3000, seed=3)
    test = cmp.delong(y, a, b)
    low, high = cmp.paired_bootstrap(y, (a, a >= 0.5), (b, b >= 0.5), resamples=2000, seed=11)["roc_auc"]
    # a 95 % percentile interval spans about 2 x 1.96 standard errors
    assert (high - low) / (2 * 1.96) == pytest.approx(np.sqrt(test.variance), rel=0.1)
    assert low < test.delta < high


def test_identical_models_give_no_evidence():
    y, a, _ = _data()
    test = cmp.delong(y, a, a.copy())
    assert (test.delta, test.variance, test.z, test.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_delong_refuses_a_single_class():
    with pytest.raises(ValueError, match="both classes"):
        cmp.delong(np.zeros(5, bool), np.arange(5.0), np.arange(5.0))


def test_weighted_metrics_equal_sklearn_with_sample_weights():
    y, a, _ = _data(n=800, seed=5)
    pred = a >= 0.5
    counts = np.random.default_rng(1).multinomial(len(y), np.full(len(y), 1 / len(y)), size=4)
    got = cmp.weighted_metrics(counts, y, a, pred)
    for i, w in enumerate(counts):
        assert got["roc_auc"][i] == pytest.approx(skm.roc_auc_score(y, a, sample_weight=w), abs=1e-12)
        assert got["pr_auc"][i] == pytest.approx(skm.average_precision_score(y, a, sample_weight=w), abs=1e-12)
        assert got["accuracy"][i] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w), abs=1e-12)
        assert got["f1"][i] == pytest.approx(skm.f1_score(y, pred, sample_weight=w), abs=1e-12)
        assert got["log_loss"][i] == pytest.approx(skm.log_loss(y, a, sample_weight=w), abs=1e-12)
        assert got["brier_score"][i] == pytest.approx(skm.brier_score_loss(y, a, sample_weight=w), abs=1e-12)


def test_paired_bootstrap_equals_a_resample_by_resample_sklearn_loop():
    y, a, b = _data(n=400, seed=8)
    resamples, seed = 200, [20260101, 7]
    got = cmp.paired_bootstrap(y, (a, a >= 0.5), (b, b >= 0.5), resamples=resamples, seed=seed)
    # the same resamples (one draw of row counts per resample), evaluated one by one with scikit-learn
    counts = np.random.default_rng(seed).multinomial(len(y), np.full(len(y), 1 / len(y)), size=resamples)
    deltas = {"roc_auc": [], "f1": [], "log_loss": []}
    for w in counts:
        deltas["roc_auc"].append(skm.roc_auc_score(y, b, sample_weight=w) - skm.roc_auc_score(y, a, sample_weight=w))
        deltas["f1"].append(skm.f1_score(y, b >= 0.5, sample_weight=w) - skm.f1_score(y, a >= 0.5, sample_weight=w))
        deltas["log_loss"].append(skm.log_loss(y, b, sample_weight=w) - skm.log_loss(y, a, sample_weight=w))
    for metric, values in deltas.items():
        assert got[metric] == pytest.approx((np.percentile(values, 2.5), np.percentile(values, 97.5)), abs=1e-12)
    # seeded: the same call gives the same interval, another seed another one
    assert cmp.paired_bootstrap(y, (a, a >= 0.5), (b, b >= 0.5), resamples=resamples, seed=seed) == got
    assert cmp.paired_bootstrap(y, (a, a >= 0.5), (b, b >= 0.5), resamples=resamples, seed=[1, 2]) != got


def test_chunked_bootstrap_equals_the_unchunked_one(monkeypatch):
    y, a, b = _data(n=300, seed=9)
    whole = cmp.paired_bootstrap(y, (a, a >= 0.5), (b, b >= 0.5), resamples=150, seed=4)
    monkeypatch.setattr(cmp_stats, "BOOTSTRAP_CHUNK_CELLS", 300 * 7)  # 7 resamples per chunk: the same stream
    chunked = cmp.paired_bootstrap(y, (a, a >= 0.5), (b, b >= 0.5), resamples=150, seed=4)
    assert chunked.keys() == whole.keys()
    for k in whole:
        assert chunked[k] == pytest.approx(whole[k], abs=1e-12)


# --- one day, with real scikit-learn models on the demo data ----------------------------------------------


@pytest.fixture(scope="module")
def day_of_traffic(plan):
    from monitoring_pipelines.demo import load_adult, scenario
    from monitoring_pipelines.demo.training import train, train_boosted
    from monitoring_pipelines.families.performance.calculator import join_labels

    train_df, reference, pool = scenario.split(load_adult())
    champion = train(train_df, plan)
    challenger = train_boosted(train_df.sample(8000, random_state=1), plan)
    preds, labels = scenario.simulate_day(
        plan, 21, dt.date(2026, 1, 21), pool, champion, "1", np.random.default_rng([scenario.SEED, 21])
    )
    served = preds[preds["score"].notna()]
    joined = join_labels(served, labels, id_col="request_id", label_col="label", as_col="__label").rows
    return served, joined, challenger, reference


def test_a_candidate_is_compared_on_the_rows_the_champion_served(plan, day_of_traffic):
    served, joined, challenger, reference = day_of_traffic
    ref_scores = challenger.predict_proba(reference[plan.features.model_inputs])[:, 1]
    c = cmp.compare_candidate(
        plan,
        dt.date(2026, 1, 21),
        served,
        joined,
        role="challenger",
        version="2",
        model=challenger,
        reference_scores=ref_scores,
        peers=shadow.peers(plan),
        resamples=300,
    )
    cand_all = challenger.predict_proba(served[plan.features.model_inputs])[:, 1]
    assert c.compared_rows == len(served) and c.labelled_rows == len(joined)
    assert c.prediction_agreement == pytest.approx(np.mean((cand_all >= 0.5) == (served["predicted_label"] == 1)))
    assert c.score_correlation == pytest.approx(np.corrcoef(served["score"], cand_all)[0, 1])
    y = joined["__label"].to_numpy() == 1
    cand = challenger.predict_proba(joined[plan.features.model_inputs])[:, 1]
    assert c.candidate["roc_auc"] == pytest.approx(skm.roc_auc_score(y, cand), abs=1e-12)
    assert c.champion["roc_auc"] == pytest.approx(skm.roc_auc_score(y, joined["score"]), abs=1e-12)
    assert c.candidate["pr_auc"] == pytest.approx(skm.average_precision_score(y, cand), abs=1e-12)
    assert c.champion["f1"] == pytest.approx(skm.f1_score(y, joined["predicted_label"] == 1), abs=1e-12)
    assert c.candidate["brier_score"] == pytest.approx(skm.brier_score_loss(y, cand), abs=1e-12)
    assert c.delta("log_loss") == pytest.approx(skm.log_loss(y, cand) - skm.log_loss(y, joined["score"]), abs=1e-12)
    for k in cmp.METRICS:
        low, high = c.intervals[k]
        assert low <= c.delta(k) <= high, k
    assert c.delong.delta == pytest.approx(c.delta("roc_auc"), abs=1e-12)
    # fairness deltas: fairlearn's own gaps over the two (large) sex groups, challenger minus champion
    from fairlearn.metrics import demographic_parity_difference, equal_opportunity_difference

    sex = joined["sex"].astype(str)
    for gap, fn in (
        ("demographic_parity_difference", demographic_parity_difference),
        ("equal_opportunity_difference", equal_opportunity_difference),
    ):
        expected = fn(y, cand >= 0.5, sensitive_features=sex) - fn(
            y, joined["predicted_label"] == 1, sensitive_features=sex
        )
        assert c.fairness_delta[("sex", gap)] == pytest.approx(expected, abs=1e-12)
    # score drift against the challenger's own reference: Evidently's normed Wasserstein, recomputed with scipy
    expected = stats.wasserstein_distance(ref_scores, cand_all) / np.std(ref_scores)
    assert (c.score_drift.method, c.score_drift.score) == ("wasserstein", pytest.approx(expected, rel=1e-9))
    # every value is stored under the candidate's segment
    values = c.values()
    assert {v.segment for v in values} == {"challenger=2", "challenger=2|sex", "challenger=2|race"}
    assert {v.metric for v in values} >= {f"{k}_delta_ci_low" for k in cmp.METRICS} | {"roc_auc_delta_p_value"}


def test_the_calculator_fits_on_the_candidates_reference_scores_and_equals_compare_candidate(plan, day_of_traffic):
    served, joined, challenger, reference = day_of_traffic
    ref_scores = challenger.predict_proba(reference[plan.features.model_inputs])[:, 1]
    calculator = cmp.ComparisonCalculator(plan, "challenger", "2", challenger, shadow.peers(plan), resamples=50)
    fitted = calculator.fit(pd.DataFrame({"score": ref_scores}))
    np.testing.assert_array_equal(fitted.reference_scores, ref_scores)
    day = dt.date(2026, 1, 21)
    expected = cmp.compare_candidate(
        plan,
        day,
        served,
        joined,
        role="challenger",
        version="2",
        model=challenger,
        reference_scores=ref_scores,
        peers=shadow.peers(plan),
        resamples=50,
    )
    assert fitted.calculate(day, served, joined) == expected
    # a reference without the score column (a path reference of another version) gives no score drift
    unfitted = calculator.fit(pd.DataFrame({"age": [30]}))
    assert unfitted.reference_scores is None and calculator.fit(None).reference_scores is None
    assert (
        unfitted.calculate(day, served, joined.iloc[0:0]).score_drift.reason == "no reference scores for this version"
    )


def test_without_labels_only_the_label_free_figures_are_given(plan, day_of_traffic):
    served, joined, challenger, _ = day_of_traffic
    c = cmp.compare_candidate(
        plan,
        dt.date(2026, 1, 21),
        served,
        joined.iloc[0:0],
        role="challenger",
        version="2",
        model=challenger,
        reference_scores=None,
        peers=shadow.peers(plan),
    )
    assert c.labelled_rows == 0 and c.delong is None and c.delta("roc_auc") is None
    assert c.prediction_agreement is not None and c.score_drift.reason == "no reference scores for this version"


# --- evidence across days -----------------------------------------------------------------------------------


def _rows(days: list[tuple[str, int, float, float]], version="2", compared=3000, gaps=None):
    """Stored comparison rows of several days: (day, labelled rows, roc_auc delta, DeLong z)."""
    out = []
    seg = f"challenger={version}"
    for i, (day, labelled, delta, z) in enumerate(days):
        d = dt.date.fromisoformat(day)
        out += [
            (d, "", "compared_rows", float(compared)),
            (d, seg, "labelled_rows", float(labelled)),
            (d, seg, "roc_auc_delta", delta),
            (d, seg, "roc_auc_delta_z", z),
        ]
        for attr, value in (gaps or {}).items():
            out.append((d, f"{seg}|{attr}", "equal_opportunity_difference_delta", value[i]))
    return pd.DataFrame(out, columns=["partition_date", "segment", "metric", "value"]).assign(family="comparison")


def test_evidence_combines_daily_tests_with_stouffers_weighted_z():
    days = [("2026-01-21", 2800, 0.004, 1.1), ("2026-01-22", 2500, 0.006, 1.6), ("2026-01-23", 1000, -0.001, -0.2)]
    ev = cmp.accumulate(_rows(days), role="challenger", version="2", since=None, min_coverage=0.3)
    n = np.array([2800, 2500, 1000])
    z = np.array([1.1, 1.6, -0.2])
    expected_z, expected_p = stats.combine_pvalues(stats.norm.sf(z), method="stouffer", weights=np.sqrt(n))
    assert ev.z == pytest.approx(expected_z, rel=1e-9) and ev.p_value == pytest.approx(expected_p, rel=1e-9)
    assert ev.delta == pytest.approx(np.average([0.004, 0.006, -0.001], weights=n))
    assert (len(ev.days), ev.rows, ev.better_days) == (3, 6300, 2)
    assert "better on 2 of 3 labelled days (2026-01-21..2026-01-23, 6300 rows)" in ev.describe()


def test_evidence_leaves_out_days_before_the_challenger_blocked_days_and_thin_labels():
    days = [
        ("2026-01-19", 2800, 0.05, 5.0),  # inside the training window: never evidence
        ("2026-01-21", 2800, 0.01, 2.0),
        ("2026-01-22", 2800, 0.01, 2.0),
        ("2026-01-23", 900, 0.01, 1.0),  # 900 of 3000 rows labelled: below min_coverage 0.5
        ("2026-01-24", 2800, 0.01, 2.0),
    ]
    ev = cmp.accumulate(
        _rows(days),
        role="challenger",
        version="2",
        since=dt.date(2026, 1, 20),
        min_coverage=0.5,
        blocked={dt.date(2026, 1, 24)},
    )
    assert [d.day.isoformat() for d in ev.days] == ["2026-01-21", "2026-01-22"]
    assert ev.skipped == {"2026-01-23": "label coverage below 0.5", "2026-01-24": "blocking quality checks failed"}
    other = cmp.accumulate(_rows(days), role="challenger", version="3", since=None, min_coverage=0.5)
    assert other.days == () and other.z is None and "no labelled day" in other.describe()


def test_the_promotion_rule_names_every_reason_it_does_not_hold():
    rule = PromoteAction(
        metric="roc_auc", min_uplift=0.01, min_days=3, significance=0.05, max_fairness_regression=0.05, approval="auto"
    )
    weak = cmp.accumulate(
        _rows([("2026-01-21", 2800, 0.004, 1.0), ("2026-01-22", 2800, 0.006, 0.5)], gaps={"race": [0.10, 0.08]}),
        role="challenger",
        version="2",
        since=None,
        min_coverage=0.5,
    )
    reasons = weak.refusals(rule)
    assert reasons[0] == "2 labelled day(s) of evidence, the plan needs 3"
    assert reasons[1] == "pooled roc_auc delta +0.0050 is below min_uplift 0.01"
    assert reasons[2].startswith("not significant: one-sided p = 0.") and reasons[2].endswith(">= 0.05")
    assert (
        reasons[3]
        == "fairness regression race.equal_opportunity_difference +0.090 exceeds max_fairness_regression 0.05"
    )
    strong = cmp.accumulate(
        _rows(
            [(d, 2800, 0.03, 4.0) for d in ("2026-01-21", "2026-01-22", "2026-01-23")],
            gaps={"race": [0.02, -0.01, 0.0]},
        ),
        role="challenger",
        version="2",
        since=None,
        min_coverage=0.5,
    )
    assert strong.refusals(rule) == [] and strong.fairness_regression[
        "race.equal_opportunity_difference"
    ] == pytest.approx(0.01 / 3)


def test_served_by_attributes_a_day_to_the_version_that_served_most_rows():
    rows = pd.DataFrame(
        {
            "partition_date": [dt.date(2026, 1, 5)] * 2 + [dt.date(2026, 1, 6)],
            "family": "comparison",
            "metric": "served_rows",
            "segment": ["version=1", "version=3", "version=3"],
            "value": [100.0, 2900.0, 3000.0],
        }
    )
    assert cmp.served_by(rows) == {dt.date(2026, 1, 5): "3", dt.date(2026, 1, 6): "3"}


def test_above_the_row_cap_the_interval_comes_from_a_seeded_subsample_and_is_wider(plan, day_of_traffic, monkeypatch):
    served, joined, challenger, _ = day_of_traffic
    full = cmp.compare_candidate(
        plan,
        dt.date(2026, 1, 21),
        served,
        joined,
        role="challenger",
        version="2",
        model=challenger,
        reference_scores=None,
        peers=shadow.peers(plan),
        resamples=300,
    )
    monkeypatch.setattr(cmp, "BOOTSTRAP_MAX_ROWS", len(joined) // 4)
    capped = cmp.compare_candidate(
        plan,
        dt.date(2026, 1, 21),
        served,
        joined,
        role="challenger",
        version="2",
        model=challenger,
        reference_scores=None,
        peers=shadow.peers(plan),
        resamples=300,
    )
    again = cmp.compare_candidate(
        plan,
        dt.date(2026, 1, 21),
        served,
        joined,
        role="challenger",
        version="2",
        model=challenger,
        reference_scores=None,
        peers=shadow.peers(plan),
        resamples=300,
    )
    assert capped.intervals == again.intervals  # seeded by the day: reproducible
    # the deltas and DeLong still use every labelled row; only the interval is computed on the subsample
    assert capped.delta("roc_auc") == full.delta("roc_auc") and capped.delong == full.delong
    width = {k: (i[1] - i[0]) for k, i in full.intervals.items()}
    capped_width = {k: (i[1] - i[0]) for k, i in capped.intervals.items()}
    assert all(capped_width[k] > width[k] for k in ("roc_auc", "accuracy", "brier_score"))
