"""`monitoring-pipelines demo`: 30 days of the adult_income model, monitored the way production runs it.

For every simulated day the serving system files the day's predictions and the labels that arrived that day;
the nightly schedule's tick is evaluated and its run executed; then every sensor of the model is evaluated
against the same Dagster instance and the runs it requests are launched, as the daemon would (run keys
deduplicated). The demo ends with a per-day table read back from the metric store.

Locations (README, docs/demo-scenario.md): everything lives under $MONITORING_HOME (default ./.monitoring) unless
DAGSTER_HOME, MONITORING_STORE_URL, MLFLOW_TRACKING_URI or MONITORING_REPORTS_URL point elsewhere. Each
run starts from a clean demo state: the demo's own folders are recreated, and in external stores only the
demo model's rows, runs and registered model are removed (the registered model only if the demo created it).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from monitoring_pipelines import settings
from monitoring_pipelines.actions.registry import CHALLENGER, Registry
from monitoring_pipelines.definitions import build_definitions
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.demo import load_adult, scenario
from monitoring_pipelines.demo.alert_receiver import CHANNEL, KEY_ENV, URL_ENV, AlertReceiver
from monitoring_pipelines.errors import MonitoringError
from monitoring_pipelines.incidents import tracker as incidents
from monitoring_pipelines.judge.health import figure, worst_fairness_gap
from monitoring_pipelines.notify import outbox
from monitoring_pipelines.plan.schema import AlertChannel, MonitoringPlan, plans_dir
from monitoring_pipelines.store.metric_store import MetricStore
from monitoring_pipelines.validation import load_plans

DEMO_MODEL = "adult_income"
DEMO_TAG = "monitoring.demo"


@dataclass
class DemoResult:
    table: pd.DataFrame
    failed_runs: dict[str, str] = field(default_factory=dict)  # day -> why the nightly run failed
    launched: list[str] = field(default_factory=list)  # "day: job (sensor)"
    seconds: float = 0.0
    notifications: list[dict] = field(default_factory=list)  # what the local on-call webhook received
    refused_notifications: int = 0  # requests whose signature did not verify


ALERTS_FILE = "demo-alerts.jsonl"


def _demo_plan(plans: list[MonitoringPlan]) -> MonitoringPlan:
    for p in plans:
        if p.name == DEMO_MODEL:
            return p
    raise MonitoringError(
        f"the demo drives model {DEMO_MODEL!r}, but no plan in {plans_dir()} names it; "
        "copy monitoring_pipelines/plans/adult_income.yaml there"
    )


def _reset(plan: MonitoringPlan, home: Path, say) -> None:
    """Start from a clean demo state; never touch what the demo did not create."""
    for sub in ("demo-data", "reports"):
        shutil.rmtree(home / sub, ignore_errors=True)
    (home / ALERTS_FILE).unlink(missing_ok=True)
    if not os.environ.get(settings.STORE_URL_ENV):
        (home / "metrics.db").unlink(missing_ok=True)
    else:
        store = MetricStore()
        store.migrate()
        store.delete_model(plan.name)
        incidents.delete_model(store, plan.name)
        outbox.delete_model(store, plan.name)
    if not os.environ.get(settings.MLFLOW_URI_ENV):
        (home / "mlflow.db").unlink(missing_ok=True)
        shutil.rmtree(home / "mlartifacts", ignore_errors=True)
    else:
        _drop_demo_model(plan.name)
    if not os.environ.get("DAGSTER_HOME"):
        shutil.rmtree(home / "dagster_home", ignore_errors=True)
    say(f"clean demo state under {home}")


def _drop_demo_model(model: str) -> None:
    registry = Registry(settings.mlflow_tracking_uri())
    tags = registry.model_tags(model)
    if tags is None:
        return
    if tags.get(DEMO_TAG) != "true":
        raise MonitoringError(
            f"registered model {model!r} in {settings.masked(settings.mlflow_tracking_uri())} was not "
            "created by the "
            "demo; refusing to delete it. Point MLFLOW_TRACKING_URI elsewhere or unset it."
        )
    registry.delete_model(model)


def _instance():
    if not os.environ.get("DAGSTER_HOME"):
        home = settings.monitoring_home() / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def _wipe_dagster(instance, plan: MonitoringPlan) -> None:
    """In an external DAGSTER_HOME, remove only the demo model's runs and asset history."""
    for run in instance.get_runs(dg.RunsFilter(tags={n.TAG_MODEL: plan.name})):
        instance.delete_run(run.run_id)
    keys = [k for k in instance.get_asset_keys() if k.path and k.path[0] == plan.name]
    if keys:
        instance.wipe_assets(keys)


class _Daemon:
    """What dagster-daemon does for one model: evaluate the schedule and sensors, launch their run requests."""

    def __init__(self, defs, instance, plan: MonitoringPlan, say):
        self.defs, self.instance, self.plan, self.say = defs, instance, plan, say
        self.sensors = [s for s in defs.sensors if s.name.startswith(f"{plan.name}__")]
        self.cursors: dict[str, str | None] = {}

    def launch(
        self,
        job_name: str,
        *,
        partition_key=None,
        run_config=None,
        tags=None,
        asset_selection=None,
        run_key=None,
        origin: str = "",
    ):
        if run_key and self.instance.get_runs(dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1):
            return None  # the daemon launches a run key once
        job = self.defs.resolve_job_def(job_name)
        all_tags = dict(tags or {})
        if run_key:
            all_tags["dagster/run_key"] = run_key
        if origin:
            all_tags["dagster/sensor_name"] = origin
        # the run's own event log keeps every event; the demo reports failures itself, one line each
        run_config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        return job.execute_in_process(
            instance=self.instance,
            partition_key=partition_key,
            run_config=run_config,
            tags=all_tags,
            asset_selection=asset_selection,
            raise_on_error=False,
        )

    def nightly(self, day: dt.date):
        """The schedule's tick at the plan's time on the day after ``day``: it requests partition ``day``."""
        schedule = self.defs.resolve_schedule_def(n.scoped(self.plan.name, n.NIGHTLY_SCHEDULE))
        tick = dt.datetime.combine(
            day + dt.timedelta(days=1), dt.time(self.plan.schedule.hour, self.plan.schedule.minute), tzinfo=dt.UTC
        )
        data = schedule.evaluate_tick(dg.build_schedule_context(instance=self.instance, scheduled_execution_time=tick))
        (request,) = data.run_requests
        if request.partition_key != day.isoformat():
            raise MonitoringError(f"schedule tick {tick} requested {request.partition_key}, expected {day}")
        return self.launch(
            n.scoped(self.plan.name, n.NIGHTLY_MONITORING),
            partition_key=request.partition_key,
            tags={**request.tags, n.TAG_MODEL: self.plan.name},
        )

    def sensors_tick(self) -> list[tuple[str, str, object]]:
        """Evaluate every sensor once (in declaration order) and launch what it asks for."""
        launched = []
        for sensor in self.sensors:
            ctx = dg.build_sensor_context(
                instance=self.instance,
                cursor=self.cursors.get(sensor.name),
                definitions=self.defs,
                sensor_name=sensor.name,
                resources=self.defs.resources,
            )
            data = sensor.evaluate_tick(ctx)
            self.cursors[sensor.name] = data.cursor
            for rr in data.run_requests or []:
                job_name = rr.job_name or sensor.job_name
                result = self.launch(
                    job_name,
                    partition_key=rr.partition_key,
                    run_config=rr.run_config,
                    tags=rr.tags,
                    asset_selection=rr.asset_selection,
                    run_key=rr.run_key,
                    origin=sensor.name,
                )
                if result is not None:
                    launched.append(
                        (sensor.name, job_name + (f"[{rr.partition_key}]" if rr.partition_key else ""), result)
                    )
        return launched


def run_demo(days: int = 30, say=print) -> DemoResult:
    """Run the scenario for ``days`` days (1..30) and return the per-day table and the notifications sent."""
    started = time.perf_counter()
    if not 1 <= days <= scenario.DAYS:
        raise MonitoringError(f"--days must be within 1..{scenario.DAYS}, got {days}")
    plans = load_plans()
    plan = _demo_plan(plans)
    home = settings.monitoring_home()
    _reset(plan, home, say)
    receiver = AlertReceiver(home / ALERTS_FILE)
    saved_env = {k: os.environ.get(k) for k in (URL_ENV, KEY_ENV)}
    with receiver:
        os.environ[URL_ENV], os.environ[KEY_ENV] = receiver.url, receiver.key
        try:
            # the demo's on-call channel: a signed webhook to the local receiver (the bundled plan has none)
            channels = [*plan.alerts.channels, AlertChannel.model_validate(CHANNEL)]
            plan = plan.model_copy(update={"alerts": plan.alerts.model_copy(update={"channels": channels})})
            plans = [plan if p.name == plan.name else p for p in plans]
            result = _run_days(plans, plan, home, days, say, started)
        finally:
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    result.notifications = list(receiver.received)
    result.refused_notifications = receiver.refused
    return result


def _run_days(
    plans: list[MonitoringPlan], plan: MonitoringPlan, home: Path, days: int, say, started: float
) -> DemoResult:
    instance = _instance()
    _wipe_dagster(instance, plan)
    store = MetricStore()
    store.migrate()

    say("training the champion on UCI Adult and registering it in MLflow ...")
    train, reference, pool = scenario.split(load_adult())
    version = scenario.register_champion(
        plan, train, reference, settings.mlflow_tracking_uri(), settings.mlflow_artifact_root()
    )
    registry = Registry(settings.mlflow_tracking_uri())
    registry.client.set_registered_model_tag(plan.name, DEMO_TAG, "true")
    model = registry.load_model(registry.require(plan.name, "champion"))
    say(f"  {plan.name} version {version} is champion (MLflow: {settings.masked(settings.mlflow_tracking_uri())})")

    defs = build_definitions(plans)
    daemon = _Daemon(defs, instance, plan, say)
    result = DemoResult(table=pd.DataFrame())
    for sensor, job, _ in daemon.sensors_tick():  # the reference profile of the first champion
        say(f"  {sensor} -> {job}")

    labelled_at = plan.data.labels.labelled_at
    pending = pd.DataFrame()
    actions_before = 0
    day_actions: dict[str, list[str]] = {}
    for day_index, day in scenario.scenario_days(plan, days):
        served_by = registry.require(plan.name, "champion")
        if served_by.version != version:
            version, model = served_by.version, registry.load_model(served_by)
        preds, labels = scenario.simulate_day(
            plan, day_index, day, pool, model, version, np.random.default_rng([scenario.SEED, day_index])
        )
        pending = pd.concat([pending, labels], ignore_index=True)
        end_of_day = pd.Timestamp(day + dt.timedelta(days=1), tz="UTC")
        arrived, pending = pending[pending[labelled_at] < end_of_day], pending[pending[labelled_at] >= end_of_day]
        scenario.write_day(plan, preds, arrived)

        run = daemon.nightly(day)
        status = "ok" if run.success else "FAILED"
        if not run.success:
            result.failed_runs[day.isoformat()] = _failure(run)
        launched = daemon.sensors_tick()
        if day_index == scenario.HAND_PROMOTION_DAY:
            launched += _promote_by_hand(daemon, plan, store, registry, day)
        for sensor, job, res in launched:
            result.launched.append(f"{day}: {job} ({sensor}){'' if res.success else ' FAILED'}")
        acts = store.actions(plan.name)
        day_actions[day.isoformat()] = [_action_label(a) for a in acts.iloc[actions_before:].itertuples()]
        actions_before = len(acts)
        say(
            f"day {day_index:2d} {day}: {len(preds):5d} predictions, {len(arrived):5d} labels arrived, nightly run "
            f"{status}; sensors launched {len(launched)} run(s)" + "".join(f"\n    {s} -> {j}" for s, j, _ in launched)
        )

    result.table = day_table(plan, store, days, day_actions)
    result.seconds = time.perf_counter() - started
    return result


def _promote_by_hand(daemon: _Daemon, plan: MonitoringPlan, store, registry, day: dt.date) -> list:
    """The scenario's person: register a hand-trained version, point ``challenger`` at it and launch
    promote_challenger from the UI (no sensor: the audit trail says ``user``); then the daemon's next tick."""
    version = scenario.register_hand_trained(
        plan, store, day, settings.mlflow_tracking_uri(), settings.mlflow_artifact_root()
    )
    registry.set_alias(plan.name, CHALLENGER, version)
    run = daemon.launch(
        n.scoped(plan.name, n.PROMOTE_CHALLENGER),
        tags={n.TAG_MODEL: plan.name},
        run_config={
            "ops": {
                f"{plan.name}__promote": {
                    "config": {"reason": f"by hand: {scenario.HAND_PROMOTION}", "day": day.isoformat()}
                }
            }
        },
    )
    return [(f"by hand, version {version}", n.scoped(plan.name, n.PROMOTE_CHALLENGER), run), *daemon.sensors_tick()]


def _action_label(a) -> str:
    """'retrain v2', 'promote v3 (by hand)', 'rollback v2', with the status unless it succeeded."""
    target = f" v{a.to_version}" if isinstance(a.to_version, str) and a.to_version else ""
    by_hand = " (by hand)" if a.actor == "user" else ""
    return f"{a.action}{target}{by_hand}" + ("" if a.status == "succeeded" else f": {a.status}")


def _failure(run) -> str:
    for event in run.all_events:
        if event.event_type_value == "STEP_FAILURE":
            message = " ".join(line.strip() for line in event.event_specific_data.error.message.strip().splitlines())
            return f"{event.step_key}: {message}"
    return "run failed"


def day_table(plan: MonitoringPlan, store, days: int, day_actions: dict[str, list[str]]) -> pd.DataFrame:
    """The per-day summary, read back from the metric store (what a dashboard would show)."""
    rows = store.rows(plan.name)
    changes = incident_changes(store, plan.name)
    out = []
    for _, day in scenario.scenario_days(plan, days):
        r = rows[rows["partition_date"] == day]

        def value(family, metric, segment="", r=r):
            return figure(r, family, metric, segment)

        realised, estimated = value("performance", "roc_auc"), value("performance_estimated", "roc_auc")
        shifted = r[(r["family"] == "drift") & (r["metric"] == "protected_drifted") & (r["value"] == 1.0)]["segment"]
        breached = r[r["status"].isin(["warning", "critical"])]
        out.append(
            {
                "day": day.isoformat(),
                "rows": value("quality", "row_count"),
                "failed_checks": value("quality", "failed_checks"),
                "drifted_share": value("drift", "share_of_drifted_features"),
                "auc": realised if realised is not None else estimated,
                "auc_estimated": realised is None and estimated is not None,
                "realised_auc": realised,
                "estimated_auc": estimated,
                "label_coverage": value("performance", "label_coverage"),
                "worst_fairness_gap": worst_fairness_gap(r),
                "p99_latency_ms": value("service", "latency_p99_ms"),
                "protected_shift": ",".join(sorted(shifted)),
                "breaches": len(breached.groupby(["family", "metric"])),
                "incidents": " ".join(changes.get(day, [])),
                "actions": ", ".join(day_actions.get(day.isoformat(), [])),
            }
        )
    return pd.DataFrame(out)


_MARK = {"opened": "+", "escalated": "^", "resolved": "-"}


def incident_changes(store, model: str) -> dict[dt.date, list[str]]:
    """Per day of data: the incidents opened (+), escalated (^) and resolved (-) there, e.g. ``+roc_auc:critical``."""
    out: dict[dt.date, list[str]] = {}
    for inc in incidents.incidents(store, model).itertuples():
        for ev in incidents.timeline(store, inc.id).itertuples():
            if ev.kind in _MARK and ev.day is not None:
                label = f"{_MARK[ev.kind]}{inc.metric}" + (f":{ev.severity}" if ev.kind != "resolved" else "")
                out.setdefault(ev.day, []).append(label)
    return out


def format_table(table: pd.DataFrame) -> str:
    def fmt(v, digits):
        return "-" if v is None or (isinstance(v, float) and pd.isna(v)) else f"{v:.{digits}f}"

    header = (
        f"{'day':10} {'rows':>5} {'failed':>6} {'drift':>5} {'AUC':>6} {'cover':>5} {'fair gap':>8} "
        f"{'group shift':>11} {'p99 ms':>7} {'breach':>6}  incidents / actions"
    )
    lines = [header, "-" * len(header)]
    for r in table.itertuples():
        auc = fmt(r.auc, 3) + ("*" if r.auc_estimated else " ")
        lines.append(
            f"{r.day:10} {fmt(r.rows, 0):>5} {fmt(r.failed_checks, 0):>6} {fmt(r.drifted_share, 2):>5} "
            f"{auc:>6} {fmt(r.label_coverage, 2):>5} {fmt(r.worst_fairness_gap, 3):>8} "
            f"{r.protected_shift or '-':>11} {fmt(r.p99_latency_ms, 0):>7} {r.breaches:>6}  "
            + "  ".join(x for x in (r.incidents, r.actions and f"[{r.actions}]") if x)
        )
    lines.append(
        "AUC: realised once labels landed; * = estimated from scores (labels not landed yet). "
        "group shift: protected attributes whose distribution drifted. breach: metrics beyond a threshold; "
        "incidents: +opened ^escalated -resolved (on the day of the data); [actions]."
    )
    return "\n".join(lines)
