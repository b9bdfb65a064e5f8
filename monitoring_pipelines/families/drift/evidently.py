"""The drift family's Evidently adapter: the illustrative HTML report, on a seeded sample of each side.

The only module that imports Evidently, inside its functions (the import costs about 4 s, and sensors and the
code location must never pay it). Figures and decisions never come from here: ``stats`` computes Evidently
0.7.23's tests on every row. The report is Evidently's ``DataDriftPreset`` on ``REPORT_ROWS`` current rows
(the day's seeded sample, ``sample_positions``) against ``REPORT_ROWS`` reference rows: about 1-2 s whatever
the day's size. Where its sampled figures differ from the metadata, the metadata (all rows) is right.
"""

from __future__ import annotations

import tempfile

import fsspec
import numpy as np
import pandas as pd

from monitoring_pipelines.families.drift.result import DriftResult, FeatureDrift
from monitoring_pipelines.plan.schema import MonitoringPlan

# Rows of each side of the HTML report (seeded random samples). Evidently 0.7 spends ~1-2 s on 27 columns at
# this size (docs/drift.md); above 1000 reference rows, so the report shows the same default tests.
REPORT_ROWS = 5_000
REPORT_SEED = 0

# Evidently's method display names -> the method ids of stats.METHODS
_METHOD_IDS = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "PSI": "psi",
    "Kullback-Leibler divergence": "kl_div",
    "Hellinger distance": "hellinger",
}


def sample_positions(rows: int) -> np.ndarray:
    """The report's rows of a day: a seeded random choice of REPORT_ROWS positions (all rows of a smaller
    day), in order."""
    if rows <= REPORT_ROWS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(REPORT_SEED).choice(rows, REPORT_ROWS, replace=False))


def write_report(result: DriftResult, reference_sample: pd.DataFrame, plan: MonitoringPlan, url: str) -> int:
    """Evidently's report of ``result.report_sample`` against a seeded sample of ``reference_sample`` (at most
    REPORT_ROWS rows each), saved as HTML to ``url`` (local path or fsspec URL). Returns the reference rows
    shown. Plan-chosen tests are passed on, so the report shows the tests the figures used."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    features, score = [f.column for f in result.features], result.prediction.column
    protected = [f.column for f in result.protected]
    cols = [*features, score, *protected]
    ref = reference_sample[cols]
    if len(ref) > REPORT_ROWS:
        ref = ref.sample(REPORT_ROWS, random_state=REPORT_SEED)
    definition = DataDefinition(
        numerical_columns=[*plan.features.numerical, score],
        categorical_columns=[*plan.features.categorical, *protected],
    )
    chosen = plan.drift.columns
    preset = DataDriftPreset(
        columns=features,
        per_column_method={c: t.method for c, t in chosen.items()} or None,
        per_column_threshold={c: t.threshold for c, t in chosen.items()} or None,
    )
    report = Report([preset, ValueDrift(column=score), *[ValueDrift(column=c) for c in protected]], include_tests=True)
    snapshot = report.run(
        Dataset.from_pandas(result.report_sample[cols], data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    _save_html(snapshot, url)
    return len(ref)


def per_column(snapshot: dict) -> dict[str, FeatureDrift]:
    """Per-column method, threshold, score and decision from an Evidently snapshot's ``dict()`` (the tests and
    benchmarks compare ``stats`` with Evidently through it)."""
    raw: dict[str, dict] = {}
    for m in snapshot["metrics"]:
        c = m["config"]
        if c["type"] == "evidently:metric_v2:ValueDrift":
            raw[c["column"]] = {
                "method": _METHOD_IDS.get(c["method"], c["method"]),
                "threshold": float(c["threshold"]),
                "score": float(m["value"]),
            }
    for t in snapshot["tests"]:
        col = t["metric_config"]["params"].get("column")
        if col in raw and "Value Drift" in t["name"]:
            status = getattr(t["status"], "value", t["status"])
            raw[col]["drifted"] = status == "FAIL"
    return {col: FeatureDrift(col, **v) for col, v in raw.items() if "drifted" in v}


def _save_html(snapshot, url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = f"{tmp}/report.html"
        snapshot.save_html(local)
        fs, path = fsspec.core.url_to_fs(url)
        parent = path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        fs.put_file(local, path)
