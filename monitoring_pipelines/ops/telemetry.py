"""Traces and tagged logs of the monitoring steps.

**Traces.** Each monitoring step (quality, drift, performance, ... of one model and day) runs inside
``step(...)``, which emits an OpenTelemetry span named ``monitoring.<family>`` with the attributes
``monitoring.model``, ``monitoring.model_version``, ``monitoring.day``, ``monitoring.family``,
``monitoring.rows`` and ``monitoring.outcome`` (ok / error), when an OTLP endpoint is configured through the
standard variables (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; headers, timeout
and protocol details as the OTLP exporter reads them; ``OTEL_SERVICE_NAME`` defaults to monitoring_pipelines;
``OTEL_SDK_DISABLED=true`` turns it off). Without an endpoint nothing is set up and ``step`` only tags logs.

Spans go through our own TracerProvider (not the global one, which MLflow's tracing may own) and a batch
processor: export happens in a background thread, and an unreachable or misconfigured endpoint is logged by
the SDK and never fails a monitoring run.

**Logs.** Every record of the ``monitoring_pipelines`` loggers carries ``model``, ``day``, ``run_id`` (the
Dagster run) and ``family`` from the innermost ``step`` / ``log_context``; ``configure_logging()`` writes
them as one JSON object per line (``MONITORING_LOG_FORMAT=text`` for plain lines), so logs of many models
can be searched by field.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from monitoring_pipelines.errors import BlockedDayError

LOGGER_NAME = "monitoring_pipelines"
CONTEXT_FIELDS = ("model", "model_version", "day", "run_id", "family")

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "monitoring_log_context",
    default={},  # noqa: B039 - never mutated: log_context sets a new dict
)
_lock = threading.Lock()
_tracer = None  # an opentelemetry Tracer once configured; False when tracing is off
_provider = None


# -- logs -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Tag every project log record inside the block with ``fields`` (nested blocks add to the outer ones)."""
    token = _context.set({**_context.get(), **{k: _plain(v) for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the active log context onto each record (as attributes), keeping values set explicitly."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, and any ``extra=`` fields."""

    _standard = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            if hasattr(record, key):
                out[key] = getattr(record, key)
        for key, value in vars(record).items():
            if key not in self._standard and key not in out and not key.startswith("_"):
                out[key] = _plain(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        tags = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if hasattr(record, k))
        return f"{super().format(record)}{' [' + tags + ']' if tags else ''}"


def configure_logging(stream=None, *, fmt: str | None = None) -> logging.Handler:
    """Attach one handler to the ``monitoring_pipelines`` logger (idempotent: a second call replaces it)."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in [h for h in logger.handlers if getattr(h, "_monitoring_handler", False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._monitoring_handler = True  # type: ignore[attr-defined]
    kind = (fmt or os.environ.get("MONITORING_LOG_FORMAT") or "json").lower()
    handler.setFormatter(
        JsonFormatter() if kind == "json" else _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(ContextFilter())
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return handler


def get_logger(name: str) -> logging.Logger:
    """A project logger whose records carry the log context (also when another handler formats them)."""
    logger = logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")
    if not any(isinstance(f, ContextFilter) for f in logger.filters):
        logger.addFilter(ContextFilter())
    return logger


# -- traces ---------------------------------------------------------------------------------------------


def tracing_configured() -> bool:
    """Whether the OTEL_* environment asks for trace export."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def _get_tracer():
    global _tracer
    if _tracer is None:
        with _lock:
            if _tracer is None:
                _tracer = _otlp_tracer() if tracing_configured() else False
    return _tracer


def _otlp_tracer():
    # A malformed endpoint or setting is not raised here: the exporter logs it and each export fails in the
    # background thread with an error log (tested), so the monitoring run goes on.
    return _install(BatchSpanProcessor(OTLPSpanExporter()))


def _install(processor):
    global _provider
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "monitoring_pipelines"})
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(processor)
    return _provider.get_tracer(LOGGER_NAME)


def use_span_processor(processor) -> None:
    """Send spans to ``processor`` (tests: a SimpleSpanProcessor over an InMemorySpanExporter)."""
    global _tracer
    with _lock:
        _tracer = _install(processor)


def reset_tracing() -> None:
    """Forget the configuration; the next step reads the OTEL_* environment again."""
    global _tracer, _provider
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        _tracer, _provider = None, None


def flush(timeout_millis: int = 5000) -> bool:
    """Export buffered spans now (e.g. before a short-lived process exits); False when it did not finish."""
    return _provider.force_flush(timeout_millis) if _provider is not None else True


@dataclass
class Step:
    """Handle of a running step: record the row count (and other attributes) as they become known."""

    attributes: dict[str, Any] = field(default_factory=dict)
    _span: Any = None

    def set(self, **attributes: Any) -> None:
        for key, value in attributes.items():
            self.attributes[key] = value
            if self._span is not None and value is not None:
                self._span.set_attribute(f"monitoring.{key}", _plain(value))


@contextlib.contextmanager
def step(
    family: str,
    *,
    model: str,
    day: dt.date | str | None = None,
    run_id: str | None = None,
    model_version: str | None = None,
    **attributes: Any,
) -> Iterator[Step]:
    """One monitoring step: tags logs with model/day/run/family and, when configured, emits a span.

    The span's ``monitoring.outcome`` is ``ok``, ``blocked`` (blocking quality checks stopped the step) or
    ``error`` (the exception is recorded on the span and re-raised unchanged).
    """
    base = {"model": model, "model_version": model_version, "day": day, "run_id": run_id, "family": family}
    with log_context(**base):
        tracer = _get_tracer()
        if not tracer:
            yield Step({**attributes})
            return
        with tracer.start_as_current_span(
            f"monitoring.{family}", record_exception=False, set_status_on_exception=False
        ) as span:
            handle = Step({}, span)
            handle.set(**{k: v for k, v in base.items() if k != "run_id"}, dagster_run_id=run_id, **attributes)
            try:
                yield handle
            except BaseException as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                span.set_attribute("monitoring.outcome", "blocked" if isinstance(exc, BlockedDayError) else "error")
                raise
            span.set_attribute("monitoring.outcome", "ok")


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    return str(value)
