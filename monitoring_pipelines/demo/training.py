"""Training recipe of the demo model (``actions.retrain.recipe: monitoring_pipelines.demo.training:train``).

The recipe receives a labelled window and returns a fitted scikit-learn Pipeline that reads the plan's
model inputs from a DataFrame and ignores every other column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from monitoring_pipelines.plan import MonitoringPlan

MISSING = "<missing>"
RANDOM_STATE = 0

# Every SimpleImputer pickles a numpy dtype, which skops (MLflow's default sklearn format) does not trust
# by default; pass this to mlflow.sklearn.log_model(skops_trusted_types=...) for models from this recipe.
SKOPS_TRUSTED_TYPES = ["numpy.dtype"]


def build_pipeline(plan: MonitoringPlan):
    """The unfitted Pipeline: imputers + scaling / one-hot encoding + LogisticRegression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numerical = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    # Missing categoricals become their own level, so a broken feed (a column arriving all null) degrades
    # predictions instead of crashing them. NaN (CSV, pandas) and None (parquet) are both missing; one
    # SimpleImputer only matches one of them, so two run in turn (the NaN one first: the None one rejects NaN).
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=MISSING),
        SimpleImputer(missing_values=None, strategy="constant", fill_value=MISSING),
        OneHotEncoder(handle_unknown="ignore"),
    )
    features = ColumnTransformer(
        [("num", numerical, list(plan.features.numerical)), ("cat", categorical, list(plan.features.categorical))],
        remainder="drop",
    )
    return Pipeline([("features", features),
                     ("classifier", LogisticRegression(max_iter=2000, C=1.0, random_state=RANDOM_STATE))])


def train(window: pd.DataFrame, plan: MonitoringPlan, *, label: str = "label"):
    """Fit the demo model on ``window`` (the plan's model inputs plus a 0/1 ``label`` column); deterministic."""
    missing = [c for c in [*plan.features.model_inputs, label] if c not in window.columns]
    if missing:
        raise ValueError(f"{plan.name}: training window lacks column(s) {missing}")
    labelled = window[window[label].notna()]
    y = labelled[label].astype(int)
    if y.nunique() < 2:
        raise ValueError(f"{plan.name}: training window needs both classes, got only {sorted(y.unique())}")
    return build_pipeline(plan).fit(labelled[plan.features.model_inputs], y)
