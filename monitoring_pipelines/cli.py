"""The `monitoring-pipelines` command.

monitoring-pipelines plan validate PATH...   explain every mistake in one or more plans (files or folders)
monitoring-pipelines demo [--days N]         run the UCI Adult scenario end to end and print the day table
monitoring-pipelines metrics serve [--host H] [--port P]   serve the metric store to Prometheus (/metrics)
monitoring-pipelines metrics textfile PATH   write the same exposition to a file (node_exporter textfile)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import warnings
from pathlib import Path

from prometheus_client import start_http_server, write_to_textfile

from monitoring_pipelines import settings
from monitoring_pipelines.errors import MonitoringError, PlanError
from monitoring_pipelines.families.quality.calculator import expectation_problems
from monitoring_pipelines.ops import exporter
from monitoring_pipelines.plan.schema import already_monitored, plan_files
from monitoring_pipelines.store.metric_store import MetricStore
from monitoring_pipelines.validation import load_plan


def _validate(paths: list[str]) -> int:
    unique: dict[Path, Path] = {}  # a file named twice (itself and its folder) is read once
    for raw in paths:
        p = Path(raw)
        for f in plan_files(p) if p.is_dir() else [p]:
            unique.setdefault(f.resolve(), f)
    files = list(unique.values())
    if not files:
        print(f"no plan files found in {', '.join(paths)}", file=sys.stderr)
        return 2
    problems = 0
    names: dict[str, Path] = {}
    for f in files:
        try:
            plan = load_plan(f)
        except PlanError as exc:
            problems += len(exc.problems)
            for file, field, message in exc.problems:
                print(f"{file}: {field or '<plan>'}: {message}", file=sys.stderr)
            continue
        if plan.quality.expectations or plan.quality.overrides:
            # GX's own verdict on the plan's expectations (imports Great Expectations: only for such plans)
            gx_problems = expectation_problems(plan)
            if gx_problems:
                problems += len(gx_problems)
                for field, message in gx_problems:
                    print(f"{f}: {field}: {message}", file=sys.stderr)
                continue
        if plan.name in names:  # as load_plans refuses it: two plans would build the same Dagster assets
            problems += 1
            print(f"{f}: model.name: {already_monitored(plan.name, names[plan.name])}", file=sys.stderr)
            continue
        names[plan.name] = f
        print(
            f"{f}: ok (model {plan.name}: {len(plan.features.model_inputs)} features, "
            f"{len(plan.thresholds)} thresholds)"
        )
    if problems:
        print(f"{problems} problem(s) in {len(files)} file(s)", file=sys.stderr)
        return 1
    return 0


def _demo(days: int) -> int:
    warnings.filterwarnings("ignore")  # third-party deprecation chatter; our own errors still raise
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("dagster").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # The one function-level import of our own code: the demo loads the whole Dagster graph (dagster, scipy,
    # every family: about 3 s), which `plan validate` and `metrics` must not pay on every call.
    from monitoring_pipelines.demo.runner import format_table, run_demo

    result = run_demo(days=days)
    print()
    print(format_table(result.table))
    print()
    for day, why in result.failed_runs.items():
        print(f"nightly run of {day} failed: {why}")
    home = settings.monitoring_home()
    print(
        f"\n{len(result.notifications)} notification(s) reached the demo's on-call webhook (signed, verified; "
        f"{result.refused_notifications} refused), one per incident state change:"
    )
    for payload in result.notifications:
        print(f"  {payload['summary']}")
    print(
        f"\ndone in {result.seconds:.0f} s. Where to look:\n"
        f"  metric store      {settings.masked(settings.store_url())}  (table metric_values, model_actions)\n"
        f"  MLflow registry   {settings.masked(settings.mlflow_tracking_uri())}\n"
        f"  drift reports     {settings.reports_url()}/adult_income/drift/<day>.html\n"
        f"  notifications     {home / 'demo-alerts.jsonl'}  (tables incidents, incident_events, notification_outbox)\n"
        f"  Dagster instance  DAGSTER_HOME={os.environ.get('DAGSTER_HOME')}\n"
        f"  demo data         {home / 'demo-data'}\n"
        f"  Dagster UI        python3.11 dev.py ui   (then http://127.0.0.1:3000)"
    )
    return 0


def _metrics(args) -> int:
    store = MetricStore()
    if args.metrics_command == "textfile":
        write_to_textfile(args.path, exporter.registry_for(store))  # written to a temp file, then renamed
        print(f"wrote {args.path} from {settings.masked(settings.store_url())}")
        return 0
    server, _thread = start_http_server(args.port, addr=args.host, registry=exporter.registry_for(store))
    print(
        f"serving the metric store {settings.masked(settings.store_url())} at "
        f"http://{args.host}:{server.server_port}/metrics (Ctrl-C to stop)",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="monitoring-pipelines", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="work with monitoring plans").add_subparsers(dest="plan_command", required=True)
    validate = plan.add_parser("validate", help="validate plan files or folders; exit 1 on any problem")
    validate.add_argument("paths", nargs="+")
    demo = sub.add_parser("demo", help="run the UCI Adult demo scenario")
    demo.add_argument("--days", type=int, default=30, help="how many of the 30 scenario days to run")
    metrics = sub.add_parser("metrics", help="expose the metric store to Prometheus").add_subparsers(
        dest="metrics_command", required=True
    )
    serve = metrics.add_parser("serve", help="serve /metrics over HTTP until stopped")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=9464, help="port (default 9464; 0 picks a free one)")
    textfile = metrics.add_parser("textfile", help="write the exposition to PATH atomically")
    textfile.add_argument("path")
    args = parser.parse_args(argv)
    try:
        if args.command == "plan":
            return _validate(args.paths)
        if args.command == "metrics":
            return _metrics(args)
        return _demo(args.days)
    except MonitoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
