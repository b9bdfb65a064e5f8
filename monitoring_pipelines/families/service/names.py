"""Metric names of the service family (latency, throughput, errors)."""

from enum import Enum

from monitoring_pipelines.judge.metrics import Family, register_metrics

FAMILY = Family.SERVICE


class Metric(str, Enum):
    ERROR_RATE = "error_rate"
    LATENCY_MAX_MS = "latency_max_ms"
    LATENCY_P50_MS = "latency_p50_ms"
    LATENCY_P95_MS = "latency_p95_ms"
    LATENCY_P99_MS = "latency_p99_ms"
    REQUEST_COUNT = "request_count"
    THROUGHPUT_AVG_RPS = "throughput_avg_rps"
    THROUGHPUT_PEAK_RPS = "throughput_peak_rps"
    VERSION_MISMATCH_ROWS = "version_mismatch_rows"


register_metrics(FAMILY, Metric)
