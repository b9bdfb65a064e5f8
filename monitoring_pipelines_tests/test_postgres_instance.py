"""The production instance config (dagster.yaml) on the real PostgreSQL, and the real daemon launching a run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from monitoring_pipelines.definitions import build_definitions
from monitoring_pipelines.defs import names as n

ROOT = Path(__file__).resolve().parents[1]
M = "adult_income"

pytestmark = pytest.mark.slow  # a Dagster instance on PostgreSQL, a real daemon


def _pg_env(db_name: str, pg_url: str) -> dict[str, str]:
    url = sa.engine.make_url(pg_url)
    return {
        "DAGSTER_PG_HOST": url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USER": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": db_name,
    }


def _dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_shipped_dagster_yaml_runs_a_partition_on_postgresql(
    demo_world, pg_database, pg_url, tmp_path, monkeypatch
):
    db_name, db_url = pg_database
    for k, v in _pg_env(db_name, pg_url).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DAGSTER_HOME", str(_dagster_home(tmp_path)))
    demo_world.write_days(2)
    defs = build_definitions([demo_world.plan])
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert defs.resolve_job_def(n.scoped(M, n.REFRESH_REFERENCE)).execute_in_process(instance=instance).success
        run = defs.resolve_job_def(n.scoped(M, n.NIGHTLY_MONITORING)).execute_in_process(
            instance=instance, partition_key="2026-01-02"
        )
        assert run.success
        assert instance.get_materialized_partitions(dg.AssetKey([M, n.MODEL_HEALTH])) == {"2026-01-02"}
    assert {"runs", "event_logs", "asset_keys", "jobs"} <= _tables(db_url)
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM runs WHERE run_id = :r"), {"r": run.run_id}).scalar()
    engine.dispose()
    assert stored == 1


def test_the_real_daemon_ticks_a_sensor_that_launches_a_run(demo_world, pg_database, pg_url, tmp_path, monkeypatch):
    """dagster-daemon (started and stopped by its process id) evaluates the champion_changed sensor, which
    is on by default, and the queued run it requests computes the reference profile."""
    db_name, _ = pg_database
    for k, v in _pg_env(db_name, pg_url).items():
        monkeypatch.setenv(k, v)
    dagster_home = _dagster_home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    log = tmp_path / "daemon.log"
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    sensor = n.scoped(M, n.REFERENCE_SENSOR)
    try:
        with dg.DagsterInstance.get() as instance:
            deadline, runs = time.monotonic() + 240, []
            while time.monotonic() < deadline:
                runs = instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": sensor}))
                if runs and runs[0].status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE):
                    break
                assert daemon.poll() is None, log.read_text()[-3000:]
                time.sleep(2)
            assert runs, f"no run launched by {sensor}:\n" + log.read_text()[-3000:]
            assert runs[0].job_name == n.scoped(M, n.REFRESH_REFERENCE)
            assert runs[0].status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
            assert instance.fetch_materializations(dg.AssetKey([M, n.REFERENCE_PROFILE]), limit=1).records
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
