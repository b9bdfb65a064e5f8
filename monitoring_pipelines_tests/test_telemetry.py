"""Spans and tagged logs of the monitoring steps (monitoring_pipelines/telemetry.py).

Spans are checked with the SDK's in-memory exporter and with a real OTLP/HTTP receiver on 127.0.0.1 that
decodes the protobuf the exporter sends.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from monitoring_pipelines.errors import BlockedDayError
from monitoring_pipelines.ops import telemetry

DAY = dt.date(2026, 1, 8)


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for var in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SDK_DISABLED",
        "OTEL_SERVICE_NAME",
        "MONITORING_LOG_FORMAT",
    ):
        monkeypatch.delenv(var, raising=False)
    telemetry.reset_tracing()
    yield
    telemetry.reset_tracing()


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    telemetry.use_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_a_step_emits_one_span_with_model_version_day_family_rows_and_outcome(spans):
    with telemetry.step("drift", model="adult_income", day=DAY, run_id="run-1", model_version="3") as s:
        s.set(rows=1234)
    (span,) = spans.get_finished_spans()
    assert span.name == "monitoring.drift"
    assert dict(span.attributes) == {
        "monitoring.model": "adult_income",
        "monitoring.model_version": "3",
        "monitoring.day": "2026-01-08",
        "monitoring.family": "drift",
        "monitoring.dagster_run_id": "run-1",
        "monitoring.rows": 1234,
        "monitoring.outcome": "ok",
    }
    assert span.resource.attributes["service.name"] == "monitoring_pipelines"


def test_a_failing_step_records_the_error_and_reraises_it(spans):
    with pytest.raises(KeyError, match="age"):
        with telemetry.step("quality", model="m", day=DAY):
            raise KeyError("age")
    with pytest.raises(BlockedDayError):
        with telemetry.step("performance", model="m", day=DAY):
            raise BlockedDayError("blocked")
    error, blocked = spans.get_finished_spans()
    assert error.attributes["monitoring.outcome"] == "error"
    assert error.status.status_code is StatusCode.ERROR and "KeyError" in error.status.description
    assert [e.name for e in error.events] == ["exception"]
    assert blocked.attributes["monitoring.outcome"] == "blocked"


def test_without_an_endpoint_nothing_is_set_up_and_logs_are_still_tagged():
    out = io.StringIO()
    handler = telemetry.configure_logging(out, fmt="json")
    try:
        with telemetry.step("service", model="adult_income", day=DAY, run_id="run-9") as s:
            telemetry.get_logger("test").info("computed %d rows", 7, extra={"rows": 7})
            s.set(rows=7)
        assert telemetry._provider is None  # no SDK provider, no exporter, no thread
        (line,) = out.getvalue().splitlines()
        record = json.loads(line)
        assert record["message"] == "computed 7 rows"
        assert {k: record[k] for k in ("model", "day", "run_id", "family", "rows")} == {
            "model": "adult_income",
            "day": "2026-01-08",
            "run_id": "run-9",
            "family": "service",
            "rows": 7,
        }
        assert record["logger"] == "monitoring_pipelines.test" and record["level"] == "INFO"
    finally:
        telemetry.logging.getLogger(telemetry.LOGGER_NAME).removeHandler(handler)


def test_log_context_nests_and_is_restored():
    out = io.StringIO()
    handler = telemetry.configure_logging(out, fmt="text")
    log = telemetry.get_logger("nest")
    try:
        with telemetry.log_context(model="a", day=DAY):
            with telemetry.log_context(family="drift"):
                log.warning("inner")
            log.warning("outer")
        log.warning("none")
        inner, outer, none = out.getvalue().splitlines()
        assert inner.endswith("[model=a day=2026-01-08 family=drift]")
        assert outer.endswith("[model=a day=2026-01-08]")
        assert "[" not in none
    finally:
        telemetry.logging.getLogger(telemetry.LOGGER_NAME).removeHandler(handler)


class _Receiver(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_spans_reach_a_real_otlp_http_receiver_configured_by_the_standard_environment(monkeypatch):
    _Receiver.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "monitoring-test")
        with telemetry.step("fairness", model="adult_income", day=DAY, run_id="r", model_version="2") as s:
            s.set(rows=50)
        assert telemetry.flush(10_000)
        (path, content_type, body), *_ = _Receiver.requests
        assert path == "/v1/traces" and content_type == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        (resource_spans,) = request.resource_spans
        service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
        assert service == "monitoring-test"
        (span,) = resource_spans.scope_spans[0].spans
        attrs = {a.key: (a.value.string_value or a.value.int_value) for a in span.attributes}
        assert span.name == "monitoring.fairness"
        assert attrs["monitoring.model"] == "adult_income" and attrs["monitoring.day"] == "2026-01-08"
        assert attrs["monitoring.rows"] == 50 and attrs["monitoring.outcome"] == "ok"
    finally:
        server.shutdown()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("endpoint", ["unreachable", "malformed"])
def test_a_misconfigured_endpoint_never_fails_the_step(monkeypatch, endpoint, caplog):
    value = f"http://127.0.0.1:{_closed_port()}" if endpoint == "unreachable" else "http://[::bad"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", value)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    with telemetry.step("drift", model="m", day=DAY) as s:
        s.set(rows=1)
        result = 42
    assert result == 42
    telemetry.flush(3000)  # the export fails in the background (logged by the SDK), never raised here
    if endpoint == "malformed":
        assert "Failed to export" in caplog.text and "not a valid host" in caplog.text


def test_otel_sdk_disabled_turns_tracing_off(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not telemetry.tracing_configured()
    with telemetry.step("drift", model="m", day=DAY):
        pass
    assert telemetry._provider is None


@pytest.mark.slow
def test_a_nightly_run_emits_one_span_per_monitoring_step_with_its_rows(demo_world, spans):
    """Through the real nightly job: every asset of the day is a span of that model, day and run."""
    import dagster as dg
    import numpy as np

    from monitoring_pipelines.definitions import build_definitions
    from monitoring_pipelines.defs import names as n
    from monitoring_pipelines.demo import scenario

    w = demo_world
    preds, _ = scenario.simulate_day(
        w.plan, 1, w.plan.schedule.start_date, w.pool, w.model, w.version, np.random.default_rng([scenario.SEED, 1])
    )
    scenario.write_day(w.plan, preds, preds.iloc[0:0][[]].assign(request_id=[], label=[], labelled_at=[]))
    defs = build_definitions([w.plan])
    with dg.instance_for_test() as instance:
        assert (
            defs.resolve_job_def(n.scoped(w.plan.name, n.REFRESH_REFERENCE))
            .execute_in_process(instance=instance)
            .success
        )
        result = defs.resolve_job_def(n.scoped(w.plan.name, n.NIGHTLY_MONITORING)).execute_in_process(
            instance=instance, partition_key="2026-01-01"
        )
    assert result.success
    by_name = {
        s.name: s for s in spans.get_finished_spans() if s.attributes.get("monitoring.dagster_run_id") == result.run_id
    }
    assert set(by_name) == {
        f"monitoring.{f}"
        for f in ("quality", "drift", "performance", "fairness", "service", "comparison", "health", "incidents")
    }
    for span in by_name.values():
        assert span.attributes["monitoring.model"] == w.plan.name and span.attributes["monitoring.outcome"] == "ok"
        if span.name != "monitoring.incidents":  # unpartitioned: no day
            assert span.attributes["monitoring.day"] == "2026-01-01"
    assert by_name["monitoring.quality"].attributes["monitoring.rows"] == len(preds)
    drift_meta = result.asset_materializations_for_node(f"{w.plan.name}__{n.DRIFT_REPORT}")[0].metadata
    assert by_name["monitoring.drift"].attributes["monitoring.rows"] == drift_meta["evaluated_rows"].value > 0
    assert by_name["monitoring.quality"].attributes["monitoring.model_version"] == w.version
