"""Cost of the telemetry wrapper around a monitoring step, against the anchor of a bare call in the same run.

    .venv/bin/python benchmarks/telemetry_overhead.py [--calls 20000]

Rows: a bare function call (anchor); ``telemetry.step`` with no OTLP endpoint configured (the default: log
tagging only); ``telemetry.step`` exporting to the SDK's in-memory exporter (the cost of building a span,
without the network). The last column sets the per-step cost against the cheapest real step of a model-day
(service health at 100k rows, about 0.03 s in docs/performance.md): a model-day runs ~6 steps.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from monitoring_pipelines.ops import telemetry

DAY = dt.date(2026, 1, 1)
CHEAPEST_STEP_S = 0.03


def work() -> int:
    return sum(range(10))


def bare() -> None:
    work()


def wrapped() -> None:
    with telemetry.step("drift", model="m", day=DAY, run_id="r", model_version="1") as s:
        work()
        s.set(rows=10)


def per_call(fn, calls: int, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    telemetry.reset_tracing()
    anchor = per_call(bare, args.calls)
    off = per_call(wrapped, args.calls)
    exporter = InMemorySpanExporter()
    telemetry.use_span_processor(SimpleSpanProcessor(exporter))
    on = per_call(lambda: (wrapped(), exporter.clear()), args.calls // 4)
    telemetry.reset_tracing()
    print(f"| step | per call | overhead vs anchor | share of a {CHEAPEST_STEP_S * 1000:.0f} ms step |")
    print("|---|---|---|---|")
    print(f"| anchor: bare call | {anchor * 1e6:.2f} us | - | - |")
    for name, t in (
        ("telemetry.step, no OTLP endpoint (default)", off),
        ("telemetry.step, span to in-memory exporter", on),
    ):
        over = t - anchor
        print(f"| {name} | {t * 1e6:.2f} us | +{over * 1e6:.2f} us | {over / CHEAPEST_STEP_S:.5%} |")


if __name__ == "__main__":
    main()
