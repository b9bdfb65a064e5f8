"""service.compute on hand-built days."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.families.catalogue import CATALOGUE
from monitoring_pipelines.families.service import calculator as service
from monitoring_pipelines.judge.metrics import Family

COLS = dict(
    timestamp_col="ts",
    latency_col="latency_ms",
    status_col="status",
    ok_status="ok",
    version_col="model_version",
    expected_version="3",
)


def day(n=1000, seed=0, tz="UTC"):
    """n requests, one per minute from midnight, with log-normal latencies."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "ts": pd.date_range("2026-03-01", periods=n, freq="min", tz=tz),
            "latency_ms": rng.lognormal(4, 0.6, n),
            "status": "ok",
            "model_version": "3",
        }
    )


def test_latency_percentiles_equal_numpy():
    df = day()
    df.loc[::50, "latency_ms"] = np.nan  # missing latencies are left out, not read as 0
    r = service.compute(df, **COLS)
    lat = df["latency_ms"].dropna().to_numpy()
    assert (r.latency_p50_ms, r.latency_p95_ms, r.latency_p99_ms) == pytest.approx(
        tuple(np.percentile(lat, [50, 95, 99])), abs=1e-12
    )
    assert r.latency_p99_ms == pytest.approx(np.nanpercentile(df["latency_ms"], 99, method="linear"), abs=1e-12)
    assert r.latency_max_ms == lat.max()


def test_percentiles_by_hand():
    df = day(n=5).assign(latency_ms=[10.0, 20.0, 30.0, 40.0, 1000.0])
    r = service.compute(df, **COLS)
    # linear: p95 sits at position 0.95 * 4 = 3.8, between 40 and 1000
    assert (r.latency_p50_ms, r.latency_p95_ms, r.latency_max_ms) == pytest.approx((30.0, 40 + 0.8 * 960, 1000.0))


def test_peak_throughput_on_a_hand_built_minute():
    df = day(n=1000)
    start = pd.Timestamp("2026-03-01 12:34:00", tz="UTC")
    burst = pd.DataFrame({"ts": start + pd.to_timedelta(np.arange(119) / 2, "s")})
    df = pd.concat([df, burst.assign(latency_ms=5.0, status="ok", model_version="3")], ignore_index=True)
    r = service.compute(df, **COLS)
    assert r.request_count == 1119
    assert r.throughput_peak_rps == 120 / 60  # 119 in the burst plus the background request at 12:34
    assert r.peak_minute == "2026-03-01T12:34:00+00:00"
    assert r.throughput_avg_rps == 1119 / 86_400


def test_naive_and_string_timestamps_read_as_utc():
    df = day(n=10, tz=None)
    df.loc[3:5, "ts"] = pd.Timestamp("2026-03-01 00:09:30")  # minute 00:09 now holds 4 requests
    as_text = df.assign(ts=df["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    as_text.loc[0, "ts"] = "not a time"  # unparseable: counted as a request, not in the peak
    for frame in (df, as_text):
        r = service.compute(frame, **COLS)
        assert r.request_count == 10
        assert r.unparsed_timestamps == (1 if frame is as_text else 0)
        assert (r.throughput_peak_rps, r.peak_minute) == (4 / 60, "2026-03-01T00:09:00+00:00")


def test_datetime_columns_in_other_zones_and_with_missing_values_match_the_text_parse():
    """Datetime columns skip pd.to_datetime (fast path); the figures equal those of the same instants as text."""
    df = day(n=300, tz="America/New_York")
    df.loc[[5, 6], "ts"] = pd.NaT
    as_text = df.assign(ts=df["ts"].map(lambda t: t.isoformat() if pd.notna(t) else None))
    fast, parsed = service.compute(df, **COLS), service.compute(as_text, **COLS)
    assert fast == parsed
    assert fast.unparsed_timestamps == 2 and fast.peak_minute == "2026-03-01T05:00:00+00:00"


def test_peak_tie_names_the_earliest_minute():
    r = service.compute(day(n=30), **COLS)
    assert (r.throughput_peak_rps, r.peak_minute) == (1 / 60, "2026-03-01T00:00:00+00:00")


def test_error_rate_counts_missing_status_as_error():
    df = day(n=100)
    df["status"] = ["ok"] * 96 + ["error", "timeout", None, "OK"]  # the check is exact: 'OK' is not 'ok'
    r = service.compute(df, **COLS)
    assert (r.error_count, r.error_rate) == (4, 0.04)


def test_numeric_status_codes():
    df = day(n=100)
    df["status"] = [200] * 97 + [500, 503, np.nan]  # the NaN makes the column float
    r = service.compute(df, **{**COLS, "ok_status": "200"})
    assert r.error_rate == 0.03
    assert service.compute(df, **{**COLS, "ok_status": "success"}).error_rate == 1.0


def test_version_mismatch_rows():
    df = day(n=100)
    df.loc[:6, "model_version"] = "2"
    df.loc[7, "model_version"] = None
    assert service.compute(df, **COLS).version_mismatch_rows == 8
    assert (
        service.compute(
            df.assign(model_version=df["model_version"].map({"3": 3, "2": 2})), **COLS
        ).version_mismatch_rows
        == 8
    )  # integer versions compare with "3"
    assert service.compute(df, **{**COLS, "expected_version": None}).version_mismatch_rows is None
    assert service.compute(df, **{**COLS, "version_col": None}).version_mismatch_rows is None


def test_unmapped_columns_give_none():
    r = service.compute(
        day(n=50)[["ts"]],
        timestamp_col="ts",
        latency_col=None,
        status_col=None,
        ok_status="ok",
        version_col=None,
        expected_version="3",
    )
    assert r.request_count == 50
    assert None is r.latency_p99_ms is r.error_rate is r.version_mismatch_rows


def test_empty_day():
    r = service.compute(day(n=0), **COLS)
    assert r.request_count == 0
    values = {m.metric: m.value for m in r.metrics()}
    assert set(values) == CATALOGUE[Family.SERVICE]
    assert values.pop("request_count") == 0
    assert all(v is None for v in values.values())


def test_missing_column_is_named():
    with pytest.raises(DataSourceError, match="latency_ms"):
        service.compute(day(n=5).drop(columns="latency_ms"), **COLS)


def test_headline():
    h = service.compute(day(n=100), **COLS).headline()
    assert h["request_count"] == 100 and h["error_rate"] == 0.0 and h["version_mismatch_rows"] == 0
    assert isinstance(h["latency_p99_ms"], float)


def test_the_calculator_reads_the_log_columns_from_the_plan_and_equals_compute(plan):
    p = plan.data.predictions
    df = day(n=300, seed=3).rename(
        columns={"ts": p.timestamp, "latency_ms": p.latency_ms, "status": p.status, "model_version": p.model_version}
    )
    df.loc[::7, p.status] = "error"
    calculator = service.ServiceCalculator.from_plan(plan)
    assert calculator.fit(None) is calculator  # nothing to learn from the reference
    got = calculator.calculate(dt.date(2026, 3, 1), df, expected_version="3")
    expected = service.compute(
        df,
        timestamp_col=p.timestamp,
        latency_col=p.latency_ms,
        status_col=p.status,
        ok_status=p.ok_status,
        version_col=p.model_version,
        expected_version="3",
    )
    assert got == expected and got.error_rate == pytest.approx(43 / 300)
