"""Shared fixtures: the real local PostgreSQL, an isolated MONITORING_HOME, the demo champion, the 30-day demo.

Expensive state is built once per session and never written to by a test: the champion is trained and
registered once (``champion``) and each test gets a copy of its registry (``demo_world``); the 30-day demo runs
once (``demo_month``, with snapshots of the days other tests read), in a process of its own started before the
first test, and a test that changes demo state copies it first (``state_copies``). Tests reading the demo run
last and are marked ``slow``, like every other test over about 5 s.

PostgreSQL (127.0.0.1:5432, user postgres, trust auth, database ``test``; override with
MONITORING_TEST_PG_URL) is used for real. When it is unreachable the tests that need it are skipped, except
under CI=true, where that is a failure.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import pickle
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from monitoring_pipelines_tests.state_copies import copy_registry

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("MONITORING_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
_ENV = (
    "MONITORING_HOME",
    "MONITORING_STORE_URL",
    "MLFLOW_TRACKING_URI",
    "MONITORING_PLANS_DIR",
    "MONITORING_REPORTS_URL",
    "DAGSTER_HOME",
)


def _unreachable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and PostgreSQL is required: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The local PostgreSQL test database."""
    engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        _unreachable(f"PostgreSQL not reachable at {sa.engine.make_url(PG_URL).render_as_string()}: {exc.orig}")
    finally:
        engine.dispose()
    return PG_URL


@pytest.fixture
def pg_schema_url(pg_url):
    """URL of a fresh, empty schema in the test database (search_path set; dropped afterwards)."""
    admin = sa.create_engine(pg_url)
    schema = f"mp_{uuid.uuid4().hex}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def pg_database(pg_url):
    """A fresh, empty database (name, URL), dropped afterwards: for Dagster's own storage."""
    name = f"mp_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield name, sa.engine.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def plan():
    """The bundled demo plan (adult_income)."""
    from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR, load_plans

    (p,) = load_plans(BUNDLED_PLANS_DIR)
    return p


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An isolated MONITORING_HOME with every other location left to its default under it."""
    for var in _ENV:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("MONITORING_HOME", str(home))
    return home


@dataclass(frozen=True)
class Champion:
    """The demo's first champion, trained and registered once per session in the SQLite MLflow registry of
    ``home`` (``home/mlflow.db``, ``home/mlartifacts``), with the scenario's traffic pool."""

    home: Path
    pool: pd.DataFrame
    model: object
    version: str


@pytest.fixture(scope="session")
def champion(tmp_path_factory) -> Champion:
    """Trained once (about 15 s with the registry's creation); tests get a copy through ``demo_world``."""
    from monitoring_pipelines import settings
    from monitoring_pipelines.actions.registry import Registry
    from monitoring_pipelines.demo import load_adult, scenario
    from monitoring_pipelines.plan.schema import load_plans

    home = tmp_path_factory.mktemp("champion").resolve() / "home"
    with pytest.MonkeyPatch.context() as mp:
        for var in _ENV:
            mp.delenv(var, raising=False)
        mp.setenv("MONITORING_HOME", str(home))
        plan = load_plans()[0]
        train, reference, pool = scenario.split(load_adult())
        version = scenario.register_champion(
            plan, train, reference, settings.mlflow_tracking_uri(), settings.mlflow_artifact_root()
        )
        registry = Registry(settings.mlflow_tracking_uri())
        model = registry.load_model(registry.require(plan.name, "champion"))
    return Champion(home, pool, model, version)


@dataclass
class DemoWorld:
    """A registered demo champion plus the scenario's traffic pool, in an isolated MONITORING_HOME."""

    home: Path
    plan: object
    pool: pd.DataFrame
    model: object
    version: str

    def write_days(self, days: int, *, labels_through: int | None = None):
        """Serve scenario days 1..``days``; file the labels that arrived by the end of day ``labels_through``
        (default: none at all, as on the night of the last day before any label landed)."""
        import numpy as np

        from monitoring_pipelines.demo import scenario

        pending = []
        for i, day in scenario.scenario_days(self.plan, days):
            preds, labels = scenario.simulate_day(
                self.plan, i, day, self.pool, self.model, self.version, np.random.default_rng([scenario.SEED, i])
            )
            scenario.write_day(self.plan, preds, labels.iloc[0:0])
            pending.append(labels)
        if labels_through is not None:
            lab = self.plan.data.labels
            allp = pd.concat(pending, ignore_index=True)
            end = pd.Timestamp(self.plan.schedule.start_date, tz="UTC") + pd.Timedelta(days=labels_through)
            arrived = allp[allp[lab.labelled_at] < end]
            if len(arrived):
                scenario.write_day(self.plan, preds, arrived)
        return pending


@pytest.fixture
def demo_world(home, champion) -> DemoWorld:
    """The session's champion in a copy of its SQLite MLflow registry under ``home`` (a fresh copy per test: tests
    register versions, move aliases and break artifacts), with its own copies of the model and the pool."""
    from monitoring_pipelines.plan.schema import load_plans

    copy_registry(champion.home, home)
    return DemoWorld(home, load_plans()[0], champion.pool.copy(), copy.deepcopy(champion.model), champion.version)


@dataclass(frozen=True)
class DemoMonth:
    """The 30-day demo, run once per session in its own MONITORING_HOME (SQLite metric store and MLflow registry,
    demo data, reports, dagster_home). Read it, never write to it: a test that changes demo state works on a copy
    (``state_copies.copy_state``).

    ``snapshots[N]`` holds copies of ``metrics.db`` and ``dagster_home`` taken when day N was done: the end state
    of ``run_demo(days=N)``. Days 1..N of the month are those of an N-day demo: day i's traffic depends only on i
    (``simulate_day`` draws with the seed [SEED, i]; the events have fixed first and last days, the drift ramps
    over days 12..30 whatever the demo's length), and the runner's loop over days never looks at the total.
    """

    home: Path
    plan: object
    result: object  # DemoResult
    dagster_home_env: str | None  # DAGSTER_HOME as run_demo left it (it sets it when unset)
    snapshots: dict[int, Path] = field(default_factory=dict)

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.home / 'metrics.db'}"

    def store_url_after(self, day: int) -> str:
        return f"sqlite:///{self.snapshots[day] / 'metrics.db'}"

    def result_after(self, day: int):
        """What ``run_demo(days=day)`` returns: its per-day table (read from the day's snapshot of the store, as
        the runner reads it), its failed runs and launched runs. Notifications are not kept per day."""
        from monitoring_pipelines.demo.runner import DemoResult, day_table
        from monitoring_pipelines.store.metric_store import MetricStore

        last = (self.plan.schedule.start_date + dt.timedelta(days=day - 1)).isoformat()
        acted = {r.day: [r.actions] if r.actions else [] for r in self.result.table.itertuples() if r.day <= last}
        store = MetricStore(self.store_url_after(day))
        try:
            table = day_table(self.plan, store, day, acted)
        finally:
            store.dispose()
        return DemoResult(
            table=table,
            failed_runs={d: why for d, why in self.result.failed_runs.items() if d <= last},
            launched=[line for line in self.result.launched if line[:10] <= last],
        )


class _BackgroundDemo:
    """``session_demo`` in a process of its own: started before the first test, joined by ``demo_month``."""

    def __init__(self, root: Path):
        self.home, self.shots, self.out = root / "home", root / "snapshots", root / "result.pickle"
        self.log = root / "session_demo.log"
        env = {k: v for k, v in os.environ.items() if k not in _ENV}
        env["MONITORING_HOME"] = str(self.home)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitoring_pipelines_tests.session_demo", self.home, self.shots, self.out],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def join(self, timeout: float) -> dict:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"the session's 30-day demo took over {timeout} s:\n{self.log.read_text()[-3000:]}")
        if code != 0:
            pytest.fail(f"the session's 30-day demo exited with {code}:\n{self.log.read_text()[-5000:]}")
        return pickle.loads(self.out.read_bytes())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _reads_the_demo(item) -> bool:
    return "demo_month" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items):
    """Every test that reads the session's 30-day demo is slow (the fast lane, -m "not slow", never starts it) and
    runs last: the demo runs meanwhile, in a process of its own, on the machine's other core."""
    readers = [item for item in items if _reads_the_demo(item)]
    for item in readers:
        item.add_marker(pytest.mark.slow)
    items[:] = [item for item in items if not _reads_the_demo(item)] + readers


@pytest.fixture(scope="session", autouse=True)
def _background_demo(request, tmp_path_factory):
    """Starts the 30-day demo before the session's first test when a selected test reads it."""
    if not any(_reads_the_demo(item) for item in request.session.items):
        yield None
        return
    demo = _BackgroundDemo(tmp_path_factory.mktemp("demo-month").resolve())
    yield demo
    demo.stop()  # the session ended before a reader joined it (-x, an interrupt)


@pytest.fixture(scope="session")
def demo_month(_background_demo, plan) -> DemoMonth:
    """``run_demo(days=30)`` (about 5 minutes on 2 cores, run in the background since the session started), with
    the snapshots of ``session_demo.SNAPSHOT_DAYS``."""
    done = _background_demo.join(timeout=3600)
    return DemoMonth(_background_demo.home, plan, done["result"], done["dagster_home_env"], done["snapshots"])
