"""drift_stats (Evidently's default drift test in numpy/scipy) against the scipy lower bound and bare Evidently.

    .venv/bin/python benchmarks/drift_stats.py [--sizes 100000 1000000] [--repeat 3] [--with-evidently-1m]

Data (../shared/notes/baselines.md, "The benchmark data shape"; the 25 features only): ``num_0..num_19``
normal with mean 0.5*i and std 1 + 0.1*i; ``cat_0..cat_4`` with 10..50 plain-string levels, probabilities
proportional to linspace(1, 2, k). Reference 100k rows without drift (seed 0); current days (seed 1) with
num_0..2 scaled by 1.3 and shifted by +0.5, cat_0..1 level probabilities reversed and cubed.

Each step runs in a fresh process (so none inherits another's heap) that builds the data and imports first;
the figures time the step only, on data in memory:

* ``scipy anchor``: the lower bound of baselines.md, 20 x ``ks_2samp`` + 5 x (value counts, chi-square, PSI).
* ``drift_stats.drift_all``: all 25 columns against the reference statistics; ``fit_reference`` (once per
  model version, not nightly) is timed on its own row.
* ``Evidently``: ``Dataset.from_pandas`` x 2 + ``Report([DataDriftPreset(columns=25)], include_tests=True).run``,
  at 100k rows; at 1M only with ``--with-evidently-1m`` (about 50 s a run).

Figures are medians of ``--repeat`` runs; "x anchor" is the step's time over the scipy anchor's at the same
size. "peak RSS" is the process's high-water mark during the step (data and imports included), "+MiB" that
peak above the RSS at the start of the step (Linux: VmHWM reset through /proc/self/clear_refs).

Checks (the script exits non-zero otherwise): drift_stats' drifted columns are exactly num_0..2 and cat_0..1
at every size, and wherever Evidently ran, drift_stats' method, threshold, decision and score (1e-9
relative) equal Evidently's on every column.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from dataclasses import asdict

import numpy as np
import pandas as pd
from _memory import timed, worker_result  # sibling module: scripts run from benchmarks/
from scipy import stats

from monitoring_pipelines.families.drift import stats as drift_stats

NUM = [f"num_{i}" for i in range(20)]
CAT = [f"cat_{i}" for i in range(5)]
EXPECTED_DRIFT = {"num_0", "num_1", "num_2", "cat_0", "cat_1"}
REFERENCE_ROWS = 100_000


def make_features(rows: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for i in range(20):
        cols[f"num_{i}"] = rng.normal(0.5 * i, 1 + 0.1 * i, rows)
        if drift and i < 3:
            cols[f"num_{i}"] = cols[f"num_{i}"] * 1.3 + 0.5
    for i, k in enumerate((10, 20, 30, 40, 50)):
        p = np.linspace(1, 2, k)
        if drift and i < 2:
            p = p[::-1] ** 3
        levels = np.array([f"cat_{i}_level_{j}" for j in range(k)], dtype=object)
        cols[f"cat_{i}"] = levels[rng.choice(k, rows, p=p / p.sum())]
    return pd.DataFrame(cols)


# --- the three steps ------------------------------------------------------------------------------------


def scipy_anchor(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, float]:
    """baselines.md's lower bound: KS p-values for numeric columns, chi-square (+ PSI) for categorical ones."""
    out = {c: stats.ks_2samp(ref[c].to_numpy(), cur[c].to_numpy()).pvalue for c in NUM}
    for c in CAT:
        counts = pd.concat([ref[c].value_counts(), cur[c].value_counts()], axis=1).fillna(0).to_numpy()
        ref_share, cur_share = counts[:, 0] / counts[:, 0].sum(), counts[:, 1] / counts[:, 1].sum()
        with np.errstate(divide="ignore"):
            out[c] = stats.chisquare(counts[:, 1], ref_share * counts[:, 1].sum()).pvalue
        eps = 1e-4
        out[f"{c}_psi"] = float(np.sum((cur_share - ref_share) * np.log((cur_share + eps) / (ref_share + eps))))
    return out


def evidently_drift(ref: pd.DataFrame, cur: pd.DataFrame) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from monitoring_pipelines.families.drift.evidently import per_column

    definition = DataDefinition(numerical_columns=NUM, categorical_columns=CAT)
    report = Report([DataDriftPreset(columns=NUM + CAT)], include_tests=True)
    snapshot = report.run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
    )
    return per_column(snapshot.dict())


# --- measurement: one fresh process per (step, size), so no step inherits another's heap --------------------


def worker(step: str, size: int, repeat: int) -> None:
    """Build the data, import, then time ``step``; print one JSON line for the parent."""
    ref = make_features(REFERENCE_ROWS, seed=0, drift=False)
    cur = make_features(size, seed=1, drift=True)
    out = {}
    if step == "anchor":
        out["step"] = timed(lambda: scipy_anchor(ref, cur), repeat)
        out["step"]["result"] = None
    elif step == "ours":
        out["fit"] = timed(lambda: drift_stats.fit_reference(ref, NUM, CAT), repeat)
        fitted = out["fit"].pop("result")
        out["step"] = timed(lambda: drift_stats.drift_all(fitted, cur), repeat)
        out["step"]["result"] = {c: asdict(r) for c, r in out["step"]["result"].items()}
    else:
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # Evidently's import (library-facts.md)
        import evidently.presets  # noqa: F401  (import cost out of the timing)

        out["step"] = timed(lambda: evidently_drift(ref, cur), repeat)
        out["step"]["result"] = {c: asdict(r) for c, r in out["step"]["result"].items()}
    print(json.dumps(out))


def run(step: str, size: int, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", step, "--sizes", str(size), "--repeat", str(repeat)]
    return worker_result(cmd, f"{step} at {size:,} rows")


def compare(ours: dict, theirs: dict) -> float:
    """Max relative score difference; exits if a method, threshold or decision differs."""
    worst = 0.0
    for col, mine in ours.items():
        ev = theirs[col]
        if [mine[k] for k in ("method", "threshold", "drifted")] != [ev[k] for k in ("method", "threshold", "drifted")]:
            raise SystemExit(f"{col}: drift_stats {mine} != Evidently {ev}")
        if not math.isclose(mine["score"], ev["score"], rel_tol=1e-9):
            raise SystemExit(f"{col}: score {mine['score']} != Evidently {ev['score']}")
        worst = max(worst, abs(mine["score"] - ev["score"]) / max(abs(ev["score"]), 1e-300))
    return worst


STEPS = {
    "anchor": "scipy anchor (20 ks_2samp + 5 chi-square/PSI)",
    "ours": "drift_stats.drift_all (25 columns)",
    "evidently": "Evidently DataDriftPreset (incl. from_pandas)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--with-evidently-1m",
        action="store_true",
        help="also run Evidently above 100k current rows (about 50 s a run at 1M)",
    )
    parser.add_argument("--worker", choices=list(STEPS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.sizes[0], args.repeat)

    table, notes, fit = [], [], None
    for size in args.sizes:
        anchor, ours = run("anchor", size, args.repeat)["step"], run("ours", size, args.repeat)
        fit = ours["fit"]
        drifted = {c for c, r in ours["step"]["result"].items() if r["drifted"]}
        if drifted != EXPECTED_DRIFT:
            raise SystemExit(f"{size:,} rows: drift_stats flagged {sorted(drifted)}, expected {sorted(EXPECTED_DRIFT)}")
        parts = {"anchor": anchor, "ours": ours["step"]}
        if size <= 100_000 or args.with_evidently_1m:
            parts["evidently"] = run("evidently", size, args.repeat)["step"]
            worst = compare(ours["step"]["result"], parts["evidently"]["result"])
            notes.append(
                f"{size:>9,} rows: drifted set == Evidently's == {sorted(EXPECTED_DRIFT)}; methods, "
                f"thresholds and decisions equal on all 25 columns; max relative score difference "
                f"{worst:.1e}; drift_stats {parts['evidently']['seconds'] / ours['step']['seconds']:.0f}x "
                "faster than Evidently"
            )
        else:
            notes.append(f"{size:>9,} rows: drifted set == {sorted(EXPECTED_DRIFT)} (Evidently not run)")
        table += [(STEPS[k], size, p, p["seconds"] / anchor["seconds"]) for k, p in parts.items()]

    print(
        f"\nreference {REFERENCE_ROWS:,} rows, median of {args.repeat}; drift_stats.fit_reference (once per model "
        f"version): {fit['seconds']:.3f} s, +{fit['plus_mib']:.0f} MiB\n"
    )
    print("| step | current rows | seconds | x anchor | peak RSS MiB | +MiB |\n|---|---:|---:|---:|---:|---:|")
    for step, size, p, ratio in table:
        print(f"| {step} | {size:,} | {p['seconds']:.3f} | {ratio:.2f} | {p['peak_mib']:.0f} | {p['plus_mib']:.0f} |")
    print()
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
