"""The deployment configs (deploy/, dagster.yaml) checked by the tools that will read them.

- Every Dagster instance config (the root dagster.yaml, the compose one, and the instance block the Helm
  values render into) passes Dagster's own instance schema; broken copies are refused.
- The Helm run launcher block passes dagster-k8s's K8sRunLauncher config schema.
- The compose instance builds a real instance on the local PostgreSQL, with the retrain limit matching the
  tag the retrain job really carries.
- The compose file: structure (services, dependencies, the environment settings.py reads, no credential),
  and `docker compose config` / `docker-compose config` (a client that needs no engine).
- The compose workspace loads the code location from a real `dagster code-server start` over gRPC, started
  with the compose service's own command.
- The postgres init script creates the three databases on the real PostgreSQL; the mlflow service's command
  runs a real MLflow server on PostgreSQL that proxies artifacts and accepts the compose host name.

A missing external client (docker compose, psql) skips its test locally and fails it under CI=true.
"""

from __future__ import annotations

import copy
import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._config import process_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import PoolGranularity, dagster_instance_config

from monitoring_pipelines import settings
from monitoring_pipelines.plan import schema as plan_module

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
COMPOSE_INSTANCE = DEPLOY / "docker" / "dagster.yaml"
COMPOSE_WORKSPACE = DEPLOY / "docker" / "workspace.yaml"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
BIN = Path(sys.executable).parent
RETRAIN_TAG = {"key": "monitoring/kind", "value": "retrain", "limit": 1}
# Where the settings of the code location come from (monitoring_pipelines/settings.py, plan.py).
APP_ENV = {
    settings.STORE_URL_ENV,
    settings.MLFLOW_URI_ENV,
    settings.REPORTS_URL_ENV,
    settings.HOME_ENV,
    plan_module.PLANS_DIR_ENV,
}


def _missing(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and this test needs it: {reason}")
    pytest.skip(reason)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _instance_config(config: dict, tmp_path: Path) -> dict:
    """Dagster's own validation of an instance config (what DagsterInstance.from_config runs)."""
    home = tmp_path / f"home_{uuid.uuid4().hex[:8]}"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    validated, _ = dagster_instance_config(str(home))
    return dict(validated)


def _env_refs(node) -> set[str]:
    """Names of every ``{env: NAME}`` in a Dagster config."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node)) if node else set()
    return set()


# --------------------------------------------------------------------------------------------------------
# The instance block of the Helm chart, reproduced from the chart's templates (helm/dagster/templates/
# configmap-instance.yaml and helpers/instance/*.tpl of dagster-io/dagster) for the blocks our values set.
# `helm template` is not available here; this is what it renders for deploy/helm/values.yaml with release
# `monitoring` (fullname `monitoring-dagster`) in namespace `monitoring`.
# --------------------------------------------------------------------------------------------------------
RELEASE, NAMESPACE = "monitoring", "monitoring"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def render_helm_instance(values: dict) -> dict:
    fullname = f"{RELEASE}-dagster"
    pg = values["postgresql"]
    pg_config = {
        "postgres_db": {
            "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": pg["postgresqlHost"],
            "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"],
            "params": pg.get("postgresqlParams", {}),
            **({"scheme": pg["postgresqlScheme"]} if pg.get("postgresqlScheme") else {}),
        }
    }
    instance: dict = {
        "scheduler": {"module": "dagster.core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": pg_config,
        },
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", "config": pg_config},
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": pg_config,
        },
    }
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    k8s = launcher["config"]["k8sRunLauncher"]
    cfg = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": fullname,
        "dagster_home": values.get("global", {}).get("dagsterHome", "/opt/dagster/dagster_home"),
        "instance_config_map": f"{fullname}-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    if k8s.get("envSecrets"):
        cfg["env_secrets"] = [s["name"] for s in k8s["envSecrets"]]
    if k8s.get("runK8sConfig"):
        cfg["run_k8s_config"] = {_snake(k): v for k, v in k8s["runK8sConfig"].items() if v}
    instance["run_launcher"] = {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": cfg}
    daemon = values["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    if daemon["enabled"] and coordinator["enabled"]:
        assert coordinator["type"] == "QueuedRunCoordinator"
        queued = {k: v for k, v in (coordinator["config"].get("queuedRunCoordinator") or {}).items() if v is not None}
        rc = {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"}
        if queued:
            rc["config"] = {_snake(k): v for k, v in queued.items()}
        instance["run_coordinator"] = rc
    if daemon.get("runMonitoring", {}).get("enabled"):
        mon = daemon["runMonitoring"]
        instance["run_monitoring"] = {
            "enabled": True,
            "start_timeout_seconds": mon["startTimeoutSeconds"],
            "poll_interval_seconds": mon.get("pollIntervalSeconds", 120),
        }
    instance["telemetry"] = {"enabled": values["telemetry"]["enabled"]}
    conc = values.get("concurrency", {})
    if conc.get("enabled"):
        block: dict = {}
        pools = {_snake(k): v for k, v in conc.get("pools", {}).items() if v is not None}
        if pools:
            block["pools"] = pools
        runs = conc.get("runs", {})
        if runs.get("maxConcurrentRuns") is not None or runs.get("tagConcurrencyLimits"):
            block["runs"] = {}
            if runs.get("maxConcurrentRuns") is not None:
                block["runs"]["max_concurrent_runs"] = runs["maxConcurrentRuns"]
            if runs.get("tagConcurrencyLimits"):
                block["runs"]["tag_concurrency_limits"] = runs["tagConcurrencyLimits"]
        instance["concurrency"] = block
    return instance


@pytest.fixture(scope="module")
def helm_values() -> dict:
    return _load(HELM_VALUES)


@pytest.fixture(scope="module")
def helm_instance(helm_values) -> dict:
    return render_helm_instance(helm_values)


def _instances(helm_instance) -> dict[str, dict]:
    return {
        "dagster.yaml": _load(ROOT / "dagster.yaml"),
        "deploy/docker/dagster.yaml": _load(COMPOSE_INSTANCE),
        "helm (rendered)": helm_instance,
    }


@pytest.mark.parametrize("name", ["dagster.yaml", "deploy/docker/dagster.yaml", "helm (rendered)"])
def test_every_instance_config_passes_dagsters_own_schema_with_the_retrain_limit(name, helm_instance, tmp_path):
    config = _instances(helm_instance)[name]
    validated = _instance_config(config, tmp_path)
    runs = validated["concurrency"]["runs"]
    assert RETRAIN_TAG in runs["tag_concurrency_limits"], name
    assert validated["run_coordinator"]["class"] == "QueuedRunCoordinator"


def _broken(config: dict, how: str) -> dict:
    c = copy.deepcopy(config)
    if how == "unknown top-level key":
        c["run_launchr"] = {"module": "dagster", "class": "DefaultRunLauncher"}
    elif how == "limit not an int":
        c["concurrency"]["runs"]["max_concurrent_runs"] = "four"
    elif how == "pool granularity":
        c["concurrency"]["pools"] = {"granularity": "model"}
    elif how == "limit also in the run coordinator":
        c["run_coordinator"]["config"] = {"max_concurrent_runs": 2}
    elif how == "storage and run_storage":
        c["run_storage"] = {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", "config": {}}
        c.setdefault("storage", {"sqlite": {"base_dir": "/tmp"}})
    return c


@pytest.mark.parametrize(
    "how",
    [
        "unknown top-level key",
        "limit not an int",
        "pool granularity",
        "limit also in the run coordinator",
        "storage and run_storage",
    ],
)
@pytest.mark.parametrize("name", ["dagster.yaml", "deploy/docker/dagster.yaml", "helm (rendered)"])
def test_a_broken_copy_of_each_instance_config_is_refused(name, how, helm_instance, tmp_path):
    with pytest.raises(DagsterInvalidConfigError):
        _instance_config(_broken(_instances(helm_instance)[name], how), tmp_path)


def test_the_helm_run_launcher_passes_the_k8s_run_launchers_own_schema(helm_instance):
    from dagster_k8s import K8sRunLauncher

    config = helm_instance["run_launcher"]["config"]
    result = process_config(K8sRunLauncher.config_type(), config)
    assert result.success, result.errors
    resources = result.value["run_k8s_config"]["container_config"]["resources"]
    assert resources == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    broken = copy.deepcopy(config)
    broken["run_k8s_config"]["container_cfg"] = broken["run_k8s_config"].pop("container_config")
    assert not process_config(K8sRunLauncher.config_type(), broken).success
    broken = copy.deepcopy(config)
    broken["load_incluster_config"] = "yes"
    assert not process_config(K8sRunLauncher.config_type(), broken).success


def test_helm_values_run_our_code_location_with_external_postgresql_and_secrets(helm_values):
    v = helm_values
    assert v["postgresql"]["enabled"] is False and v["generatePostgresqlPasswordSecret"] is False
    assert v["global"]["postgresqlSecretName"]
    (deployment,) = v["dagster-user-deployments"]["deployments"]
    args = deployment["codeServerArgs"]
    assert args[args.index("--module-name") + 1] == "monitoring_pipelines.definitions"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    # resources on the user deployment would be passed to every run pod and override the run sizing
    assert "resources" not in deployment
    env = {e["name"] for e in deployment["env"]}
    assert plan_module.PLANS_DIR_ENV in env
    secrets = list(yaml.safe_load_all((DEPLOY / "helm" / "secrets.example.yaml").read_text()))
    by_name = {s["metadata"]["name"]: s for s in secrets}
    app_secret = by_name[deployment["envSecrets"][0]["name"]]["stringData"]
    assert {settings.STORE_URL_ENV, settings.MLFLOW_URI_ENV, settings.REPORTS_URL_ENV} <= set(app_secret)
    assert "postgresql-password" in by_name[v["global"]["postgresqlSecretName"]]["stringData"]
    assert all(
        "CHANGE-ME" in str(val) or val.startswith("http://") for s in secrets for val in s["stringData"].values()
    )
    conc = v["concurrency"]
    assert conc["enabled"] and RETRAIN_TAG in conc["runs"]["tagConcurrencyLimits"]
    assert conc["pools"] == {"defaultLimit": 1, "granularity": "run"}
    # the chart refuses run limits in both places
    queued = v["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert "maxConcurrentRuns" not in queued and "tagConcurrencyLimits" not in queued


# --------------------------------------------------------------------------------------------------------
# The compose instance on the real PostgreSQL
# --------------------------------------------------------------------------------------------------------
def test_the_compose_instance_runs_on_postgresql_with_the_retrain_limits_of_the_real_retrain_job(
    pg_database, pg_url, tmp_path, monkeypatch, plan
):
    from monitoring_pipelines.definitions import build_definitions
    from monitoring_pipelines.defs import names as n

    db_name, _ = pg_database
    url = sa.engine.make_url(pg_url)
    for k, v in {
        "DAGSTER_PG_HOST": url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USER": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": db_name,
    }.items():
        monkeypatch.setenv(k, v)
    home = tmp_path / "dagster_home"
    home.mkdir()
    # the compose volume path is not writable here; everything else is the file as shipped
    (home / "dagster.yaml").write_text(
        COMPOSE_INSTANCE.read_text().replace("/opt/dagster/storage", str(tmp_path / "storage"))
    )
    assert _env_refs(_load(COMPOSE_INSTANCE)) == {
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USER",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
    }
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        config = instance.get_concurrency_config()
        assert config.pool_config.pool_granularity == PoolGranularity.RUN
        assert config.pool_config.default_pool_limit == 1
        queue = config.run_queue_config  # the coordinator's own settings merged with `concurrency: runs`
        assert queue.max_concurrent_runs == 4
        limits = queue.tag_concurrency_limits
        assert RETRAIN_TAG in limits
    # the limit matches the tag the retrain job really carries
    job = build_definitions([plan]).resolve_job_def(n.scoped(plan.name, n.RETRAIN_MODEL))
    assert job.tags.get(RETRAIN_TAG["key"]) == RETRAIN_TAG["value"]
    # ... and the pool its op declares is the one the instance limits (default_limit 1 applies to it)
    assert [node.pool for node in job.graph.node_defs] == ["retrain"]


# --------------------------------------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict:
    return _load(COMPOSE)


def _command(service: dict) -> list[str]:
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def test_compose_has_the_services_in_dependency_order_with_the_environment_they_read(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "mlflow", "code", "webserver", "daemon", "exporter"}
    deps = {name: set(s.get("depends_on", {})) for name, s in services.items()}
    assert deps == {
        "postgres": set(),
        "mlflow": {"postgres"},
        "code": {"postgres", "mlflow"},
        "webserver": {"postgres", "code"},
        "daemon": {"postgres", "code"},
        "exporter": {"postgres"},
    }
    for name, s in services.items():
        for dep, cond in s.get("depends_on", {}).items():
            assert cond == {"condition": "service_healthy"} and "healthcheck" in services[dep], (name, dep)
    # Dagster's storage env, exactly the names the compose instance reads, where an instance is loaded
    instance_env = _env_refs(_load(COMPOSE_INSTANCE))
    for name in ("code", "webserver", "daemon"):
        assert instance_env <= set(services[name]["environment"]), name
    assert APP_ENV <= set(services["code"]["environment"])
    assert services["code"]["environment"][settings.MLFLOW_URI_ENV] == "http://mlflow:5000"
    assert settings.STORE_URL_ENV in services["exporter"]["environment"]
    # the commands: code server of our definitions, UI/daemon on the compose workspace, exporter, mlflow
    code = _command(services["code"])
    assert code[:3] == ["dagster", "code-server", "start"]
    assert code[code.index("-m") + 1] == "monitoring_pipelines.definitions"
    (entry,) = _load(COMPOSE_WORKSPACE)["load_from"]
    grpc = entry["grpc_server"]
    assert (grpc["host"], str(grpc["port"]), grpc["location_name"]) == (
        "code",
        code[code.index("-p") + 1],
        code[code.index("--location-name") + 1],
    )
    for name in ("webserver", "daemon"):
        cmd = _command(services[name])
        assert cmd[cmd.index("-w") + 1] == "/opt/dagster/dagster_home/workspace.yaml", name
    assert _command(services["exporter"])[:5] == ["monitoring-pipelines", "metrics", "serve", "--host", "0.0.0.0"]
    mlflow = _command(services["mlflow"])
    assert mlflow[:2] == ["mlflow", "server"] and "--serve-artifacts" in mlflow
    assert any(a.startswith("--artifacts-destination=") for a in mlflow)
    assert services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    # the postgres init script is the file in the repository
    init = [v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert len(init) == 1 and (DEPLOY / init[0].split(":")[0]).is_file()


def test_compose_holds_no_credential_and_publishes_only_on_loopback(compose):
    text = COMPOSE.read_text()
    for line in text.splitlines():
        if re.search(r"PASSWORD\s*:", line) or re.search(r"://[^/\s]+:[^@\s]+@", line):
            assert "${POSTGRES_PASSWORD:?" in line, line
    for name, s in compose["services"].items():
        for port in s.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _compose_config(client: list[str], env_file: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "MONITORING_", "DAGSTER_", "MLFLOW_"))}
    return subprocess.run(
        [*client, "--env-file", str(env_file), "-f", str(COMPOSE), "config"],
        cwd=DEPLOY,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_docker_compose_config_resolves_the_file_with_the_example_env_and_refuses_it_without_a_password(tmp_path):
    client = _compose_client()
    if client is None:
        _missing("no compose client (`docker compose` plugin or Debian's docker-compose)")
    proc = _compose_config(client, DEPLOY / ".env.example")
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    code_env = resolved["services"]["code"]["environment"]
    assert code_env[settings.STORE_URL_ENV] == (
        "postgresql+psycopg2://monitoring:CHANGE-ME-long-random-url-safe@postgres:5432/monitoring"
    )
    assert code_env["DAGSTER_PG_PASSWORD"] == "CHANGE-ME-long-random-url-safe"
    assert resolved["services"]["webserver"]["ports"]
    no_password = tmp_path / "no-password.env"
    no_password.write_text(
        "".join(
            line + "\n"
            for line in (DEPLOY / ".env.example").read_text().splitlines()
            if not line.startswith("POSTGRES_PASSWORD=")
        )
    )
    proc = _compose_config(client, no_password)
    assert proc.returncode != 0
    assert "set POSTGRES_PASSWORD in deploy/.env" in proc.stdout + proc.stderr


def test_the_dockerfile_installs_the_pinned_project_with_sql_and_the_compose_instance():
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert "pip install -c constraints.txt -e ." in text
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in text
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *sources, dest = line.split()
        for src in sources:
            assert (ROOT / src).exists(), src
    assert "COPY sql ./sql" in text
    assert "deploy/docker/dagster.yaml deploy/docker/workspace.yaml /opt/dagster/dagster_home/" in text


# --------------------------------------------------------------------------------------------------------
# Workspaces, loaded by Dagster
# --------------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _validate_workspace(workspace: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", str(workspace)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow
def test_the_compose_workspace_loads_the_location_from_a_real_code_server_started_as_compose_does(compose, tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MONITORING_HOME": str(tmp_path / "home")}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    cmd = _command(compose["services"]["code"])
    cmd[cmd.index("-h") + 1], cmd[cmd.index("-p") + 1] = "127.0.0.1", str(port)  # loopback, a free port
    log = tmp_path / "code-server.log"
    server = subprocess.Popen(
        [str(BIN / cmd[0]), *cmd[1:]],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        # wait for the port first: each grpc-health-check is a Python process importing Dagster, and a loop of
        # them would slow the server it waits for
        while not _listening(port):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        while (
            subprocess.run(
                [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(port)], capture_output=True
            ).returncode
            != 0
        ):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        workspace = _load(COMPOSE_WORKSPACE)
        workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=port)
        ws = tmp_path / "workspace.yaml"
        ws.write_text(yaml.safe_dump(workspace))
        proc = _validate_workspace(ws, env)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        assert "monitoring_pipelines" in proc.stdout + proc.stderr
        # a workspace pointing at no server fails the same command
        workspace["load_from"][0]["grpc_server"]["port"] = _free_port()
        ws.write_text(yaml.safe_dump(workspace))
        assert _validate_workspace(ws, env).returncode != 0
    finally:
        _stop(server)


# --------------------------------------------------------------------------------------------------------
# The postgres init script and the mlflow service, for real
# --------------------------------------------------------------------------------------------------------
def _databases(pg_url: str) -> set[str]:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.text("SELECT datname FROM pg_database"))}
    finally:
        engine.dispose()


def test_the_postgres_init_script_creates_the_three_databases_and_is_safe_to_rerun(pg_url):
    if shutil.which("psql") is None:
        _missing("psql (Debian package postgresql-client) is not installed")
    url = sa.engine.make_url(pg_url)
    suffix = uuid.uuid4().hex[:10]
    names = {
        "DAGSTER_DB": f"mp_dagster_{suffix}",
        "MONITORING_DB": f"mp_monitoring_{suffix}",
        "MLFLOW_DB": f"mp_mlflow_{suffix}",
    }
    env = {
        **os.environ,
        **names,
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_DB": url.database or "postgres",
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGPASSWORD": url.password or "",
    }
    script = DEPLOY / "docker" / "postgres-init.sh"
    try:
        first = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert set(names.values()) <= _databases(pg_url)
        again = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and again.stdout.count("exists") == 3, again.stdout + again.stderr
        bad = subprocess.run(
            ["bash", str(script)],
            env={**env, "MLFLOW_DB": "x; DROP DATABASE postgres"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode != 0 and "must be letters, digits and _" in bad.stderr
    finally:
        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for db in names.values():
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


# /health is exempt from MLflow's Host check; an API read is not.
_API = "/api/2.0/mlflow/experiments/search?max_results=1"


def _status(port: int, host_header: str, path: str = _API) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host_header})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.slow
def test_the_mlflow_service_command_serves_a_postgresql_registry_with_proxied_artifacts(compose, pg_database, tmp_path):
    _, db_url = pg_database
    port = _free_port()
    artifacts = tmp_path / "artifacts"
    cmd = _command(compose["services"]["mlflow"])
    args = []
    for a in cmd[2:]:  # the compose flags, bound to loopback, a free port and a temporary artifact folder
        key = a.split("=", 1)[0]
        args.append(
            {
                "--host": "--host=127.0.0.1",
                "--port": f"--port={port}",
                "--workers": "--workers=1",
                "--artifacts-destination": f"--artifacts-destination={artifacts}",
            }.get(key, a)
        )
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": db_url}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = tmp_path / "mlflow.log"
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", *args],
        cwd=tmp_path,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if _status(port, f"127.0.0.1:{port}", "/health") == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        # the other containers call it by its service name; a foreign Host header is still refused
        assert _status(port, "mlflow:5000") == 200
        assert _status(port, "evil.example:5000") == 403
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}", registry_uri=f"http://127.0.0.1:{port}")
        experiment = client.create_experiment(f"deploy-{uuid.uuid4().hex[:6]}")
        run = client.create_run(experiment)
        note = tmp_path / "note.txt"
        note.write_text("proxied")
        client.log_artifact(run.info.run_id, str(note))
        assert client.get_experiment(experiment).artifact_location.startswith("mlflow-artifacts:")
        assert [p.read_text() for p in artifacts.rglob("note.txt")] == ["proxied"]
        client.create_registered_model("deploy_check")
        assert client.get_registered_model("deploy_check").name == "deploy_check"
    finally:
        _stop(server)
    engine = sa.create_engine(db_url)
    try:
        assert {"experiments", "registered_models", "alembic_version"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
