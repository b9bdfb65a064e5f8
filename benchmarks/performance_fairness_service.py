"""Performance + fairness + service health on one day of the benchmark data shape, against the same metrics
computed directly with scikit-learn / numpy on the same arrays (the anchor), in the same run.

    .venv/bin/python benchmarks/performance_fairness_service.py [--rows 1000000] [--repeat 3]

The data (../shared/notes/baselines.md, "The benchmark data shape", current day with its drift): 20 numeric
and 5 categorical (plain string) features, ``group`` A (p 0.3) / B as the protected attribute, binary
``target`` from sigmoid(0.8*num_3 - 0.5*num_4 + 0.3*[group==A] - 1), ``prediction`` = that probability +
N(0, 0.15), clipped to [0, 1]. Added for this benchmark: ``request_id`` (text, ``req-0000001``),
``predicted_label`` = prediction >= 0.5, ``ts`` uniform over one UTC day (datetime64[ns, UTC], as read from
parquet), ``latency_ms`` lognormal (median 25 ms, sigma 0.5), ``status`` "ok" / "error" (0.2 %). The label
table is ``request_id`` + ``target``, shuffled (labels arrive in their own order), as read by the pipeline.

Tasks (each repetition is a fresh subprocess that builds the data in memory first, then imports the
libraries, then times; so neither data generation nor import time is in a figure):

* ``anchor``: scikit-learn's roc_auc_score, average_precision_score, accuracy/precision/recall/f1_score,
  log_loss, brier_score_loss and a numpy.histogram ECE on the aligned arrays; per group (boolean masks)
  count, selection rate, TPR, FPR, accuracy and the four gaps; numpy percentiles, max, error rate and
  per-minute counts (int64 minute index + bincount). No join: the arrays are already aligned.
* ``ours``: ``performance.compute`` (predictions frame + label frame, joins on the id), then
  ``fairness.compute`` on the day joined with its labels (the join is done the way the ``fairness`` asset
  does it, and timed with it), then ``service.compute`` on the day's frame.

Each task reports its parts and the total. Peak RSS: before timing a part the process resets its
high-water mark (``echo 5 > /proc/self/clear_refs``, Linux), after the part it reads ``VmHWM`` from
/proc/self/status; "peak MiB" is that peak for the process (the data in memory included), "+MiB" the peak
above the RSS at the start of the part (what the computation itself allocates). Figures are medians over
the repetitions; the ratio is ours / anchor for the same part. The issue's target: ours within 3x the anchor.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from _memory import reset_peak, status_kib  # sibling module: scripts run from benchmarks/

DAY = pd.Timestamp("2026-03-01", tz="UTC")
PARTS = ("performance", "fairness", "service")


# --- data -----------------------------------------------------------------------------------------------


def make_day(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i in range(20):
        cols[f"num_{i}"] = rng.normal(0.5 * i, 1 + 0.1 * i, rows)
    for i in range(3):  # the current day's drift
        cols[f"num_{i}"] = cols[f"num_{i}"] * 1.3 + 0.5
    for i, k in enumerate((10, 20, 30, 40, 50)):
        p = np.linspace(1, 2, k)
        if i < 2:
            p = p[::-1] ** 3
        levels = np.array([f"cat_{i}_level_{j}" for j in range(k)], dtype=object)
        cols[f"cat_{i}"] = levels[rng.choice(k, rows, p=p / p.sum())]
    group = np.where(rng.random(rows) < 0.3, "A", "B").astype(object)
    logit = 0.8 * cols["num_3"] - 0.5 * cols["num_4"] + 0.3 * (group == "A") - 1
    proba = 1 / (1 + np.exp(-logit))
    target = (rng.random(rows) < proba).astype(np.int64)
    prediction = np.clip(proba + rng.normal(0, 0.15, rows), 0, 1)
    ids = np.array([f"req-{i:07d}" for i in range(rows)], dtype=object)
    ts = DAY + pd.to_timedelta(np.sort(rng.integers(0, 86_400_000_000_000, rows)), "ns")
    df = pd.DataFrame(
        {
            "request_id": ids,
            **cols,
            "group": group,
            "target": target,
            "prediction": prediction,
            "predicted_label": (prediction >= 0.5).astype(np.int64),
            "ts": ts,
            "latency_ms": rng.lognormal(np.log(25.0), 0.5, rows),
            "status": np.where(rng.random(rows) < 0.002, "error", "ok").astype(object),
        }
    )
    labels = pd.DataFrame({"request_id": ids, "target": target}).sample(frac=1, random_state=seed)
    return df, labels.reset_index(drop=True)


# --- the anchor -----------------------------------------------------------------------------------------


def anchor_performance(y, score):
    from sklearn import metrics as skm

    pred = (score >= 0.5).astype(np.int64)
    edges = np.arange(11) / 10
    n_b, _ = np.histogram(score, bins=edges)
    d_b, _ = np.histogram(score, bins=edges, weights=y - score)
    return {
        "roc_auc": skm.roc_auc_score(y, score),
        "pr_auc": skm.average_precision_score(y, score),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "log_loss": skm.log_loss(y, score),
        "brier_score": skm.brier_score_loss(y, score),
        "expected_calibration_error": float(np.abs(d_b).sum() / len(y)),
        "n": int(n_b.sum()),
    }


def anchor_fairness(y, pred, group):
    per = {}
    for g in ("A", "B"):
        m = group == g
        yg, pg = y[m], pred[m]
        pos, neg = yg == 1, yg == 0
        per[g] = dict(
            count=int(m.sum()),
            selection_rate=pg.mean(),
            tpr=pg[pos].mean(),
            fpr=pg[neg].mean(),
            accuracy=(pg == yg).mean(),
        )
    sel, tpr, fpr = ([per[g][k] for g in per] for k in ("selection_rate", "tpr", "fpr"))
    return {
        "per_group": per,
        "dpd": max(sel) - min(sel),
        "dpr": min(sel) / max(sel),
        "eod": max(tpr) - min(tpr),
        "eodds": max(max(tpr) - min(tpr), max(fpr) - min(fpr)),
    }


def anchor_service(ts_ns, latency, status):
    p50, p95, p99 = np.percentile(latency, [50, 95, 99])
    minute = ts_ns // 60_000_000_000  # calendar minutes since the epoch (UTC)
    minute -= minute.min()
    per_minute = np.bincount(minute)
    return {
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "max": latency.max(),
        "error_rate": (status != "ok").mean(),
        "peak_rps": per_minute.max() / 60,
        "avg_rps": len(latency) / 86_400,
    }


def run_anchor(df: pd.DataFrame, labels: pd.DataFrame, timed) -> dict:
    # the same arrays the figures rest on; taking them out of the frame is part of the work
    out = {}
    out["performance"] = timed(
        "performance", lambda: anchor_performance(df["target"].to_numpy(), df["prediction"].to_numpy())
    )
    out["fairness"] = timed(
        "fairness",
        lambda: anchor_fairness(df["target"].to_numpy(), df["predicted_label"].to_numpy(), df["group"].to_numpy()),
    )
    out["service"] = timed(
        "service", lambda: anchor_service(df["ts"].array.asi8, df["latency_ms"].to_numpy(), df["status"].to_numpy())
    )
    return out


# --- ours -----------------------------------------------------------------------------------------------


def run_ours(df: pd.DataFrame, labels: pd.DataFrame, timed) -> dict:
    from monitoring_pipelines.families.fairness import calculator as fairness
    from monitoring_pipelines.families.performance import calculator as performance
    from monitoring_pipelines.families.service import calculator as service

    def fair():
        # the day's served rows with their labels, by the performance step's rules (one hash pass, only the
        # columns fairness needs), then the per-group figures
        served = df[df["prediction"].notna()]
        joined = performance.join_labels(
            served,
            labels,
            id_col="request_id",
            label_col="target",
            columns=["predicted_label", "group"],
            as_col="__label",
        ).rows
        return fairness.compute(
            joined,
            label_col="__label",
            prediction_col="predicted_label",
            protected_attributes=["group"],
            min_group_size=100,
        )

    def fair_wide_merge():
        # the join model_assets.labelled() does today: every column of the day, DataFrame.merge
        served = df[df["prediction"].notna()]
        joined = served.merge(labels.rename(columns={"target": "__label"}), on="request_id", how="inner")
        return fairness.compute(
            joined,
            label_col="__label",
            prediction_col="predicted_label",
            protected_attributes=["group"],
            min_group_size=100,
        )

    out = {}
    out["performance"] = timed(
        "performance",
        lambda: performance.compute(
            df,
            labels,
            id_col="request_id",
            score_col="prediction",
            prediction_col="predicted_label",
            label_col="target",
            min_coverage=0.5,
        ),
    )
    out["fairness"] = timed("fairness", fair)
    out["service"] = timed(
        "service",
        lambda: service.compute(
            df,
            timestamp_col="ts",
            latency_col="latency_ms",
            status_col="status",
            ok_status="ok",
            version_col=None,
            expected_version=None,
        ),
    )
    out["fairness_wide_merge"] = timed("fairness_wide_merge", fair_wide_merge)  # after the rest: not in the total
    assert out["fairness_wide_merge"] == out["fairness"]
    return out


# --- measuring ------------------------------------------------------------------------------------------


def worker(task: str, rows: int, seed: int) -> None:
    df, labels = make_day(rows, seed)

    if task == "ours":
        import fairlearn.metrics  # noqa: F401

        from monitoring_pipelines import service  # noqa: F401

    parts: dict[str, dict] = {}

    def timed(name, fn):
        reset_peak()
        rss = status_kib("VmRSS")
        start = time.perf_counter()
        result = fn()
        parts[name] = {
            "seconds": time.perf_counter() - start,
            "peak_mib": status_kib("VmHWM") / 1024,
            "plus_mib": (status_kib("VmHWM") - rss) / 1024,
        }
        return result

    results = (run_ours if task == "ours" else run_anchor)(df, labels, timed)
    print(json.dumps({"parts": parts, "check": _check(task, results)}))


def _check(task: str, r: dict) -> dict:
    """A few figures of each side, to show both computed the same thing."""
    if task == "anchor":
        return {
            "roc_auc": r["performance"]["roc_auc"],
            "ece": r["performance"]["expected_calibration_error"],
            "dpd": r["fairness"]["dpd"],
            "p99": r["service"]["p99"],
            "peak_rps": r["service"]["peak_rps"],
        }
    return {
        "roc_auc": r["performance"].roc_auc,
        "ece": r["performance"].expected_calibration_error,
        "dpd": r["fairness"].disparity("group").demographic_parity_difference,
        "p99": r["service"].latency_p99_ms,
        "peak_rps": r["service"].throughput_peak_rps,
    }


def run_task(task: str, rows: int, seed: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-W", "ignore", __file__, "--worker", task, "--rows", str(rows), "--seed", str(seed)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"{task} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["anchor", "ours"])
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.rows, args.seed)
        return

    runs: dict[str, list[dict]] = {"anchor": [], "ours": []}
    for _ in range(args.repeat):  # interleaved, so a slow spell of the machine hits both sides
        for task in runs:
            runs[task].append(run_task(task, args.rows, args.seed))
    checks = {task: runs[task][0]["check"] for task in runs}

    def med(task, part, key):
        if part == "total":
            return (
                statistics.median(sum(r["parts"][p][key] for p in PARTS) for r in runs[task])
                if key == "seconds"
                else statistics.median(max(r["parts"][p][key] for p in PARTS) for r in runs[task])
            )
        return statistics.median(r["parts"][part][key] for r in runs[task])

    print(f"rows {args.rows:,}, median of {args.repeat} fresh processes, seed {args.seed}")
    print(f"| {'task':45} | {'median s':>8} | {'peak MiB':>8} | {'+MiB':>6} | {'x anchor':>8} |")
    print(f"|{'-' * 47}|{'-' * 9}:|{'-' * 9}:|{'-' * 7}:|{'-' * 9}:|")

    def row(label, task, part, base):
        s = med(task, part, "seconds")
        print(
            f"| {label:45} | {s:8.3f} | {med(task, part, 'peak_mib'):8.0f} | "
            f"{med(task, part, 'plus_mib'):6.0f} | {s / base:8.2f} |"
        )

    for part in (*PARTS, "total"):
        base = med("anchor", part, "seconds")
        for task in ("anchor", "ours"):
            row(f"{task}: {part}", task, part, base)
    row(
        "(ours: fairness with the asset's wide merge)",
        "ours",
        "fairness_wide_merge",
        med("anchor", "fairness", "seconds"),
    )
    print("same figures:", json.dumps(checks))


if __name__ == "__main__":
    main()
