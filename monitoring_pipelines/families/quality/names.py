"""Metric names of the quality family (Great Expectations checks on the day's batch)."""

from enum import Enum

from monitoring_pipelines.judge.metrics import Family, register_metrics

FAMILY = Family.QUALITY


class Metric(str, Enum):
    BLOCKING_FAILED_CHECKS = "blocking_failed_checks"
    CHECK_FAILED = "check_failed"
    FAILED_CHECKS = "failed_checks"
    NULL_SHARE = "null_share"
    ROW_COUNT = "row_count"


register_metrics(FAMILY, Metric)
