"""performance.compute against scikit-learn computed independently on the same rows."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from monitoring_pipelines import performance
from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.metrics import CATALOGUE, Bounds, Family, Status

COLS = dict(id_col="request_id", score_col="score", prediction_col="predicted_label", label_col="label")
FIGURES = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier_score")


def make_day(n=2000, positive_share=0.5, seed=0):
    """A day of predictions and its labels; scores are informative but imperfect."""
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < positive_share).astype(int)
    logit = rng.normal(0, 1.5, n) + 2.0 * (label - 0.5) + np.log(positive_share / (1 - positive_share))
    score = 1 / (1 + np.exp(-logit))
    preds = pd.DataFrame({
        "request_id": [f"r{seed}-{i:05d}" for i in range(n)],
        "score": score,
        "predicted_label": (score >= 0.5).astype(int),
        "age": rng.integers(18, 90, n),
    })
    labels = pd.DataFrame({"request_id": preds["request_id"], "label": label})
    return preds, labels.sample(frac=1, random_state=seed).reset_index(drop=True)


def sklearn_figures(y, score, pred):
    return {
        "roc_auc": skm.roc_auc_score(y, score),
        "pr_auc": skm.average_precision_score(y, score),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "log_loss": skm.log_loss(y, score),
        "brier_score": skm.brier_score_loss(y, score),
    }


def figures(result):
    return {name: getattr(result, name) for name in FIGURES}


@pytest.mark.parametrize("positive_share", [0.5, 0.24])  # balanced, and UCI Adult's ~24% earning >50K
def test_figures_equal_sklearn(positive_share):
    preds, labels = make_day(positive_share=positive_share, seed=1)
    r = performance.compute(preds, labels, **COLS, min_coverage=0.5)

    truth = preds.merge(labels, on="request_id")  # every prediction is labelled
    expected = sklearn_figures(truth["label"], truth["score"], truth["predicted_label"])
    assert not r.partial and r.partial_reason is None
    assert (r.prediction_rows, r.labelled_rows, r.evaluated_rows, r.label_coverage) == (2000, 2000, 2000, 1.0)
    assert figures(r) == pytest.approx(expected, abs=1e-9, rel=0)
    assert r.positive_rate == pytest.approx(truth["label"].mean(), abs=1e-12)
    assert 0.6 < r.roc_auc < 0.95  # sanity: the synthetic scores carry signal


def test_partly_labelled_day_scores_only_labelled_rows():
    preds, labels = make_day(seed=2)
    labels = labels.iloc[:1300]  # 65% coverage
    r = performance.compute(preds, labels, **COLS, min_coverage=0.5)

    truth = preds.merge(labels, on="request_id")
    assert (r.labelled_rows, r.label_coverage) == (1300, 0.65)
    assert figures(r) == pytest.approx(sklearn_figures(truth["label"], truth["score"], truth["predicted_label"]),
                                       abs=1e-9, rel=0)


def test_labels_of_other_days_are_ignored():
    preds, labels = make_day(seed=3)
    other_days, _ = make_day(n=500, seed=4)
    # other days' labels all say 1: had they been joined, recall and AUC would move
    noisy = pd.concat([labels, pd.DataFrame({"request_id": other_days["request_id"], "label": 1})])
    clean = performance.compute(preds, labels, **COLS, min_coverage=0.5)
    with_noise = performance.compute(preds, noisy, **COLS, min_coverage=0.5)
    assert with_noise == clean
    assert with_noise.labelled_rows == 2000


def test_low_coverage_is_partial_and_judged_unknown():
    preds, labels = make_day(seed=5)
    r = performance.compute(preds, labels.iloc[:800], **COLS, min_coverage=0.5)
    assert r.partial and "coverage 0.400" in r.partial_reason
    assert (r.labelled_rows, r.label_coverage) == (800, 0.4)
    assert all(v is None for v in figures(r).values())

    values = {m.metric: m.value for m in r.metrics()}
    assert set(values) == CATALOGUE[Family.PERFORMANCE]
    assert values["labelled_rows"] == 800 and values["label_coverage"] == 0.4
    assert Bounds(warning=0.85, critical=0.8, direction="min").judge(values["roc_auc"]) is Status.UNKNOWN


def test_coverage_exactly_at_minimum_is_not_partial():
    preds, labels = make_day(seed=6)
    r = performance.compute(preds, labels.iloc[:1000], **COLS, min_coverage=0.5)
    assert not r.partial and r.roc_auc is not None


@pytest.mark.parametrize("case", ["no_predictions", "no_labels", "one_class"])
def test_undefined_days_are_partial(case):
    preds, labels = make_day(n=200, seed=7)
    if case == "no_predictions":
        preds = preds.iloc[:0]
    elif case == "no_labels":
        labels = labels.iloc[:0]
    else:
        labels = labels.assign(label=0)
    r = performance.compute(preds, labels, **COLS, min_coverage=0.0)
    assert r.partial and r.partial_reason
    assert all(v is None for v in figures(r).values())
    if case == "no_predictions":
        assert (r.labelled_rows, r.label_coverage) == (0, None)
    if case == "one_class":
        assert r.label_coverage == 1.0 and "single class" in r.partial_reason


def test_missing_labels_and_missing_scores():
    preds, labels = make_day(n=400, seed=8)
    labels = labels.astype({"label": "float"})
    labels.loc[:49, "label"] = np.nan  # not labelled yet: not a label
    preds.loc[:9, "score"] = np.nan  # labelled, but cannot be scored
    r = performance.compute(preds, labels, **COLS, min_coverage=0.5)

    truth = preds.merge(labels.dropna(), on="request_id").dropna(subset=["score"])
    assert r.labelled_rows == 350
    assert r.evaluated_rows == len(truth) < 350
    assert figures(r) == pytest.approx(sklearn_figures(truth["label"], truth["score"], truth["predicted_label"]),
                                       abs=1e-9, rel=0)


def test_relabelled_id_counts_once_with_the_last_label():
    preds, labels = make_day(n=300, seed=9)
    first = labels.iloc[[0]]
    relabel = first.assign(label=1 - first["label"])
    r = performance.compute(preds, pd.concat([labels, relabel]), **COLS, min_coverage=0.5)

    final = pd.concat([labels, relabel]).drop_duplicates("request_id", keep="last")
    truth = preds.merge(final, on="request_id")
    assert r.labelled_rows == 300
    assert r.accuracy == pytest.approx(skm.accuracy_score(truth["label"], truth["predicted_label"]), abs=1e-12)


def test_integer_ids_join_string_ids():
    preds, labels = make_day(n=300, seed=10)
    preds = preds.assign(request_id=range(300))
    labels = labels.assign(request_id=labels["request_id"].str[-5:].astype(int).astype(str))
    r = performance.compute(preds, labels, **COLS, min_coverage=0.5)
    assert r.labelled_rows == 300 and not r.partial


def test_log_loss_follows_sklearn_clipping_for_certain_scores():
    """sklearn 1.9 clips at float64 eps (not 1e-15); a confident miss must stay finite and match it."""
    preds = pd.DataFrame({"request_id": range(4), "score": [0.0, 1.0, 1.0, 0.3], "predicted_label": [0, 1, 1, 0]})
    labels = pd.DataFrame({"request_id": range(4), "label": [1, 1, 0, 0]})
    r = performance.compute(preds, labels, **COLS, min_coverage=1.0)
    assert np.isfinite(r.log_loss)
    assert r.log_loss == pytest.approx(skm.log_loss([1, 1, 0, 0], [0.0, 1.0, 1.0, 0.3]), abs=1e-12)
    # float32 scores are scored as float64, so they are clipped at 2.2e-16, not at float32's 1.2e-7
    s32 = preds["score"].astype("float32")
    r32 = performance.compute(preds.assign(score=s32), labels, **COLS, min_coverage=1.0)
    assert r32.log_loss == pytest.approx(skm.log_loss([1, 1, 0, 0], s32.astype("float64")), abs=1e-12)
    assert r32.log_loss - skm.log_loss([1, 1, 0, 0], s32) > 1.0


def test_scores_outside_unit_interval_drop_probabilistic_figures_only():
    preds, labels = make_day(n=300, seed=11)
    preds.loc[:2, "score"] = 1.7
    r = performance.compute(preds, labels, **COLS, min_coverage=0.5)
    assert r.scores_out_of_range == 3
    assert r.log_loss is None and r.brier_score is None
    truth = preds.merge(labels, on="request_id")
    assert r.roc_auc == pytest.approx(skm.roc_auc_score(truth["label"], truth["score"]), abs=1e-12)


def test_positive_class_zero():
    preds, labels = make_day(n=500, seed=12)
    # the score stays the probability of the (now 0-coded) positive class
    flipped_preds = preds.assign(predicted_label=1 - preds["predicted_label"])
    flipped_labels = labels.assign(label=1 - labels["label"])
    r = performance.compute(flipped_preds, flipped_labels, **COLS, positive_class=0, min_coverage=0.5)
    r1 = performance.compute(preds, labels, **COLS, min_coverage=0.5)
    assert figures(r) == pytest.approx(figures(r1), abs=1e-12)


def test_missing_column_is_named():
    preds, labels = make_day(n=10)
    with pytest.raises(DataSourceError, match="score"):
        performance.compute(preds.drop(columns="score"), labels, **COLS, min_coverage=0.5)


def test_headline_and_metrics_shape():
    preds, labels = make_day(n=500, seed=13)
    r = performance.compute(preds, labels, **COLS, min_coverage=0.5)
    assert {"roc_auc", "label_coverage", "partial_reason"} <= set(r.headline())
    assert all(m.family is Family.PERFORMANCE and m.segment == "" for m in r.metrics())


def test_importing_the_computation_modules_does_not_import_sklearn_or_fairlearn():
    code = ("import sys; import monitoring_pipelines.performance, monitoring_pipelines.fairness, "
            "monitoring_pipelines.service; "
            "print(sorted(m for m in ('sklearn', 'fairlearn', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
