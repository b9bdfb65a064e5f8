"""The comparison's paired bootstrap on one demo-sized day: the vectorized count-matrix metrics it uses
(``comparison.weighted_metrics``) against scikit-learn called once per resample with ``sample_weight``.

    .venv/bin/python benchmarks/comparison_bootstrap.py [--rows 2700] [--resamples 1000]

The day: ``rows`` labelled rows (the 30-day demo has about 2,700 a day), 25 % positives, two models' scores on
a 0.01 grid (ties within and across classes, as a tree ensemble gives), predicted class at 0.5. Both ways use
the same resamples (``numpy.random.default_rng(seed).multinomial``, the bootstrap's own draws) and must give
the same 95 % intervals to 1e-12; the script fails otherwise. Printed: seconds of each way (data building and
imports excluded), their ratio, and the largest difference between the two sets of intervals.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn import metrics as skm

from monitoring_pipelines.families.comparison import stats

SEED = [stats.BOOTSTRAP_SEED, 739_637]  # (seed, day ordinal) as the comparison seeds a day


def make_day(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.random(rows) < 0.25
    a = np.clip(0.25 * y + rng.normal(0.4, 0.2, rows), 0, 1).round(2)
    b = np.clip(0.3 * y + 0.5 * (a - 0.4) + rng.normal(0.4, 0.15, rows), 0, 1).round(2)
    return y, (a, a >= 0.5), (b, b >= 0.5)


def sklearn_metrics(w, y, scores, predicted) -> dict[str, float]:
    both = 0 < w[y].sum() and 0 < w[~y].sum()
    return {
        "roc_auc": skm.roc_auc_score(y, scores, sample_weight=w) if both else np.nan,
        "pr_auc": skm.average_precision_score(y, scores, sample_weight=w) if both else np.nan,
        "accuracy": skm.accuracy_score(y, predicted, sample_weight=w),
        "f1": skm.f1_score(y, predicted, sample_weight=w, zero_division=0),
        "log_loss": skm.log_loss(y, scores, sample_weight=w, labels=[False, True]),
        "brier_score": skm.brier_score_loss(y, scores, sample_weight=w),
    }


def sklearn_bootstrap(y, base, other, resamples: int) -> dict[str, tuple[float, float]]:
    """The bootstrap as ``stats.paired_bootstrap`` defines it, one scikit-learn call per resample and metric."""
    n = len(y)
    rng = np.random.default_rng(SEED)
    chunk = max(1, min(resamples, stats.BOOTSTRAP_CHUNK_CELLS // n))  # the same draws, chunk by chunk
    deltas: dict[str, list[float]] = {k: [] for k in stats.METRICS}
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        for w in rng.multinomial(n, np.full(n, 1.0 / n), size=size):
            a, b = sklearn_metrics(w, y, *base), sklearn_metrics(w, y, *other)
            for k in stats.METRICS:
                deltas[k].append(b[k] - a[k])
        done += size
    tail = (1 - stats.CONFIDENCE) / 2 * 100
    out = {}
    for k, values in deltas.items():
        d = np.asarray(values)
        d = d[np.isfinite(d)]
        out[k] = (float(np.percentile(d, tail)), float(np.percentile(d, 100 - tail)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2700)
    parser.add_argument("--resamples", type=int, default=stats.BOOTSTRAP_RESAMPLES)
    args = parser.parse_args()
    y, base, other = make_day(args.rows)
    stats.delong(y, base[0], other[0])  # warm-up: scipy's first call

    t0 = time.perf_counter()
    test = stats.delong(y, base[0], other[0])
    t1 = time.perf_counter()
    ours = stats.paired_bootstrap(y, base, other, resamples=args.resamples, seed=SEED)
    t2 = time.perf_counter()
    reference = sklearn_bootstrap(y, base, other, args.resamples)
    t3 = time.perf_counter()

    diff = max(abs(x - r) for k in stats.METRICS for x, r in zip(ours[k], reference[k]))
    print(
        json.dumps(
            {
                "rows": args.rows,
                "resamples": args.resamples,
                "delong_seconds": round(t1 - t0, 4),
                "delong_variance": test.variance,
                "bootstrap_vectorized_seconds": round(t2 - t1, 3),
                "bootstrap_sklearn_per_resample_seconds": round(t3 - t2, 3),
                "sklearn_over_vectorized": round((t3 - t2) / (t2 - t1), 1),
                "largest_interval_difference": diff,
            },
            indent=1,
        )
    )
    if diff > 1e-12:
        raise SystemExit(f"the two bootstraps disagree by {diff:.3g} (> 1e-12)")


if __name__ == "__main__":
    main()
