"""Training recipes of the demo model.

``train`` fits the first champion (imputers, scaling / one-hot encoding, LogisticRegression).
``train_boosted`` is the retraining recipe of the demo plan (``actions.retrain.recipe:
monitoring_pipelines.demo.training:train_boosted``): a regularised HistGradientBoostingClassifier, which
captures the age x hours interactions the drifted traffic is made of. ``train_mislabelled`` is the "hand-made"
version of the demo's rollback episode: the same recipe fitted on labels that were joined to the wrong rows.
Each receives a labelled window and returns a fitted scikit-learn Pipeline that reads the plan's model inputs
from a DataFrame and ignores every other column.

scikit-learn is imported inside the functions that use it: this module is the demo's adapter to it, and the
demo runner (hence the ``monitoring-pipelines`` command) imports it without training anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitoring_pipelines.plan.schema import MonitoringPlan

MISSING = "<missing>"
RANDOM_STATE = 0

# Every SimpleImputer pickles a numpy dtype, which skops (MLflow's default sklearn format) does not trust
# by default; pass this to mlflow.sklearn.log_model(skops_trusted_types=...) for models from this recipe.
# HistGradientBoosting's fitted trees are TreePredictor objects, which skops does not trust by default either.
SKOPS_TRUSTED_TYPES = ["numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
# Regularised so that re-served rows of the finite traffic pool are not memorised (docs/demo-scenario.md).
BOOSTED = {"max_iter": 100, "max_leaf_nodes": 15, "min_samples_leaf": 100, "learning_rate": 0.1}


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
    return Pipeline(
        [("features", features), ("classifier", LogisticRegression(max_iter=2000, C=1.0, random_state=RANDOM_STATE))]
    )


def train(window: pd.DataFrame, plan: MonitoringPlan, *, label: str = "label"):
    """Fit the demo model on ``window`` (the plan's model inputs plus a 0/1 ``label`` column); deterministic."""
    x, y = _labelled(window, plan, label)
    return build_pipeline(plan).fit(x, y)


def build_boosted_pipeline(plan: MonitoringPlan):
    """The unfitted boosted Pipeline: numerical inputs median-imputed, categorical inputs ordinal-encoded
    ('<missing>' for nulls, -1 for levels unseen in training)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=MISSING),
        SimpleImputer(missing_values=None, strategy="constant", fill_value=MISSING),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
    )
    numerical, categories = list(plan.features.numerical), list(plan.features.categorical)
    # numerical inputs median-imputed rather than 'passthrough' (which skops would not trust to load back)
    features = ColumnTransformer(
        [("num", SimpleImputer(strategy="median"), numerical), ("cat", categorical, categories)], remainder="drop"
    )
    # the ordinal codes are split on as numbers: declaring them categorical_features would make the classifier
    # keep an internal ColumnTransformer that skops (MLflow's sklearn format) does not trust to load back
    classifier = HistGradientBoostingClassifier(random_state=RANDOM_STATE, **BOOSTED)
    return Pipeline([("features", features), ("classifier", classifier)])


def _labelled(window: pd.DataFrame, plan: MonitoringPlan, label: str):
    missing = [c for c in [*plan.features.model_inputs, label] if c not in window.columns]
    if missing:
        raise ValueError(f"{plan.name}: training window lacks column(s) {missing}")
    labelled = window[window[label].notna()]
    y = labelled[label].astype(int)
    if y.nunique() < 2:
        raise ValueError(f"{plan.name}: training window needs both classes, got only {sorted(y.unique())}")
    return labelled[plan.features.model_inputs], y


def train_boosted(window: pd.DataFrame, plan: MonitoringPlan, *, label: str = "label"):
    """Fit the boosted pipeline on ``window`` (model inputs plus a 0/1 ``label``); deterministic."""
    x, y = _labelled(window, plan, label)
    return build_boosted_pipeline(plan).fit(x, y)


def train_mislabelled(window: pd.DataFrame, plan: MonitoringPlan, *, label: str = "label", seed: int = 7):
    """The boosted pipeline fitted on labels shuffled across rows (a join on the wrong key): it ranks no
    better than chance, though nothing about its inputs or scores looks broken."""
    x, y = _labelled(window, plan, label)
    return build_boosted_pipeline(plan).fit(x, np.random.default_rng(seed).permutation(y.to_numpy()))


def reference_metrics(labels: pd.Series, scores: np.ndarray) -> dict[str, float]:
    """ROC AUC, accuracy (at 0.5) and log loss of a demo version on its reference slice (logged with its run)."""
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    return {
        "roc_auc": roc_auc_score(labels, scores),
        "accuracy": accuracy_score(labels, scores >= 0.5),
        "log_loss": log_loss(labels, scores),
    }
