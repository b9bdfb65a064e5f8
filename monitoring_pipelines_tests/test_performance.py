"""performance.compute against scikit-learn computed independently on the same rows."""

import datetime as dt
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.families.catalogue import CATALOGUE
from monitoring_pipelines.families.performance import calculator as performance
from monitoring_pipelines.judge.metrics import Bounds, Family, Status

COLS = dict(id_col="request_id", score_col="score", prediction_col="predicted_label", label_col="label")
FIGURES = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier_score")


def make_day(n=2000, positive_share=0.5, seed=0):
    """A day of predictions and its labels; scores are informative but imperfect."""
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < positive_share).astype(int)
    logit = rng.normal(0, 1.5, n) + 2.0 * (label - 0.5) + np.log(positive_share / (1 - positive_share))
    score = 1 / (1 + np.exp(-logit))
    preds = pd.DataFrame(
        {
            "request_id": [f"r{seed}-{i:05d}" for i in range(n)],
            "score": score,
            "predicted_label": (score >= 0.5).astype(int),
            "age": rng.integers(18, 90, n),
        }
    )
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
    assert figures(r) == pytest.approx(
        sklearn_figures(truth["label"], truth["score"], truth["predicted_label"]), abs=1e-9, rel=0
    )


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
    assert figures(r) == pytest.approx(
        sklearn_figures(truth["label"], truth["score"], truth["predicted_label"]), abs=1e-9, rel=0
    )


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


def test_the_calculator_reads_its_columns_from_the_plan_and_equals_compute(plan):
    preds, labels = make_day(n=800, seed=17)
    preds = preds.rename(columns={"request_id": plan.data.predictions.id})
    labels = labels.rename(columns={"request_id": plan.data.predictions.id, "label": plan.data.labels.label})
    calculator = performance.PerformanceCalculator.from_plan(plan)
    assert calculator.fit(None) is calculator  # nothing to learn from the reference
    got = calculator.calculate(dt.date(2026, 1, 5), preds, labels)
    expected = performance.compute(
        preds,
        labels,
        id_col=plan.data.predictions.id,
        score_col=plan.data.predictions.score,
        prediction_col=plan.data.predictions.prediction,
        label_col=plan.data.labels.label,
        positive_class=plan.model.positive_class,
        min_coverage=plan.data.labels.min_coverage,
    )
    assert got == expected and not got.partial and got.roc_auc is not None


def test_headline_and_metrics_shape():
    preds, labels = make_day(n=500, seed=13)
    r = performance.compute(preds, labels, **COLS, min_coverage=0.5)
    assert {"roc_auc", "label_coverage", "partial_reason"} <= set(r.headline())
    assert all(m.family is Family.PERFORMANCE and m.segment == "" for m in r.metrics())


def test_importing_the_computation_modules_does_not_import_sklearn_or_fairlearn():
    code = (
        "import sys; import monitoring_pipelines.families.performance.calculator, monitoring_pipelines.families.fairness.calculator, "
        "monitoring_pipelines.families.service.calculator, monitoring_pipelines.families.performance.estimation; "
        "print(sorted(m for m in ('sklearn', 'fairlearn', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- expected calibration error -------------------------------------------------------------------------


def ece_by_histogram(y, score):
    """Independent ECE: numpy.histogram's bins (half-open, the last one closed) with the edges k/10,
    written as the textbook weighted mean of per-bin |accuracy - confidence|."""
    y, score = np.asarray(y, dtype=float), np.asarray(score, dtype=float)
    edges = np.array([k / 10 for k in range(11)])
    n_b, _ = np.histogram(score, bins=edges)
    sum_y, _ = np.histogram(score, bins=edges, weights=y)
    sum_s, _ = np.histogram(score, bins=edges, weights=score)
    full = n_b > 0
    return float(np.sum(n_b[full] / len(y) * np.abs(sum_y[full] / n_b[full] - sum_s[full] / n_b[full])))


def ece_by_pandas_cut(y, score):
    """Independent ECE again, with pandas.cut on left-closed intervals and 1.0 folded into the last bin."""
    df = pd.DataFrame({"y": np.asarray(y, dtype=float), "s": np.asarray(score, dtype=float)})
    edges = [k / 10 for k in range(10)] + [np.inf]  # [0.9, inf) holds 1.0
    df["bin"] = pd.cut(df["s"], bins=edges, right=False)
    per_bin = df.groupby("bin", observed=True).agg(n=("y", "size"), acc=("y", "mean"), conf=("s", "mean"))
    return float((per_bin["n"] / len(df) * (per_bin["acc"] - per_bin["conf"]).abs()).sum())


def calibrated_blocks(shift=0.0, per_bin=100):
    """per_bin rows at each bin centre c = 0.05, 0.15, ..., 0.95 with exactly round(c * per_bin) positives:
    perfectly calibrated at shift 0; shifting every score by ``shift`` (staying inside its bin) gives ECE = |shift|."""
    scores, ys = [], []
    for k in range(10):
        c = (2 * k + 1) / 20
        positives = round(c * per_bin)
        scores += [c + shift] * per_bin
        ys += [1] * positives + [0] * (per_bin - positives)
    preds = pd.DataFrame(
        {"request_id": range(len(scores)), "score": scores, "predicted_label": (np.array(scores) >= 0.5).astype(int)}
    )
    return preds, pd.DataFrame({"request_id": range(len(ys)), "label": ys})


def test_ece_equals_independent_computations():
    preds, labels = make_day(n=5000, positive_share=0.3, seed=20)
    r = performance.compute(preds, labels, **COLS, min_coverage=0.5)
    truth = preds.merge(labels, on="request_id")
    by_hist = ece_by_histogram(truth["label"], truth["score"])
    assert r.expected_calibration_error == pytest.approx(by_hist, abs=1e-12, rel=0)
    assert r.expected_calibration_error == pytest.approx(
        ece_by_pandas_cut(truth["label"], truth["score"]), abs=1e-12, rel=0
    )
    assert 0.01 < r.expected_calibration_error < 0.5  # these synthetic scores are not calibrated


def test_ece_of_partly_labelled_day_uses_evaluated_rows_only():
    preds, labels = make_day(n=3000, seed=21)
    preds.loc[:99, "score"] = np.nan  # not evaluable
    r = performance.compute(preds, labels.iloc[:2000], **COLS, min_coverage=0.5)
    truth = preds.merge(labels.iloc[:2000], on="request_id").dropna(subset=["score"])
    assert r.evaluated_rows == len(truth)
    assert r.expected_calibration_error == pytest.approx(
        ece_by_histogram(truth["label"], truth["score"]), abs=1e-12, rel=0
    )


def test_ece_of_perfectly_calibrated_scores_is_near_zero():
    preds, labels = calibrated_blocks()
    assert performance.compute(preds, labels, **COLS, min_coverage=1.0).expected_calibration_error < 1e-12

    # y drawn from Bernoulli(score): calibrated in expectation, ECE only sampling noise (~ sqrt(c(1-c)/n_b))
    rng = np.random.default_rng(22)
    score = rng.random(200_000)
    preds = pd.DataFrame(
        {"request_id": range(len(score)), "score": score, "predicted_label": (score >= 0.5).astype(int)}
    )
    labels = pd.DataFrame({"request_id": range(len(score)), "label": (rng.random(len(score)) < score).astype(int)})
    r = performance.compute(preds, labels, **COLS, min_coverage=1.0)
    assert r.expected_calibration_error < 0.005
    assert r.expected_calibration_error == pytest.approx(ece_by_histogram(labels["label"], score), abs=1e-12, rel=0)


@pytest.mark.parametrize("shift", [0.03, -0.04])
def test_ece_of_shifted_scores_is_the_shift(shift):
    preds, labels = calibrated_blocks(shift=shift)
    r = performance.compute(preds, labels, **COLS, min_coverage=1.0)
    assert r.expected_calibration_error == pytest.approx(abs(shift), abs=1e-12, rel=0)


def test_ece_bin_edges_lower_edge_inclusive_and_one_in_last_bin():
    # one row per score; with y = 0, each bin's gap is the mean score of the bin
    score = np.array([0.0, 0.3, np.nextafter(0.3, 0), 0.9, 1.0])
    y = np.zeros(len(score), dtype=int)
    # bins: 0 -> {0.0}, 2 -> {0.29999..}, 3 -> {0.3}, 9 -> {0.9, 1.0}
    expected = (0.0 + np.nextafter(0.3, 0) + 0.3 + (0.9 + 1.0)) / 5
    assert performance.expected_calibration_error(y, score) == pytest.approx(expected, abs=1e-15)
    # 0.3 and its lower neighbour fall in different bins: merged in one bin the gap would be the same sum,
    # so tell them apart with labels
    y = np.array([0, 1, 0, 0, 0])
    by_bins = (0 + np.nextafter(0.3, 0) + abs(1 - 0.3) + (0.9 + 1.0)) / 5
    assert performance.expected_calibration_error(y, score) == pytest.approx(by_bins, abs=1e-15)
    assert performance.expected_calibration_error(y, score) == pytest.approx(ece_by_histogram(y, score), abs=1e-15)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        performance.expected_calibration_error([1], [1.5])


def test_ece_is_none_with_scores_out_of_range_and_on_partial_days():
    preds, labels = make_day(n=300, seed=23)
    preds.loc[:1, "score"] = -0.2
    assert performance.compute(preds, labels, **COLS, min_coverage=0.5).expected_calibration_error is None
    preds, labels = make_day(n=300, seed=23)
    assert performance.compute(preds, labels.iloc[:10], **COLS, min_coverage=0.5).expected_calibration_error is None


# --- bad input: counted, reported, never silently dropped -----------------------------------------------


def bad_input(result):
    return {name: getattr(result, name) for name in performance.BAD_INPUT}


def metric_values(result):
    return {m.metric: m.value for m in result.metrics()}


def test_clean_day_counts_no_bad_input():
    preds, labels = make_day(n=300, seed=30)
    r = performance.compute(preds, labels, **COLS, min_coverage=0.5)
    assert bad_input(r) == {"labels_duplicate_ids": 0, "labels_out_of_classes": 0, "scores_out_of_range": 0}
    values = metric_values(r)
    assert all(values[name] == 0.0 for name in performance.BAD_INPUT)


def test_duplicate_label_ids_are_counted_once_per_id():
    preds, labels = make_day(n=300, seed=31)
    ids = labels["request_id"]
    extra = pd.concat(
        [
            labels[ids.isin(ids.iloc[:3])],  # 3 ids delivered twice, same label
            labels[ids == ids.iloc[3]].assign(label=lambda d: 1 - d["label"]),  # 1 id relabelled ...
            labels[ids == ids.iloc[3]],  # ... and relabelled back: 3 rows, one id
            pd.DataFrame({"request_id": ["other-day-1"] * 2, "label": [0, 1]}),  # another day's id twice: not ours
            labels[ids == ids.iloc[4]].assign(label=np.nan),  # a missing label is not a label: no duplicate
        ]
    )
    r = performance.compute(preds, pd.concat([labels, extra]), **COLS, min_coverage=0.5)
    assert r.labels_duplicate_ids == 4
    assert metric_values(r)["labels_duplicate_ids"] == 4.0
    assert r.labelled_rows == 300  # each id still counts once
    assert r.headline()["labels_duplicate_ids"] == 4
    # the last row wins: the figures are those of the plain label table
    clean = performance.compute(preds, labels, **COLS, min_coverage=0.5)
    assert {k: getattr(r, k) for k in FIGURES} == {k: getattr(clean, k) for k in FIGURES}


def test_labels_outside_the_classes_are_counted_and_left_out():
    preds, labels = make_day(n=400, seed=32)
    labels = labels.astype({"label": object})
    bad = {0: 2, 1: -1, 2: 0.5, 3: "1", 4: "yes"}  # 5 labels outside {0, 1}
    for row, value in bad.items():
        labels.at[row, "label"] = value
    labels.at[5, "label"] = 1.0  # in the classes by value
    labels.at[6, "label"] = True  # likewise
    other_day = pd.DataFrame({"request_id": ["other-day-1", "other-day-2"], "label": [7, "x"]})  # not this day's
    r = performance.compute(preds, pd.concat([labels, other_day]), **COLS, min_coverage=0.5)
    assert r.labels_out_of_classes == 5
    assert metric_values(r)["labels_out_of_classes"] == 5.0
    assert (r.labelled_rows, r.evaluated_rows, r.label_coverage) == (395, 395, 395 / 400)

    valid = labels.drop(index=list(bad)).astype({"label": int})
    truth = preds.merge(valid, on="request_id")
    assert figures(r) == pytest.approx(
        sklearn_figures(truth["label"], truth["score"], truth["predicted_label"]), abs=1e-9, rel=0
    )


def test_out_of_class_relabel_wins_and_is_counted():
    preds, labels = make_day(n=200, seed=33)
    relabel = labels.iloc[[0]].assign(label=3)
    r = performance.compute(preds, pd.concat([labels, relabel]), **COLS, min_coverage=0.5)
    assert (r.labels_duplicate_ids, r.labels_out_of_classes, r.labelled_rows) == (1, 1, 199)


def test_scores_out_of_range_is_a_metric_row_also_on_partial_days():
    preds, labels = make_day(n=300, seed=34)
    preds.loc[:3, "score"] = [1.5, -0.1, 1.0000001, 1.0]  # 3 outside, 1.0 inside
    r = performance.compute(preds, labels, **COLS, min_coverage=0.5)
    assert r.scores_out_of_range == 3 and metric_values(r)["scores_out_of_range"] == 3.0
    # partial day: only labelled rows are evaluated, and the count is still given
    few = labels[labels["request_id"].isin(preds["request_id"].iloc[:50])]
    p = performance.compute(preds, few, **COLS, min_coverage=0.5)
    assert p.partial and p.scores_out_of_range == 3 and metric_values(p)["scores_out_of_range"] == 3.0
    # an unlabelled bad score is not among the evaluated rows
    q = performance.compute(
        preds, labels[~labels["request_id"].isin(preds["request_id"].iloc[:1])], **COLS, min_coverage=0.5
    )
    assert q.scores_out_of_range == 2


def test_bad_input_counts_on_a_partial_day():
    preds, labels = make_day(n=200, seed=35)
    few = labels.iloc[:20].astype({"label": object})
    few.at[0, "label"] = 9
    r = performance.compute(preds, pd.concat([few, few.iloc[[1, 2]]]), **COLS, min_coverage=0.5)
    assert r.partial
    assert (r.labels_duplicate_ids, r.labels_out_of_classes, r.labelled_rows) == (2, 1, 19)
    values = metric_values(r)
    assert (values["labels_duplicate_ids"], values["labels_out_of_classes"]) == (2.0, 1.0)
    assert values["expected_calibration_error"] is None


def test_positive_class_outside_the_classes_is_refused():
    preds, labels = make_day(n=50, seed=36)
    with pytest.raises(ValueError, match="positive_class"):
        performance.compute(preds, labels, **COLS, positive_class=2, min_coverage=0.5)


# --- join_labels: the join shared with fairness and comparison ------------------------------------------


def test_join_labels_equals_an_inner_merge_in_prediction_order():
    preds, labels = make_day(n=1000, seed=40)
    other_days = pd.DataFrame({"request_id": [f"other-{i}" for i in range(300)], "label": 1})
    labels = pd.concat([labels.iloc[:700], other_days]).sample(frac=1, random_state=1)
    j = performance.join_labels(
        preds, labels, id_col="request_id", label_col="label", columns=["score", "age"], as_col="y"
    )
    expected = preds[["request_id", "score", "age"]].merge(labels.rename(columns={"label": "y"}), on="request_id")
    pd.testing.assert_frame_equal(j.rows, expected)
    assert (j.duplicate_ids, j.out_of_classes) == (0, 0)
    every = performance.join_labels(preds, labels, id_col="request_id", label_col="label")
    assert list(every.rows.columns) == [*preds.columns, "label"] and len(every.rows) == 700


def test_join_labels_counts_and_leaves_out_bad_labels():
    preds, labels = make_day(n=100, seed=41)
    labels = labels.astype({"label": object})
    ids = labels["request_id"]
    extra = pd.DataFrame(
        {
            "request_id": [ids[0], ids[0], ids[1], ids[2], "other-day"],
            "label": [1, 7, 1 - labels.at[1, "label"], None, "x"],
        }
    )
    j = performance.join_labels(preds, pd.concat([labels, extra]), id_col="request_id", label_col="label")
    assert (j.duplicate_ids, j.out_of_classes) == (2, 1)  # ids 0 and 1 relabelled (2's None is not a label)
    got = dict(zip(j.rows["request_id"], j.rows["label"]))
    assert ids[0] not in got and got[ids[1]] == 1 - labels.at[1, "label"] and len(got) == 99


def test_join_labels_with_repeated_prediction_ids_gives_the_merge_answer():
    preds, labels = make_day(n=200, seed=42)
    preds = pd.concat([preds, preds.iloc[:3]], ignore_index=True)  # a broken log: the quality step blocks it
    j = performance.join_labels(preds, labels, id_col="request_id", label_col="label", columns=["score"])
    pd.testing.assert_frame_equal(j.rows, preds[["request_id", "score"]].merge(labels, on="request_id"))
    with pytest.raises(ValueError, match="as_col"):
        performance.join_labels(
            preds, labels, id_col="request_id", label_col="label", columns=["score"], as_col="score"
        )


def test_fairness_on_join_labels_equals_fairness_on_a_merge():
    from monitoring_pipelines.families.fairness import calculator as fairness

    preds, labels = make_day(n=2000, seed=43)
    preds["sex"] = np.where(np.arange(2000) % 3 == 0, "Female", "Male")
    kw = dict(label_col="y", prediction_col="predicted_label", protected_attributes=["sex"], min_group_size=10)
    joined = performance.join_labels(
        preds,
        labels.iloc[:1500],
        id_col="request_id",
        label_col="label",
        columns=["predicted_label", "sex"],
        as_col="y",
    ).rows
    merged = preds.merge(labels.iloc[:1500].rename(columns={"label": "y"}), on="request_id")
    assert fairness.compute(joined, **kw) == fairness.compute(merged, **kw)
