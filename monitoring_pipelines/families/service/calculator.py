"""Service health of one day of the prediction log: volume, throughput, latency, errors, model version.

Pure computation: no Dagster, no I/O, numpy and pandas only. The result is ``result.ServiceResult``.

Decisions
---------
* ``throughput_avg_rps`` = requests / 86 400: the partition is one full UTC day, so a quiet night lowers the
  average as it should. (A day that is still running would be understated; monitoring runs on closed days.)
* ``throughput_peak_rps`` = requests in the busiest calendar minute / 60; ``peak_minute`` names it (the
  earliest on a tie). Timestamps are read as UTC (naive ones taken to be UTC) and floored to the minute;
  text timestamps must be ISO 8601. Rows without a parseable timestamp are left out of the peak only
  and counted in ``unparsed_timestamps``.
* Latency percentiles use ``numpy.percentile`` with the default 'linear' method (type 7, as pandas'
  ``quantile``) over the non-missing latencies; None when there are none or no latency column is mapped.
* ``error_rate`` = share of rows whose status is not ``ok_status``. A missing status counts as an error:
  a request is only known to have succeeded when it says so. On a numeric status column (HTTP codes) the
  comparison is numeric (ok_status "200" matches 200 and 200.0), otherwise textual. None without a status
  column.
* ``version_mismatch_rows`` = rows whose version is not ``expected_version`` (compared the same way); a missing
  version counts as a mismatch. None when the column is not mapped or the expected version is not known.
* An empty day gives ``request_count`` 0 and every other figure None: 0 requests is the figure to alert on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.families.service.result import FIGURES, ServiceResult
from monitoring_pipelines.plan.schema import MonitoringPlan

__all__ = ["FIGURES", "SECONDS_PER_DAY", "ServiceCalculator", "ServiceResult", "compute"]

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class ServiceCalculator:
    """Service health of one day (the calculator protocol of ``families/base.py``); nothing is learnt from
    the reference. ``expected_version`` is the champion's version, known per run, so ``calculate`` takes it."""

    timestamp_col: str
    latency_col: str | None
    status_col: str | None
    ok_status: str
    version_col: str | None

    @classmethod
    def from_plan(cls, plan: MonitoringPlan) -> ServiceCalculator:
        p = plan.data.predictions
        return cls(
            timestamp_col=p.timestamp,
            latency_col=p.latency_ms,
            status_col=p.status,
            ok_status=p.ok_status,
            version_col=p.model_version,
        )

    def fit(self, reference: pd.DataFrame | None = None) -> ServiceCalculator:
        return self

    def calculate(self, day: dt.date, log: pd.DataFrame, *, expected_version: str | None) -> ServiceResult:
        """``compute`` on ``day``'s prediction log (every row, failed requests included)."""
        return compute(
            log,
            timestamp_col=self.timestamp_col,
            latency_col=self.latency_col,
            status_col=self.status_col,
            ok_status=self.ok_status,
            version_col=self.version_col,
            expected_version=expected_version,
        )


def compute(
    df: pd.DataFrame,
    *,
    timestamp_col: str,
    latency_col: str | None,
    status_col: str | None,
    ok_status: str,
    version_col: str | None,
    expected_version: str | None,
) -> ServiceResult:
    """Service figures of one day's prediction log (one row per request). See the module doc for the rules."""
    missing = [c for c in (timestamp_col, latency_col, status_col, version_col) if c and c not in df.columns]
    if missing:
        raise DataSourceError(f"prediction log lacks column(s) {missing}; it has {list(df.columns)}")
    n = len(df)
    if n == 0:
        return ServiceResult(request_count=0)

    ts = _utc(df[timestamp_col]).dropna()
    per_minute = ts.dt.floor("min").value_counts().sort_index()
    # idxmax on the time-sorted counts: on a tie the earliest minute is named, so reruns agree
    peak, peak_minute = (int(per_minute.max()), per_minute.idxmax()) if len(per_minute) else (None, None)

    lat = {}
    if latency_col:
        values = pd.to_numeric(df[latency_col], errors="coerce").dropna().to_numpy(dtype=np.float64)
        if values.size:
            p50, p95, p99 = np.percentile(values, [50, 95, 99], method="linear")
            lat = dict(
                latency_p50_ms=float(p50),
                latency_p95_ms=float(p95),
                latency_p99_ms=float(p99),
                latency_max_ms=float(values.max()),
            )

    errors = int((~_equals(df[status_col], ok_status)).sum()) if status_col else None
    mismatches = (
        int((~_equals(df[version_col], expected_version)).sum())
        if version_col and expected_version is not None
        else None
    )
    return ServiceResult(
        request_count=n,
        throughput_avg_rps=n / SECONDS_PER_DAY,
        throughput_peak_rps=peak / 60 if peak is not None else None,
        peak_minute=peak_minute.isoformat() if peak_minute is not None else None,
        unparsed_timestamps=n - len(ts),
        error_count=errors,
        error_rate=errors / n if errors is not None else None,
        version_mismatch_rows=mismatches,
        **lat,
    )


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps in UTC, unparseable ones NaT. A datetime column (as parquet gives) is converted directly:
    ``pd.to_datetime`` would first sample it element by element to decide on caching."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    # ISO 8601 only: one fast vectorised parse, no per-row dateutil guessing on a million rows
    return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")


def _equals(values: pd.Series, expected: str) -> pd.Series:
    """Row-wise ``value == expected``; missing values are never equal. Numeric columns compare numerically,
    so a status column of HTTP codes (int, or float once a NaN slipped in) matches ``"200"``."""
    if is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        try:
            return (values == float(expected)).fillna(False).astype(bool)
        except ValueError:
            return pd.Series(False, index=values.index)  # a number can never equal a non-numeric expected value
    return (values.notna() & (values.astype(str) == str(expected))).astype(bool)
