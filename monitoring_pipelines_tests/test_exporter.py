"""Prometheus exposition of the metric store: the text format, the CLI endpoint, and a real Prometheus scraping it.

The Prometheus server is Debian's package (``/usr/bin/prometheus``; .ci/run installs it), started by the test
on 127.0.0.1 with a generated config; without it the scrape test is skipped, except under CI=true.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring_pipelines.errors import StoreError
from monitoring_pipelines.ops import exporter
from monitoring_pipelines.store.metric_store import MetricRow, MetricStore

D1, D2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)


def _row(day, family, metric, value, status="ok", segment="", version="3"):
    return MetricRow(
        model="credit",
        model_version=version,
        alias="champion",
        partition_date=day,
        family=family,
        metric=metric,
        segment=segment,
        value=value,
        warning_threshold=None,
        critical_threshold=None,
        direction=None,
        status=status,
        run_id="r1",
        computed_at=dt.datetime(2026, 3, 3, tzinfo=dt.UTC),
    )


def _fill(store: MetricStore) -> None:
    store.migrate()
    store.replace_rows(
        "credit",
        D1,
        ["performance", "drift", "fairness"],
        [
            _row(D1, "performance", "roc_auc", 0.91),
            _row(D1, "drift", "share_of_drifted_features", 0.1),
            _row(D1, "drift", "feature_drift_score", 0.02, segment="age"),
            _row(D1, "fairness", "selection_rate", 0.4, segment="sex=Female"),
            _row(D1, "fairness", "equal_opportunity_difference", 0.12, segment="sex"),
        ],
    )
    # day 2: labels not yet arrived (roc_auc unknown, NULL); drift critical
    store.replace_rows(
        "credit",
        D2,
        ["performance", "drift"],
        [
            _row(D2, "performance", "roc_auc", None, status="unknown"),
            _row(D2, "drift", "share_of_drifted_features", 0.5, status="critical"),
            _row(D2, "drift", "feature_drift_score", 0.3, status="warning", segment="age"),
        ],
    )


def _samples(text: str) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _key(name, **labels):
    return name, tuple(sorted(labels.items()))


def _labels(family, metric, segment=""):
    return dict(model="credit", version="3", family=family, metric=metric, segment=segment)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'metrics.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_schema_url")
    )
    s = MetricStore(url)
    yield s
    s.dispose()


def test_empty_store_serves_a_valid_empty_exposition(store):
    text = exporter.exposition(store)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == {
        "monitoring_metric_value",
        "monitoring_metric_status",
        "monitoring_metric_day_timestamp_seconds",
        "monitoring_family_status",
    }
    assert all(not f.samples for f in families.values())


def test_latest_figures_statuses_and_days(store):
    _fill(store)
    s = _samples(exporter.exposition(store))
    auc = _labels("performance", "roc_auc")
    # the latest day has no AUC yet: the value is the last known one (day 1), the status is day 2's 'unknown'
    assert s[_key("monitoring_metric_value", **auc)] == pytest.approx(0.91)
    assert s[_key("monitoring_metric_status", **auc)] == 1
    assert (
        s[_key("monitoring_metric_day_timestamp_seconds", **auc)] == dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()
    )
    share = _labels("drift", "share_of_drifted_features")
    assert s[_key("monitoring_metric_value", **share)] == pytest.approx(0.5)
    assert s[_key("monitoring_metric_status", **share)] == 3
    age = _labels("drift", "feature_drift_score", "age")
    assert s[_key("monitoring_metric_value", **age)] == pytest.approx(0.3)
    assert s[_key("monitoring_metric_status", **age)] == 2
    # fairness: the attribute-level gap is exported (day 1 is its latest day), per-group rates are not
    eod = _labels("fairness", "equal_opportunity_difference", "sex")
    assert s[_key("monitoring_metric_value", **eod)] == pytest.approx(0.12)
    assert not any(dict(k[1]).get("metric") == "selection_rate" for k in s)
    # worst status per family of each family's latest day
    assert s[_key("monitoring_family_status", model="credit", family="drift")] == 3
    assert s[_key("monitoring_family_status", model="credit", family="performance")] == 1
    assert s[_key("monitoring_family_status", model="credit", family="fairness")] == 0
    assert sum(1 for k in s if k[0] == "monitoring_metric_status") == 4


def test_unreadable_store_fails_the_scrape_with_a_named_error(tmp_path):
    store = MetricStore(f"sqlite:///{tmp_path / 'metrics.db'}")
    registry = exporter.registry_for(store)
    (tmp_path / "metrics.db").unlink()
    (tmp_path / "metrics.db").mkdir()  # not a database any more
    store.dispose()
    from prometheus_client import generate_latest

    with pytest.raises(StoreError, match="latest metric values for Prometheus"):
        generate_latest(registry)


def test_textfile_command_writes_the_exposition(tmp_path, monkeypatch):
    db = tmp_path / "metrics.db"
    _fill(MetricStore(f"sqlite:///{db}"))
    out = tmp_path / "monitoring.prom"
    env = {**os.environ, "MONITORING_STORE_URL": f"sqlite:///{db}"}
    done = subprocess.run(
        [sys.executable, "-m", "monitoring_pipelines.cli", "metrics", "textfile", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    s = _samples(out.read_text())
    assert s[_key("monitoring_metric_value", **_labels("drift", "share_of_drifted_features"))] == pytest.approx(0.5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def _wait(what: str, probe, seconds: float = 60):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


@pytest.fixture
def prometheus_binary() -> str:
    binary = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "CI=true and the Prometheus server is required (Debian package 'prometheus'; .ci/run installs it)"
            )
        pytest.skip("Prometheus server not installed (apt-get install prometheus)")
    return binary


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_endpoint(prometheus_binary, pg_schema_url, tmp_path):
    _fill(MetricStore(pg_schema_url))
    exporter_port, prom_port = _free_port(), _free_port()
    env = {**os.environ, "MONITORING_STORE_URL": pg_schema_url}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitoring_pipelines.cli",
            "metrics",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(exporter_port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(
            {  # JSON is YAML
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "monitoring_pipelines",
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                    }
                ],
            }
        )
    )
    prom = subprocess.Popen(
        [
            prometheus_binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait("the exporter", lambda: b"monitoring_metric_value" in _get(f"http://127.0.0.1:{exporter_port}/metrics"))

        def query(q: str):
            url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            body = json.loads(_get(url))
            assert body["status"] == "success", body
            return body["data"]["result"]

        result = _wait(
            "Prometheus to scrape the exporter",
            lambda: query('monitoring_metric_value{model="credit",family="drift",metric="share_of_drifted_features"}'),
        )
        assert len(result) == 1
        # Prometheus treats an empty label as absent: model-level rows carry no segment label there
        assert result[0]["metric"] == {
            "__name__": "monitoring_metric_value",
            "job": "monitoring_pipelines",
            "instance": f"127.0.0.1:{exporter_port}",
            "model": "credit",
            "version": "3",
            "family": "drift",
            "metric": "share_of_drifted_features",
        }
        assert float(result[0]["value"][1]) == pytest.approx(0.5)
        critical = query("monitoring_metric_status == 3")
        assert {(r["metric"]["family"], r["metric"]["metric"]) for r in critical} == {
            ("drift", "share_of_drifted_features")
        }
        age = query('monitoring_metric_value{model="credit",metric="feature_drift_score",segment="age"}')
        assert float(age[0]["value"][1]) == pytest.approx(0.3)
        up = query('up{job="monitoring_pipelines"}')
        assert float(up[0]["value"][1]) == 1
    finally:
        for proc in (prom, server):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
