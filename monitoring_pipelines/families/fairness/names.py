"""Metric names of the fairness family (per protected group and the gaps between groups)."""

from enum import Enum

from monitoring_pipelines.judge.metrics import Family, register_metrics

FAMILY = Family.FAIRNESS


class Metric(str, Enum):
    ACCURACY = "accuracy"
    ATTRIBUTE_MISSING = "attribute_missing"
    DEMOGRAPHIC_PARITY_DIFFERENCE = "demographic_parity_difference"
    DEMOGRAPHIC_PARITY_RATIO = "demographic_parity_ratio"
    EQUAL_OPPORTUNITY_DIFFERENCE = "equal_opportunity_difference"
    EQUALIZED_ODDS_DIFFERENCE = "equalized_odds_difference"
    FALSE_POSITIVE_RATE = "false_positive_rate"
    GROUP_COUNT = "group_count"
    SELECTION_RATE = "selection_rate"
    TRUE_POSITIVE_RATE = "true_positive_rate"


register_metrics(FAMILY, Metric)
