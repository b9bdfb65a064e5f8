"""The quality family (quality.validate / validate_parquet) against one plain GX validate() of the same suite.

    .venv/bin/python benchmarks/quality_scale.py [--sizes 100000 1000000 10000000] [--repeat 1] [--workdir DIR]

Data (../shared/notes/baselines.md, "The benchmark data shape"): ``num_0..num_19`` normal with mean 0.5*i and std
1 + 0.1*i, ``cat_0..cat_4`` with 10..50 plain-string levels (drifted current days, as in drift_stats.py), plus
``request_id`` (unique), ``ts`` (within the day), ``score`` and ``prediction`` (the baselines' sigmoid score and
its label). Reference: 100k rows without drift. The plan monitors the 25 features and adds 6 expectations in GX's
format (5 x expect_column_mean_to_be_between, 1 x expect_column_values_to_match_regex on the id), so the suite is
the derived checks plus those: 80 expectations. Each day is written to parquet by a separate process in 1M-row
pieces (row groups of 1,048,576 rows at most, pyarrow's default), so no process ever holds 10M rows unless its
step reads them.

Steps, each in a fresh process (imports and the reference profile first, then the timed step):

* ``GX validate() (anchor)``: ``quality.validate_single`` on the day in memory: the whole suite in one plain GX
  ``validate()`` on the whole frame (100k and 1M only: 10M took 102 s and 7.7 GiB for 30 expectations).
* ``quality.validate (in memory)``: the pipeline's call, on the same frame in memory.
* ``quality.validate_parquet``: reads the day's file chunk by chunk (read time included).

"x anchor" is the step's time over the anchor's at the same size, same run. "peak RSS" is the process's high-water
mark during the step (imports, reference profile and, for the in-memory steps, the day's frame included); "+MiB"
is that peak above the RSS at the start of the step. The script exits non-zero unless every check's verdict,
unexpected count and observed value from both of our paths equal the anchor's wherever the anchor ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _memory import timed, worker_result  # sibling module: scripts run from benchmarks/
from drift_stats import CAT, NUM, REFERENCE_ROWS, make_features

DAY = dt.date(2026, 3, 1)
PIECE_ROWS = 1_000_000


def make_day(rows: int, seed: int, drift: bool, first_id: int = 0) -> pd.DataFrame:
    df = make_features(rows, seed, drift)
    rng = np.random.default_rng(seed + 100)
    logit = 0.8 * df["num_3"] - 0.5 * df["num_4"] + 0.3 * (rng.random(rows) < 0.3) - 1
    score = np.clip(1 / (1 + np.exp(-logit)) + rng.normal(0, 0.15, rows), 0, 1)
    df["request_id"] = [f"req-{i:010d}" for i in range(first_id, first_id + rows)]
    df["ts"] = pd.Timestamp(DAY, tz="UTC") + pd.to_timedelta(rng.integers(0, 86_400_000, rows), unit="ms")
    df["score"] = score
    df["prediction"] = (score >= 0.5).astype("int64")
    return df


def plan_for(folder: Path):
    from monitoring_pipelines.plan.schema import parse_plan

    expectations = [
        {
            "name": f"num_{i}_mean",
            "type": "expect_column_mean_to_be_between",
            "kwargs": {"column": f"num_{i}", "min_value": 0.5 * i - 1, "max_value": 0.5 * i + 1.5},
        }
        for i in range(5)
    ]
    expectations.append(
        {
            "name": "request_id_format",
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "request_id", "regex": r"^req-\d{10}$"},
            "blocking": True,
        }
    )
    return parse_plan(
        {
            "model": {"name": "bench"},
            "owners": {"team": "bench"},
            "data": {
                "predictions": {
                    "source": "parquet",
                    "path": str(folder),
                    "latency_ms": None,
                    "status": None,
                    "model_version": None,
                },
                "reference": {"source": "parquet", "path": str(folder / "reference.parquet")},
            },
            "features": {"numerical": NUM, "categorical": CAT},
            "schedule": {"start_date": "2026-01-01"},
            "quality": {"expectations": expectations},
        },
        "benchmark plan",
    )


def write_day(folder: Path, rows: int) -> None:
    """The day's parquet file, written piece by piece (this process never holds more than one piece)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for k, start in enumerate(range(0, rows, PIECE_ROWS)):
        piece = make_day(min(PIECE_ROWS, rows - start), seed=1 + k, drift=True, first_id=start)
        table = pa.Table.from_pandas(piece, preserve_index=False)
        writer = writer or pq.ParquetWriter(folder / f"{DAY.isoformat()}.parquet", table.schema)
        writer.write_table(table)
    writer.close()


def _summary(result) -> dict:
    return {o.spec.name: [o.passed, o.unexpected_count, o.observed] for o in result.outcomes}


def worker(step: str, folder: Path, repeat: int) -> None:
    warnings.filterwarnings("ignore")  # GX's import chatter (library-facts.md)
    importlib.import_module("great_expectations")  # import cost out of the timing

    from monitoring_pipelines.families.quality import calculator as quality
    from monitoring_pipelines.profiling import build_profile

    plan = plan_for(folder)
    profile = build_profile(pd.read_parquet(folder / "reference.parquet"), plan, "1")
    if step == "parquet":
        out = timed(lambda: quality.validate_parquet(plan, profile, DAY), repeat)
    else:
        day = pd.read_parquet(folder / f"{DAY.isoformat()}.parquet")
        fn = quality.validate if step == "memory" else quality.validate_single
        out = timed(lambda: fn(day, plan, profile), repeat)
    result = out.pop("result")
    out["summary"] = _summary(result)
    out["expectations"] = len(result.outcomes)
    out["failed"] = sorted(o.spec.name for o in result.failed)
    print(json.dumps(out))


def run(step: str, folder: Path, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", step, "--workdir", str(folder), "--repeat", str(repeat)]
    return worker_result(cmd, f"{step} in {folder}")


STEPS = {
    "single": "GX validate() (anchor)",
    "memory": "quality.validate (in memory)",
    "parquet": "quality.validate_parquet",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="where the days are written (default: a temporary folder)")
    parser.add_argument("--worker", choices=list(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--write", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.workdir, args.repeat)
    if args.write is not None:
        return write_day(args.workdir, args.write)

    root = args.workdir or Path(tempfile.mkdtemp(prefix="quality_scale_"))
    table, notes = [], []
    for size in args.sizes:
        folder = root / str(size)
        folder.mkdir(parents=True, exist_ok=True)
        make_day(REFERENCE_ROWS, seed=0, drift=False).to_parquet(folder / "reference.parquet")
        subprocess.run([sys.executable, __file__, "--write", str(size), "--workdir", str(folder)], check=True)
        parts = {}
        if size <= 1_000_000:
            parts["single"] = run("single", folder, args.repeat)
            parts["memory"] = run("memory", folder, args.repeat)
        parts["parquet"] = run("parquet", folder, args.repeat)
        anchor = parts.get("single")
        for key, p in parts.items():
            if anchor and p["summary"] != anchor["summary"]:
                diff = {k: (v, anchor["summary"][k]) for k, v in p["summary"].items() if v != anchor["summary"][k]}
                raise SystemExit(f"{size:,} rows: {STEPS[key]} differs from the anchor: {diff}")
            table.append((STEPS[key], size, p, p["seconds"] / anchor["seconds"] if anchor else None))
        p = parts["parquet"]
        notes.append(
            f"{size:>10,} rows: {p['expectations']} expectations, failed: {', '.join(p['failed']) or 'none'}"
            + ("; every verdict, unexpected count and observed value equal the anchor's" if anchor else "")
        )

    print(f"\nreference {REFERENCE_ROWS:,} rows; median of {args.repeat}; each step a fresh process\n")
    print("| step | rows | seconds | x anchor | peak RSS MiB | +MiB |\n|---|---:|---:|---:|---:|---:|")
    for step, size, p, ratio in table:
        r = f"{ratio:.2f}" if ratio is not None else "—"
        print(f"| {step} | {size:,} | {p['seconds']:.2f} | {r} | {p['peak_mib']:.0f} | {p['plus_mib']:.0f} |")
    print()
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
