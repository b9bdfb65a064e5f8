"""Shared fixtures: the real local PostgreSQL, an isolated MONITORING_HOME, and a registered demo champion.

PostgreSQL (127.0.0.1:5432, user postgres, trust auth, database ``test``; override with
MONITORING_TEST_PG_URL) is used for real. When it is unreachable the tests that need it are skipped, except
under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

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
def demo_world(home) -> DemoWorld:
    """Champion trained and registered in a SQLite MLflow registry under ``home`` (about 5 s)."""
    from monitoring_pipelines import settings
    from monitoring_pipelines.actions.registry import Registry
    from monitoring_pipelines.demo import load_adult, scenario
    from monitoring_pipelines.plan.schema import load_plans

    plan = load_plans()[0]
    train, reference, pool = scenario.split(load_adult())
    version = scenario.register_champion(
        plan, train, reference, settings.mlflow_tracking_uri(), settings.mlflow_artifact_root()
    )
    registry = Registry(settings.mlflow_tracking_uri())
    model = registry.load_model(registry.require(plan.name, "champion"))
    return DemoWorld(home, plan, pool, model, version)
