"""Shadow comparison of the MLflow challenger against the champion on the same rows.

The champion's scores are the ones it served (the prediction log); the challenger scores the same feature
rows offline. Figures: prediction agreement, score correlation (Pearson), and on labelled rows the ROC AUC
of both and their delta (challenger - champion). Confidence intervals and accumulated evidence across days
are the subject of the champion/challenger work (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitoring_pipelines.metrics import Family, MetricValue
from monitoring_pipelines.plan import MonitoringPlan
from monitoring_pipelines.registry import ModelVersionRef, Registry


@dataclass(frozen=True)
class ComparisonResult:
    champion_version: str
    challenger_version: str | None
    compared_rows: int
    prediction_agreement: float | None = None
    score_correlation: float | None = None
    labelled_rows: int = 0
    champion_roc_auc: float | None = None
    challenger_roc_auc: float | None = None

    @property
    def roc_auc_delta(self) -> float | None:
        if self.champion_roc_auc is None or self.challenger_roc_auc is None:
            return None
        return self.challenger_roc_auc - self.champion_roc_auc

    def metrics(self) -> list[MetricValue]:
        f = Family.COMPARISON
        out = [MetricValue(f, "challenger_present", float(self.challenger_version is not None)),
               MetricValue(f, "compared_rows", float(self.compared_rows))]
        if self.challenger_version is not None:
            # the segment names the challenger, so evidence accumulates per challenger version across days
            seg = f"challenger={self.challenger_version}"
            out += [MetricValue(f, "prediction_agreement", self.prediction_agreement, seg),
                    MetricValue(f, "score_correlation", self.score_correlation, seg),
                    MetricValue(f, "roc_auc_delta", self.roc_auc_delta, seg)]
        return out

    def headline(self) -> dict[str, float | None]:
        return {"compared_rows": float(self.compared_rows), "prediction_agreement": self.prediction_agreement,
                "roc_auc_delta": self.roc_auc_delta}


def _auc(labels: pd.Series, scores: np.ndarray, positive_class: int) -> float | None:
    from sklearn.metrics import roc_auc_score

    y = (labels.to_numpy() == positive_class).astype(int)
    return float(roc_auc_score(y, scores)) if len(np.unique(y)) == 2 else None


def compare(plan: MonitoringPlan, batch: pd.DataFrame, labelled: pd.DataFrame, champion: ModelVersionRef,
            challenger: ModelVersionRef | None, registry: Registry, label_col: str = "__label") -> ComparisonResult:
    if challenger is None or challenger.version == champion.version or batch.empty:
        return ComparisonResult(champion.version, None if challenger is None else challenger.version, 0)
    p = plan.data.predictions
    model = registry.load_model(challenger)
    inputs = plan.features.model_inputs
    scores = model.predict_proba(batch[inputs])[:, list(model.classes_).index(plan.model.positive_class)]
    served = batch[p.score].to_numpy(dtype=float)
    agreement = float(np.mean((scores >= 0.5).astype(int) == (batch[p.prediction].to_numpy() == plan.model.positive_class)))
    corr = float(np.corrcoef(served, scores)[0, 1]) if len(batch) > 1 else None
    champ_auc = chal_auc = None
    if len(labelled):
        chal_scores = model.predict_proba(labelled[inputs])[:, list(model.classes_).index(plan.model.positive_class)]
        champ_auc = _auc(labelled[label_col], labelled[p.score].to_numpy(dtype=float), plan.model.positive_class)
        chal_auc = _auc(labelled[label_col], chal_scores, plan.model.positive_class)
    return ComparisonResult(champion.version, challenger.version, len(batch), agreement, corr, len(labelled),
                            champ_auc, chal_auc)
