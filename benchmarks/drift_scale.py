"""The drift family as the drift_report asset computes it, at 100k / 1M / 10M rows, against the scipy anchor
and bare Evidently.

    .venv/bin/python benchmarks/drift_scale.py [--sizes 100000 1000000 10000000] [--repeat 3]
                                               [--with-evidently-1m] [--data /tmp/drift_scale]

Data (../shared/notes/baselines.md, "The benchmark data shape"; ``make_features`` of benchmarks/drift_stats.py):
20 numeric + 5 categorical features, ``group`` (A with probability 0.3) as a protected attribute that is not a
model input, and the score ``prediction`` (sigmoid(0.8 num_3 - 0.5 num_4 + 0.3 [group = A] - 1) + N(0, 0.15),
clipped). Reference 100k rows without drift (seed 0). Current days with drift in num_0..2 and cat_0..1, written
once to ``--data`` as the parquet prediction log of one UTC day (1M-row row groups; 10M rows are generated and
written 1M at a time) with a timestamp, request id and predicted label, as the serving system would.

Each step runs in a fresh process (``--worker``), which reads what it needs first, untimed; the figures time
the step only, median of ``--repeat`` runs (one at 10M):

* ``ours``: ``drift.compute_day`` -- the function the drift_report asset calls -- on the day's parquet file:
  it reads the file one column at a time (including the timestamp window), tests 25 features, the score and
  the protected attribute on every row against statistics fitted once on the whole reference
  (``drift.fit_reference``, in the worker, untimed), and keeps the report's seeded sample.
* ``anchor``: baselines.md's lower bound, 20 x ``ks_2samp`` + 5 x (chi-square + PSI) on the day already in
  memory (``pd.read_parquet``, untimed), at 100k and 1M.
* ``evidently``: bare Evidently, ``Report([DataDriftPreset(25 columns)], include_tests=True).run`` including
  ``Dataset.from_pandas``, on the day in memory; at 100k, and at 1M with ``--with-evidently-1m`` (~40-50 s a run).
* ``report``: ``drift.write_report`` (the asset's HTML report: Evidently on 5,000-row samples of both sides,
  with ``save_html``), Evidently's import excluded; it does not depend on the day's size.

"peak RSS" is the worker's high-water mark during the step (imports and data included), "+MiB" that peak
above the RSS at the start of the step (Linux: VmHWM reset through /proc/self/clear_refs). Checks (exit
non-zero otherwise): our drifted set is exactly num_0..2, cat_0..1 at every size, and wherever Evidently ran,
our method, threshold and decision equal Evidently's on all 25 features (scores to 1e-9 relative).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from _memory import timed, worker_result  # sibling modules: scripts run from benchmarks/
from drift_stats import CAT, EXPECTED_DRIFT, NUM, REFERENCE_ROWS, compare, evidently_drift, make_features, scipy_anchor

DAY = dt.date(2026, 1, 5)
CHUNK_ROWS = 1_000_000
MODEL = "bench"


def make_log(rows: int, seed: int, drift: bool) -> pd.DataFrame:
    """Features plus the protected attribute, score, timestamp, id and predicted label of baselines.md."""
    df = make_features(rows, seed, drift)
    rng = np.random.default_rng([seed, 7])
    group = np.where(rng.random(rows) < 0.3, "A", "B").astype(object)
    logit = 0.8 * df["num_3"] - 0.5 * df["num_4"] + 0.3 * (group == "A") - 1
    prob = 1 / (1 + np.exp(-logit))
    df["group"] = group
    df["prediction"] = np.clip(prob + rng.normal(0, 0.15, rows), 0, 1)
    df["predicted_label"] = (df["prediction"] >= 0.5).astype("int64")
    df["ts"] = pd.Timestamp(DAY, tz="UTC") + pd.to_timedelta(rng.integers(0, 86_400_000, rows), unit="ms")
    df["request_id"] = [f"{seed}-{i}" for i in range(rows)]
    return df


def plan_for(folder: Path):
    from monitoring_pipelines.plan.schema import parse_plan

    return parse_plan(
        {
            "model": {"name": MODEL, "task": "binary_classification"},
            "owners": {"team": "bench"},
            "data": {
                "predictions": {
                    "source": "parquet",
                    "path": str(folder),
                    "timestamp": "ts",
                    "id": "request_id",
                    "prediction": "predicted_label",
                    "score": "prediction",
                    "latency_ms": None,
                    "status": None,
                    "model_version": None,
                },
                "reference": {"source": "parquet", "path": str(folder / "reference.parquet")},
            },
            "features": {"numerical": NUM, "categorical": CAT, "context": ["group"]},
            "protected_attributes": ["group"],
            "schedule": {"start_date": "2026-01-01"},
        },
        "bench.yaml",
    )


def ensure_data(root: Path, size: int) -> Path:
    """The day's parquet file of ``size`` rows (and the reference) under ``root/<size>/``, written once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / str(size)
    day_file = folder / f"{DAY.isoformat()}.parquet"
    if day_file.exists() and (folder / "reference.parquet").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    make_log(REFERENCE_ROWS, seed=0, drift=False).to_parquet(folder / "reference.parquet")
    tmp = day_file.with_suffix(".tmp")
    writer = None
    for i, start in enumerate(range(0, size, CHUNK_ROWS)):
        chunk = pa.Table.from_pandas(
            make_log(min(CHUNK_ROWS, size - start), seed=1 + 1000 * i, drift=True), preserve_index=False
        )
        writer = writer or pq.ParquetWriter(tmp, chunk.schema)
        writer.write_table(chunk, row_group_size=CHUNK_ROWS)
    writer.close()
    tmp.rename(day_file)
    return folder


# --- workers: one fresh process per (step, size) -----------------------------------------------------------


def worker(step: str, folder: Path, repeat: int) -> dict:
    from monitoring_pipelines.families.drift import calculator as drift

    plan = plan_for(folder)
    ref = pd.read_parquet(folder / "reference.parquet")
    if step in ("ours", "report"):
        fitted = drift.fit_reference(ref, plan, "1")
        run = lambda: drift.compute_day(plan, DAY, fitted, reference_rows=len(ref))  # noqa: E731
        for module in ("pyarrow.parquet", "fsspec", "monitoring_pipelines.data.sources"):  # imports out of the timing
            __import__(module)
        if step == "ours":
            out = timed(run, repeat)
            result = out.pop("result")
            out["result"] = {f.column: asdict(f) for f in [*result.features, result.prediction, *result.protected]}
            out["rows"] = result.evaluated_rows
            return out
        result = run()
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # Evidently's import (library-facts.md)
        __import__("evidently.presets")  # import cost out of the timing

        out = timed(lambda: drift.write_report(result, ref, plan, str(folder / "report.html")), repeat)
        out["result"] = {"current": result.report_rows, "reference": out["result"]}
        return out
    cur = pd.read_parquet(folder / f"{DAY.isoformat()}.parquet", columns=NUM + CAT)
    if step == "anchor":
        out = timed(lambda: scipy_anchor(ref, cur), repeat)
        out["result"] = None
        return out
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    __import__("evidently.presets")  # import cost out of the timing

    out = timed(lambda: evidently_drift(ref[NUM + CAT], cur), repeat)
    out["result"] = {c: asdict(r) for c, r in out["result"].items()}
    return out


def run(step: str, folder: Path, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", step, "--data", str(folder), "--repeat", str(repeat)]
    return worker_result(cmd, f"{step} on {folder}")


LABELS = {
    "ours": "ours: drift.compute_day (parquet read + 27 columns, all rows)",
    "anchor": "scipy anchor (20 ks_2samp + 5 chi-square/PSI, in memory)",
    "evidently": "bare Evidently DataDriftPreset (25 columns, incl. from_pandas)",
    "report": "ours: drift.write_report (HTML, Evidently on 5,000-row samples)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--with-evidently-1m", action="store_true", help="also run Evidently at 1M rows (~45 s a run)")
    parser.add_argument("--data", type=Path, default=Path("/tmp/drift_scale"), help="where the parquet days live")
    parser.add_argument("--worker", choices=list(LABELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.repeat)))
        return

    table, notes = [], []
    for size in args.sizes:
        folder = ensure_data(args.data, size)
        repeat = 1 if size > 1_000_000 else args.repeat
        ours = run("ours", folder, repeat)
        features = {c: r for c, r in ours["result"].items() if c in NUM + CAT}
        drifted = {c for c, r in features.items() if r["drifted"]}
        verdict = "== expected" if drifted == EXPECTED_DRIFT else f"!= expected {sorted(EXPECTED_DRIFT)}"
        anchor = run("anchor", folder, repeat) if size <= 1_000_000 else None
        theirs = (
            run("evidently", folder, repeat)
            if size <= 100_000 or (size <= 1_000_000 and args.with_evidently_1m)
            else None
        )
        rows = [("ours", ours), ("anchor", anchor), ("evidently", theirs)]
        for step, part in rows:
            if part is not None:
                table.append((LABELS[step], size, part, anchor, theirs if step == "ours" else None))
        note = f"{size:>10,} rows: our drifted set {sorted(drifted)} {verdict}; evaluated rows {ours['rows']:,}"
        if theirs is not None:
            worst = compare(features, theirs["result"])
            note += (
                f"; method, threshold and decision equal to Evidently's on all 25 features (max relative score "
                f"difference {worst:.1e}); {theirs['seconds'] / ours['seconds']:.0f}x faster than Evidently"
            )
        notes.append(note)
        if drifted != EXPECTED_DRIFT:
            raise SystemExit(note)
    report = run("report", ensure_data(args.data, args.sizes[0]), args.repeat)
    table.append((LABELS["report"], args.sizes[0], report, None, None))

    print(f"\nreference {REFERENCE_ROWS:,} rows; median of {args.repeat} runs (1 at 10M); each step a fresh process\n")
    print("| step | current rows | seconds | x scipy anchor | Evidently / ours | peak RSS MiB | +MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, size, p, anchor, theirs in table:
        ratio = f"{p['seconds'] / anchor['seconds']:.2f}" if anchor else "—"
        speed = f"{theirs['seconds'] / p['seconds']:.0f}x" if theirs else "—"
        print(
            f"| {label} | {size:,} | {p['seconds']:.3f} | {ratio} | {speed} | {p['peak_mib']:.0f} | "
            f"{p['plus_mib']:.0f} |"
        )
    print()
    for note in notes:
        print(note)
    print(
        f"HTML report: {report['result']['current']:,} current rows against {report['result']['reference']:,} "
        "reference rows"
    )


if __name__ == "__main__":
    main()
