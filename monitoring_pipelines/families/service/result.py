"""Result of the service family: one day of the prediction log's volume, throughput, latency and errors."""

from __future__ import annotations

from dataclasses import dataclass

from monitoring_pipelines.families.service.names import FAMILY, Metric
from monitoring_pipelines.judge.metrics import MetricValue

# every figure of the day, in the order they are stored
FIGURES = tuple(
    m.value
    for m in (
        Metric.REQUEST_COUNT,
        Metric.THROUGHPUT_AVG_RPS,
        Metric.THROUGHPUT_PEAK_RPS,
        Metric.LATENCY_P50_MS,
        Metric.LATENCY_P95_MS,
        Metric.LATENCY_P99_MS,
        Metric.LATENCY_MAX_MS,
        Metric.ERROR_RATE,
        Metric.VERSION_MISMATCH_ROWS,
    )
)


@dataclass(frozen=True)
class ServiceResult:
    """Service figures of one day; an empty day has ``request_count`` 0 and every other figure None."""

    request_count: int
    throughput_avg_rps: float | None = None
    throughput_peak_rps: float | None = None
    peak_minute: str | None = None
    unparsed_timestamps: int | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_max_ms: float | None = None
    error_count: int | None = None
    error_rate: float | None = None
    version_mismatch_rows: int | None = None

    def metrics(self) -> list[MetricValue]:
        return [MetricValue(FAMILY, m, _float(getattr(self, m))) for m in FIGURES]

    def headline(self) -> dict[str, float | str | None]:
        return {
            "request_count": self.request_count,
            "latency_p99_ms": self.latency_p99_ms,
            "error_rate": self.error_rate,
            "throughput_peak_rps": self.throughput_peak_rps,
            "peak_minute": self.peak_minute,
            "version_mismatch_rows": self.version_mismatch_rows,
        }


def _float(value) -> float | None:
    return None if value is None else float(value)
