"""Outside dependencies failing (issue 14, items 6 and 7): MLflow unreachable or silent, a registered model that
does not exist, a reference profile never built, a metric store refusing connections. Each fails within a
bounded time, through a real Dagster run where the nightly job is concerned, with a message naming the model,
the day and the cause, and with no password anywhere: not in the message, its chained exceptions, or the files
of the Dagster instance."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import dagster as dg
import pytest

from monitoring_pipelines.actions.registry import MLFLOW_HTTP_DEFAULTS, Registry
from monitoring_pipelines.definitions import build_definitions
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.errors import RegistryError
from monitoring_pipelines_tests.local_servers import closed_port

M = "adult_income"
DAY = "2026-01-02"
SECRET = "Sup3rSECRETpw"


@pytest.fixture
def mlflow_env(monkeypatch):
    """None of MLflow's HTTP variables set, as on a fresh deployment (restored afterwards)."""
    for name in MLFLOW_HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception chained to it (``__cause__`` and ``__context__``, recursively)."""
    seen, todo = [], [exc]
    while todo:
        e = todo.pop()
        if e is not None and all(e is not s for s in seen):
            seen.append(e)
            todo += [e.__cause__, e.__context__]
    return seen


def error_texts(info) -> list[str]:
    """The message and stack of a Dagster SerializableErrorInfo and of every error chained to it."""
    out, todo = [], [info]
    while todo:
        e = todo.pop()
        if e is not None:
            out += [e.message, *e.stack]
            todo += [e.cause, e.context]
    return out


def files_holding(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def nightly(defs: dg.Definitions, instance: dg.DagsterInstance):
    return defs.resolve_job_def(n.scoped(M, n.NIGHTLY_MONITORING)).execute_in_process(
        instance=instance, partition_key=DAY, raise_on_error=False
    )


def failure_of(result) -> str:
    [failure] = result.get_step_failure_events()
    return failure.event_specific_data.error.to_string()


# --------------------------------------------------------------------------------------------------------
# MLflow: bounded retries and timeout, set only where the user set nothing


def test_an_unreachable_registry_fails_within_seconds_naming_it_with_the_password_masked(mlflow_env):
    uri = f"http://mlops:{SECRET}@127.0.0.1:{closed_port()}"
    registry = Registry(uri)
    assert {name: os.environ[name] for name in MLFLOW_HTTP_DEFAULTS} == MLFLOW_HTTP_DEFAULTS
    start = time.monotonic()
    with pytest.raises(RegistryError) as err:
        registry.aliases(M)
    elapsed = time.monotonic() - start
    assert elapsed < 30  # MLflow's defaults (7 retries, backoff factor 2): about 4 minutes
    message = str(err.value)
    assert message.startswith(f"model {M}: reading its aliases: MLflow registry at http://mlops:***@127.0.0.1:")
    assert "Connection refused" in message  # the cause is kept, masked
    everything = chain(err.value)
    assert [type(e) for e in everything] == [RegistryError]  # MLflow's exception quotes the URL: not chained
    assert not [e for e in everything if SECRET in str(e) or SECRET in repr(e.args)]


@pytest.mark.slow
def test_a_silent_registry_is_cut_off_by_the_timeout_a_user_set_and_retried_a_bounded_number_of_times(
    mlflow_env, monkeypatch
):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")  # the user's value wins over the bound (10 s)
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        registry = Registry(f"http://mlops:{SECRET}@127.0.0.1:{silent.getsockname()[1]}")
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "2"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == MLFLOW_HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        start = time.monotonic()
        with pytest.raises(RegistryError) as err:
            registry.version(M, "1")
        elapsed = time.monotonic() - start
    # 3 attempts of 2 s each, 0 s and 2-3 s apart (backoff factor 1, jitter up to 1 s)
    assert 6 <= elapsed < 15
    assert "Read timed out" in str(err.value) and SECRET not in str(err.value)
    assert f"model {M} version 1: reading the version: MLflow registry at http://mlops:***@" in str(err.value)


@pytest.mark.slow
def test_a_nightly_run_with_mlflow_down_fails_within_30_seconds_and_leaves_no_password_in_dagster(
    plan, home, mlflow_env, monkeypatch, tmp_path
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://mlops:{SECRET}@127.0.0.1:{closed_port()}")
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        start = time.monotonic()
        result = nightly(build_definitions([plan]), instance)
        elapsed = time.monotonic() - start
        assert not result.success
        assert elapsed < 30, elapsed
        message = failure_of(result)
        assert f"model {M} day {DAY}: no reference profile, because model {M}: reading its aliases: " in message
        assert "MLflow registry at http://mlops:***@127.0.0.1:" in message and "Connection refused" in message
        [failure] = result.get_step_failure_events()
        assert not [t for t in error_texts(failure.event_specific_data.error) if SECRET in t]
    assert files_holding(dagster_home, "no reference profile")  # the event log is there, and holds the failure
    assert files_holding(dagster_home, SECRET) == [] and files_holding(home, SECRET) == []


# --------------------------------------------------------------------------------------------------------
# a registered model that does not exist, a profile never built


def test_a_plan_whose_registered_model_does_not_exist_fails_the_nightly_run_saying_so(plan, home):
    with dg.instance_for_test() as instance:
        defs = build_definitions([plan])
        result = nightly(defs, instance)
        assert not result.success
        message = failure_of(result)
        assert "FileNotFoundError" not in message
        registry = f"sqlite:///{home / 'mlflow.db'}"
        assert (
            f"model {M} day {DAY}: no reference profile, because registered model {M} not found in the MLflow "
            f"registry at {registry}"
        ) in message
        assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} == set()
        # refreshing the reference (what the champion_changed sensor launches) says the same
        refresh = defs.resolve_job_def(n.scoped(M, n.REFRESH_REFERENCE)).execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not refresh.success
        assert f"registered model {M} not found in the MLflow registry at {registry}" in failure_of(refresh)


def test_a_champion_whose_reference_profile_was_never_built_fails_naming_the_asset_and_the_sensor(demo_world):
    with dg.instance_for_test() as instance:
        result = nightly(build_definitions([demo_world.plan]), instance)
        assert not result.success
        message = failure_of(result)
        assert "FileNotFoundError" not in message
        assert (
            f"model {M} day {DAY}: no reference profile of the champion (version {demo_world.version}) was ever "
            f"materialized; materialize {M}/{n.REFERENCE_PROFILE} (sensor {M}__{n.REFERENCE_SENSOR} does this)"
        ) in message


def test_a_registered_model_deleted_after_its_profile_was_built_fails_scoring_naming_model_and_day(demo_world):
    with dg.instance_for_test() as instance:
        defs = build_definitions([demo_world.plan])
        assert defs.resolve_job_def(n.scoped(M, n.REFRESH_REFERENCE)).execute_in_process(instance=instance).success
        registry = Registry(f"sqlite:///{demo_world.home / 'mlflow.db'}")
        registry.delete_model(M)
        result = nightly(defs, instance)
        assert not result.success
        [failure] = result.get_step_failure_events()
        assert failure.step_key == f"{M}__{n.SCORING_BATCH}"
        assert (
            f"model {M} day {DAY}: registered model {M} not found in the MLflow registry at {registry.tracking_uri}"
        ) in failure_of(result)


# --------------------------------------------------------------------------------------------------------
# the metric store refusing connections


def test_a_metric_store_refusing_connections_fails_the_nightly_run_naming_model_and_day(demo_world, monkeypatch):
    url = f"postgresql+psycopg2://monitor:{SECRET}@127.0.0.1:{closed_port()}/monitoring"
    monkeypatch.setenv("MONITORING_STORE_URL", url)
    with dg.instance_for_test() as instance:
        defs = build_definitions([demo_world.plan])
        assert defs.resolve_job_def(n.scoped(M, n.REFRESH_REFERENCE)).execute_in_process(instance=instance).success
        start = time.monotonic()
        result = nightly(defs, instance)
        elapsed = time.monotonic() - start
        assert not result.success and elapsed < 30
        [failure] = result.get_step_failure_events()
        assert failure.step_key == f"{M}__{n.SCORING_BATCH}"
        message = failure_of(result)
        assert (
            f"model {M} day {DAY}: cannot open the metric store: metric store "
            f"postgresql+psycopg2://monitor:***@127.0.0.1:"
        ) in message
        assert "migrating the schema" in message and "Connection refused" in message
        assert not [t for t in error_texts(failure.event_specific_data.error) if SECRET in t]
