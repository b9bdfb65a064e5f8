"""Metric names of the drift family (feature, prediction and protected-attribute drift)."""

from enum import Enum

from monitoring_pipelines.judge.metrics import Family, register_metrics

FAMILY = Family.DRIFT


class Metric(str, Enum):
    DRIFTED_FEATURES = "drifted_features"
    FEATURE_DRIFT_SCORE = "feature_drift_score"
    FEATURE_DRIFTED = "feature_drifted"
    PREDICTION_DRIFT_SCORE = "prediction_drift_score"
    PROTECTED_DRIFT_SCORE = "protected_drift_score"
    PROTECTED_DRIFTED = "protected_drifted"
    SHARE_OF_DRIFTED_FEATURES = "share_of_drifted_features"


register_metrics(FAMILY, Metric)
