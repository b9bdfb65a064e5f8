"""Metric names of the performance family (labels joined) and of its label-free estimate."""

from enum import Enum

from monitoring_pipelines.judge.metrics import Family, register_metrics

FAMILY = Family.PERFORMANCE
ESTIMATED_FAMILY = Family.PERFORMANCE_ESTIMATED


class Metric(str, Enum):
    ACCURACY = "accuracy"
    BRIER_SCORE = "brier_score"
    EXPECTED_CALIBRATION_ERROR = "expected_calibration_error"
    F1 = "f1"
    LABEL_COVERAGE = "label_coverage"
    LABELLED_ROWS = "labelled_rows"
    LABELS_DUPLICATE_IDS = "labels_duplicate_ids"
    LABELS_OUT_OF_CLASSES = "labels_out_of_classes"
    LOG_LOSS = "log_loss"
    PR_AUC = "pr_auc"
    PRECISION = "precision"
    RECALL = "recall"
    ROC_AUC = "roc_auc"
    SCORES_OUT_OF_RANGE = "scores_out_of_range"


# the label-free estimate (CBPE) writes its own family so realised and estimated figures never mix
class EstimatedMetric(str, Enum):
    ACCURACY = "accuracy"
    ESTIMATED_ROWS = "estimated_rows"
    F1 = "f1"
    PRECISION = "precision"
    RECALL = "recall"
    ROC_AUC = "roc_auc"


register_metrics(FAMILY, Metric)
register_metrics(ESTIMATED_FAMILY, EstimatedMetric)
