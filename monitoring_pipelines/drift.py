"""Feature and prediction drift with Evidently 0.7 (the only module that imports Evidently).

Evidently's default test selection applies: with more than 1000 reference rows, normed Wasserstein
distance for numerical columns and Jensen-Shannon distance for categorical ones, threshold 0.1; below,
KS / chi-square / z p-values at 0.05. The drift decision is Evidently's own test status (FAIL = drifted),
because score direction differs between p-value and distance tests (notes/library-facts.md, gotcha 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from monitoring_pipelines.metrics import Family, MetricValue
from monitoring_pipelines.plan import MonitoringPlan

# Evidently's time grows linearly with current rows (50 s at 1M, notes/baselines.md); above this many rows the
# day is sampled (seeded) for the report. The sample size is recorded in the result.
MAX_CURRENT_ROWS = 200_000

_METHOD_IDS = {"Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon",
               "K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z", "PSI": "psi"}


@dataclass(frozen=True)
class FeatureDrift:
    column: str
    method: str
    threshold: float
    score: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    features: list[FeatureDrift]
    prediction: FeatureDrift
    current_rows: int
    evaluated_rows: int
    reference_rows: int
    protected: list[FeatureDrift] = field(default_factory=list)  # protected attributes that are not model inputs

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.drifted]

    @property
    def share(self) -> float:
        return len(self.drifted) / len(self.features)

    def top(self, n: int = 5) -> list[FeatureDrift]:
        """Drifted features first, then by score relative to threshold (p-value tests: smaller is worse)."""

        def severity(f: FeatureDrift) -> float:
            if f.method in ("ks", "chisquare", "z"):
                return f.threshold / max(f.score, 1e-300)
            return f.score / f.threshold

        return sorted(self.features, key=lambda f: (not f.drifted, -severity(f)))[:n]

    def metrics(self) -> list[MetricValue]:
        out = [MetricValue(Family.DRIFT, "share_of_drifted_features", self.share),
               MetricValue(Family.DRIFT, "drifted_features", float(len(self.drifted))),
               MetricValue(Family.DRIFT, "prediction_drift_score", self.prediction.score, self.prediction.column)]
        for f in self.features:
            out.append(MetricValue(Family.DRIFT, "feature_drift_score", f.score, f.column))
            out.append(MetricValue(Family.DRIFT, "feature_drifted", float(f.drifted), f.column))
        for f in self.protected:
            out.append(MetricValue(Family.DRIFT, "protected_drift_score", f.score, f.column))
            out.append(MetricValue(Family.DRIFT, "protected_drifted", float(f.drifted), f.column))
        return out


def compute(reference: pd.DataFrame, current: pd.DataFrame, plan: MonitoringPlan,
            html_path: str | None = None) -> DriftResult:
    """Compare ``current`` with ``reference`` on the plan's features and score; optionally write the HTML report.

    ``html_path`` may be a local path or an fsspec URL.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    features = plan.features.model_inputs
    score = plan.data.predictions.score
    # protected attributes the model does not read are tested too (a shift in who is served), but they do not
    # count in the share of drifted features
    protected = [c for c in plan.protected_attributes
                 if c not in features and c in reference.columns and c in current.columns]
    evaluated = current if len(current) <= MAX_CURRENT_ROWS else current.sample(MAX_CURRENT_ROWS, random_state=0)
    definition = DataDefinition(numerical_columns=[*plan.features.numerical, score],
                                categorical_columns=[*plan.features.categorical, *protected])
    cols = [*features, score, *protected]
    cur_ds = Dataset.from_pandas(evaluated[cols], data_definition=definition)
    ref_ds = Dataset.from_pandas(reference[cols], data_definition=definition)
    chosen = plan.drift.columns
    preset = DataDriftPreset(columns=features, per_column_method={c: t.method for c, t in chosen.items()} or None,
                             per_column_threshold={c: t.threshold for c, t in chosen.items()} or None)
    report = Report([preset, ValueDrift(column=score),
                     *[ValueDrift(column=c) for c in protected]], include_tests=True)
    snapshot = report.run(cur_ds, ref_ds)
    per_column = _per_column(snapshot.dict())
    missing = [c for c in cols if c not in per_column]
    if missing:
        raise RuntimeError(f"model {plan.name}: Evidently returned no drift result for {missing}")
    if html_path:
        _save_html(snapshot, html_path)
    return DriftResult([per_column[c] for c in features], per_column[score], len(current), len(evaluated),
                       len(reference), [per_column[c] for c in protected])


def _per_column(d: dict) -> dict[str, FeatureDrift]:
    raw: dict[str, dict] = {}
    for m in d["metrics"]:
        c = m["config"]
        if c["type"] == "evidently:metric_v2:ValueDrift":
            raw[c["column"]] = {"method": _METHOD_IDS.get(c["method"], c["method"]), "threshold": float(c["threshold"]),
                                "score": float(m["value"])}
    for t in d["tests"]:
        col = t["metric_config"]["params"].get("column")
        if col in raw and "Value Drift" in t["name"]:
            status = getattr(t["status"], "value", t["status"])
            raw[col]["drifted"] = status == "FAIL"
    return {col: FeatureDrift(col, **v) for col, v in raw.items() if "drifted" in v}


def _save_html(snapshot, url: str) -> None:
    import tempfile

    import fsspec

    with tempfile.TemporaryDirectory() as tmp:
        local = f"{tmp}/report.html"
        snapshot.save_html(local)
        fs, path = fsspec.core.url_to_fs(url)
        parent = path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        fs.put_file(local, path)
