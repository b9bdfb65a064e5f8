"""Metric names of the comparison family (challenger vs champion on the same rows).

Rows of a candidate carry the segment ``<role>=<version>`` (``challenger=4``, ``previous_champion=1``), its
fairness-gap deltas ``<role>=<version>|<attribute>``; ``served_rows`` carries ``version=<v>``.
"""

from enum import Enum

from monitoring_pipelines.judge.metrics import Family, register_metrics

FAMILY = Family.COMPARISON


class Metric(str, Enum):
    ACCURACY = "accuracy"
    ACCURACY_DELTA = "accuracy_delta"
    ACCURACY_DELTA_CI_HIGH = "accuracy_delta_ci_high"
    ACCURACY_DELTA_CI_LOW = "accuracy_delta_ci_low"
    BRIER_SCORE = "brier_score"
    BRIER_SCORE_DELTA = "brier_score_delta"
    BRIER_SCORE_DELTA_CI_HIGH = "brier_score_delta_ci_high"
    BRIER_SCORE_DELTA_CI_LOW = "brier_score_delta_ci_low"
    CHALLENGER_PRESENT = "challenger_present"
    COMPARED_ROWS = "compared_rows"
    DEMOGRAPHIC_PARITY_DIFFERENCE_DELTA = "demographic_parity_difference_delta"
    EQUAL_OPPORTUNITY_DIFFERENCE_DELTA = "equal_opportunity_difference_delta"
    EVIDENCE_BETTER_DAYS = "evidence_better_days"
    EVIDENCE_DAYS = "evidence_days"
    EVIDENCE_FAIRNESS_REGRESSION = "evidence_fairness_regression"
    EVIDENCE_P_VALUE = "evidence_p_value"
    EVIDENCE_ROC_AUC_DELTA = "evidence_roc_auc_delta"
    EVIDENCE_ROWS = "evidence_rows"
    EVIDENCE_Z = "evidence_z"
    F1 = "f1"
    F1_DELTA = "f1_delta"
    F1_DELTA_CI_HIGH = "f1_delta_ci_high"
    F1_DELTA_CI_LOW = "f1_delta_ci_low"
    LABELLED_ROWS = "labelled_rows"
    LOG_LOSS = "log_loss"
    LOG_LOSS_DELTA = "log_loss_delta"
    LOG_LOSS_DELTA_CI_HIGH = "log_loss_delta_ci_high"
    LOG_LOSS_DELTA_CI_LOW = "log_loss_delta_ci_low"
    PR_AUC = "pr_auc"
    PR_AUC_DELTA = "pr_auc_delta"
    PR_AUC_DELTA_CI_HIGH = "pr_auc_delta_ci_high"
    PR_AUC_DELTA_CI_LOW = "pr_auc_delta_ci_low"
    PREDICTION_AGREEMENT = "prediction_agreement"
    ROC_AUC = "roc_auc"
    ROC_AUC_DELTA = "roc_auc_delta"
    ROC_AUC_DELTA_CI_HIGH = "roc_auc_delta_ci_high"
    ROC_AUC_DELTA_CI_LOW = "roc_auc_delta_ci_low"
    ROC_AUC_DELTA_P_VALUE = "roc_auc_delta_p_value"
    ROC_AUC_DELTA_VARIANCE = "roc_auc_delta_variance"
    ROC_AUC_DELTA_Z = "roc_auc_delta_z"
    SCORE_CORRELATION = "score_correlation"
    SCORE_DRIFT = "score_drift"
    SCORE_DRIFTED = "score_drifted"
    SERVED_ROWS = "served_rows"


register_metrics(FAMILY, Metric)


CHAMPION_ROLE = "champion"
CHALLENGER_ROLE = "challenger"
PREVIOUS_ROLE = "previous_champion"

# the figures compared on the labelled rows, each with <metric>_delta and its bootstrap interval
METRICS = tuple(
    m.value for m in (Metric.ROC_AUC, Metric.PR_AUC, Metric.ACCURACY, Metric.F1, Metric.LOG_LOSS, Metric.BRIER_SCORE)
)
LOWER_IS_BETTER = frozenset({Metric.LOG_LOSS.value, Metric.BRIER_SCORE.value})
# fairness gaps compared per protected attribute (names of the fairness family; <gap>_delta here)
FAIRNESS_GAPS = ("equal_opportunity_difference", "demographic_parity_difference")
# metrics the promotion rule can use: they need a significance test of the accumulated delta (DeLong)
PROMOTABLE = (Metric.ROC_AUC.value,)


def segment(role: str, version: str) -> str:
    return f"{role}={version}"


def fairness_segment(role: str, version: str, attribute: str) -> str:
    return f"{role}={version}|{attribute}"


def delta_name(metric: str) -> str:
    """``<metric>_delta``, checked against the catalogue (ValueError for a metric compared nowhere)."""
    return Metric(f"{metric}_delta").value
