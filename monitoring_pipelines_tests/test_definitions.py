"""The code location: graph shape, one group per plan, loud failure on a broken plan, schedule, docstrings."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from monitoring_pipelines.definitions import build_definitions
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.errors import PlanError
from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR, load_plans, read_yaml

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).parent / "dagster"


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return build_definitions(load_plans(BUNDLED_PLANS_DIR))


def _write_plan(folder: Path, name: str, **changes) -> Path:
    raw = read_yaml((BUNDLED_PLANS_DIR / "adult_income.yaml").read_text())
    raw["model"]["name"] = name
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_the_bundled_plan_gives_the_design_graph(defs):
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    deps = {
        k.to_user_string(): sorted(p.to_user_string() for p in graph.get(k).parent_keys)
        for k in graph.get_all_asset_keys()
    }
    m = "adult_income"
    assert deps == {
        f"{m}/prediction_log": [],
        f"{m}/labels": [],
        f"{m}/champion_model": [],
        f"{m}/reference_profile": [f"{m}/champion_model"],
        f"{m}/scoring_batch": [f"{m}/prediction_log", f"{m}/reference_profile"],
        f"{m}/drift_report": [f"{m}/reference_profile", f"{m}/scoring_batch"],
        f"{m}/performance": [f"{m}/labels", f"{m}/reference_profile", f"{m}/scoring_batch"],
        f"{m}/fairness": [f"{m}/labels", f"{m}/scoring_batch"],
        f"{m}/service_health": [f"{m}/scoring_batch"],
        f"{m}/challenger_comparison": [f"{m}/labels", f"{m}/scoring_batch"],
        f"{m}/model_health": sorted(
            f"{m}/{a}" for a in ("challenger_comparison", "drift_report", "fairness", "performance", "service_health")
        ),
        f"{m}/incidents": [f"{m}/model_health"],
    }
    checks = {spec.name: spec.blocking for spec in map(graph.get_check_spec, graph.asset_check_keys)}
    assert checks["occupation_not_null"] is True and checks["age_in_range"] is False
    assert {k.asset_key for k in graph.asset_check_keys} == {dg.AssetKey([m, "scoring_batch"])}
    assert {j.name for j in defs.jobs} == {
        n.scoped(m, j)
        for j in (n.NIGHTLY_MONITORING, n.REFRESH_REFERENCE, n.RETRAIN_MODEL, n.PROMOTE_CHALLENGER, n.ROLLBACK_CHAMPION)
    }
    assert {s.name for s in defs.sensors} == {
        n.scoped(m, s)
        for s in (n.LABELS_SENSOR, n.BREACH_SENSOR, n.PROMOTE_SENSOR, n.ROLLBACK_SENSOR, n.REFERENCE_SENSOR)
    }


def test_every_asset_check_job_sensor_and_schedule_explains_itself_in_the_ui(defs):
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert len(graph.get(key).description or "") > 40, key
    for ck in graph.asset_check_keys:
        assert len(graph.get_check_spec(ck).description or "") > 15, ck
    for job in defs.jobs:
        assert len(defs.resolve_job_def(job.name).description or "") > 40, job.name
    for s in [*defs.sensors, *defs.schedules]:
        assert len(s.description or "") > 40, s.name


def test_the_nightly_schedule_runs_by_default_and_requests_yesterday(defs):
    schedule = defs.resolve_schedule_def(n.scoped("adult_income", n.NIGHTLY_SCHEDULE))
    assert schedule.cron_schedule == "0 2 * * *" and schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    tick = dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC)
    data = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=tick))
    assert [r.partition_key for r in data.run_requests] == ["2026-03-09"]


def test_two_plans_give_two_independent_groups(tmp_path):
    _write_plan(tmp_path, "churn", **{"schedule.cron": "30 3 * * *"})
    _write_plan(tmp_path, "fraud")
    defs = build_definitions(load_plans(tmp_path))
    graph = defs.resolve_asset_graph()
    groups = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.path[0])
    assert groups == {"churn": {"churn"}, "fraud": {"fraud"}}
    for key in graph.get_all_asset_keys():  # no edge crosses models
        assert {p.path[0] for p in graph.get(key).parent_keys} <= {key.path[0]}
    assert defs.resolve_schedule_def("churn__nightly_schedule").cron_schedule == "30 3 * * *"
    assert len(defs.jobs) == 10 and len(defs.sensors) == 10


@pytest.mark.slow
def test_a_broken_plan_fails_the_code_location_load_naming_file_and_field(tmp_path):
    _write_plan(tmp_path, "good")
    bad = _write_plan(
        tmp_path, "bad", **{"thresholds": {"drift.share_of_drifted_features": {"warning": 0.5, "critical": 0.4}}}
    )
    with pytest.raises(PlanError) as err:
        load_plans(tmp_path)
    assert f"{bad}: thresholds.drift.share_of_drifted_features: warning 0.5 is beyond critical 0.4" in str(err.value)
    # and through Dagster's own loader, as the webserver/daemon would load the location
    env = {**os.environ, "MONITORING_PLANS_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "bad.yaml: thresholds.drift.share_of_drifted_features" in proc.stdout + proc.stderr


_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import dagster as dg
from monitoring_pipelines.definitions import defs
d = defs()
dg.Definitions.validate_loadable(d)
loaded = time.perf_counter() - t0
heavy = ("evidently", "great_expectations", "mlflow", "sklearn", "fairlearn")
after_load = sorted(m for m in heavy if m in sys.modules)
with dg.instance_for_test() as instance:
    outcomes = {}
    for s in d.sensors:
        ctx = dg.build_sensor_context(instance=instance, definitions=d, resources=d.resources, sensor_name=s.name)
        data = s.evaluate_tick(ctx)
        outcomes[s.name] = data.skip_message or len(data.run_requests)
print(json.dumps({"after_load": after_load, "after_ticks": sorted(m for m in heavy if m in sys.modules),
                  "outcomes": outcomes}))
"""


@pytest.mark.slow
def test_loading_the_location_and_ticking_every_sensor_never_imports_evidently_or_gx(home, demo_world):
    """A fresh interpreter, as a code server or daemon tick would be: heavy libraries stay out."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["after_load"] == []
    assert "evidently" not in out["after_ticks"] and "great_expectations" not in out["after_ticks"]
    # the sensors really ran against the registry: the champion has no reference profile yet
    assert out["outcomes"][n.scoped("adult_income", n.REFERENCE_SENSOR)] == 1
