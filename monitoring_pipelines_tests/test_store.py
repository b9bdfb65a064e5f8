"""Metric store tests, run against SQLite (tmp_path) and the real local PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

import dataclasses
import math
import shutil
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from monitoring_pipelines.errors import StoreError
from monitoring_pipelines.judge.metrics import Family
from monitoring_pipelines.store import metric_store as store_module
from monitoring_pipelines.store import schema, tables
from monitoring_pipelines.store.metric_store import MetricRow, MetricStore

SCRIPT_LOCATION = schema.SCRIPT_LOCATION

D1, D2 = date(2026, 11, 20), date(2026, 11, 21)
T0 = datetime(2026, 11, 21, 2, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metrics.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(store_url):
    s = MetricStore(store_url)
    s.migrate()
    yield s
    s.dispose()


def mrow(
    metric="feature_drift_score", segment="", value=0.1, *, day=D1, family="drift", model="churn", **kw
) -> MetricRow:
    fields = dict(
        model=model,
        model_version="3",
        alias="champion",
        partition_date=day,
        family=family,
        metric=metric,
        segment=segment,
        value=value,
        warning_threshold=0.2,
        critical_threshold=0.3,
        direction="max",
        status="ok",
        run_id="run-1",
        computed_at=T0,
    )
    fields.update(kw)
    return MetricRow(**fields)


def day_set(day=D1, family="drift", model="churn", n=3, base=0.0, run_id="run-1") -> list[MetricRow]:
    return [mrow(segment=f"f{i}", value=base + i, day=day, family=family, model=model, run_id=run_id) for i in range(n)]


def scalar(s: MetricStore, sql: str, **params):
    with s.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


# -- migrations ------------------------------------------------------------------------------------------------

LEGACY_SQL = Path(__file__).resolve().parent / "legacy_sql"  # the schema files of the migrator before alembic
LEGACY_VERSIONS = ["001", "002", "003", "004", "005"]
ALL_VERSIONS = schema.revision_ids()


def head(s: MetricStore) -> str:
    return scalar(s, "SELECT version_num FROM alembic_version")


def schema_differences(s: MetricStore) -> list:
    """What alembic's autogenerate finds between the database and store/tables.py. PostgreSQL reflects types and
    defaults faithfully; SQLite only reports type affinities, so there only tables, columns, nullability,
    keys and indexes are compared."""
    with s.engine.connect() as conn:
        exact = conn.dialect.name == "postgresql"
        context = MigrationContext.configure(conn, opts={"compare_type": exact, "compare_server_default": exact})
        return compare_metadata(context, tables.metadata)


def test_the_revisions_continue_the_old_sql_files():
    assert ALL_VERSIONS[: len(LEGACY_VERSIONS)] == LEGACY_VERSIONS
    assert sorted(p.name[:3] for p in LEGACY_SQL.glob("*.sql")) == LEGACY_VERSIONS


def test_migrate_twice_applies_once(store_url):
    first = MetricStore(store_url)
    assert first.migrate() == ALL_VERSIONS
    assert first.migrate() == []
    second = MetricStore(store_url)  # a new process sees the recorded revision too
    assert second.migrate() == []
    assert head(first) == ALL_VERSIONS[-1]
    assert scalar(first, "SELECT COUNT(*) FROM alembic_version") == 1
    assert scalar(first, "SELECT COUNT(*) FROM metric_values") == 0
    first.dispose(), second.dispose()


def test_the_migrated_schema_is_the_one_of_tables_py(store):
    assert schema_differences(store) == []
    with store.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == set(tables.metadata.tables) | {"alembic_version"}


def test_every_view_file_creates_the_view_it_is_named_after(store):
    files = sorted(schema.VIEWS_DIR.glob("*.sql"))
    assert len(files) == 7
    with store.engine.connect() as conn:
        assert set(inspect(conn).get_view_names()) == {f.stem.split("_", 1)[1] for f in files}
    store.replace_rows("churn", D1, ["drift"], day_set(n=2))
    assert store.query("reading a view", "SELECT COUNT(*) FROM latest_metric_values") == [(2,)]


def test_concurrent_migrations_apply_each_revision_once(store_url):
    stores = [MetricStore(store_url) for _ in range(3)]
    barrier, results, errors = threading.Barrier(len(stores)), [], []

    def run(s: MetricStore):
        try:
            barrier.wait()
            results.append(s.migrate())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    # each revision is applied by exactly one of the racing stores
    assert sorted(v for applied in results for v in applied) == ALL_VERSIONS
    assert scalar(stores[0], "SELECT COUNT(*) FROM alembic_version") == 1
    assert head(stores[0]) == ALL_VERSIONS[-1]
    for s in stores:
        s.dispose()


BROKEN_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("half_done", sa.Column("a", sa.Text()))
{extra}
"""


def scripts_with_revision(tmp_path: Path, *, broken: bool) -> Path:
    """A copy of the migrations with one more revision, which fails when ``broken`` (it creates a table, then one
    that exists)."""
    location = tmp_path / "migrations"
    if not location.exists():
        shutil.copytree(schema.SCRIPT_LOCATION, location, ignore=shutil.ignore_patterns("__pycache__"))
    extra = '    op.create_table("metric_values", sa.Column("b", sa.Text()))' if broken else ""
    rev = f"{int(ALL_VERSIONS[-1]) + 1:03d}"
    (location / "versions" / f"{rev}_extra.py").write_text(
        BROKEN_REVISION.format(rev=rev, down=ALL_VERSIONS[-1], extra=extra)
    )
    return location


def test_a_failing_revision_leaves_the_database_as_it_was(store_url, tmp_path, monkeypatch):
    s = MetricStore(store_url)
    monkeypatch.setattr(schema, "SCRIPT_LOCATION", scripts_with_revision(tmp_path, broken=True))
    with pytest.raises(StoreError, match="migrating the schema") as info:
        s.migrate()
    assert "metric_values" in str(info.value)  # the database's own message names the cause
    # every revision of one call shares its transaction: on a new database, nothing at all is left
    with s.engine.connect() as conn:
        assert inspect(conn).get_table_names() == []

    monkeypatch.setattr(schema, "SCRIPT_LOCATION", SCRIPT_LOCATION)
    assert s.migrate() == ALL_VERSIONS
    monkeypatch.setattr(schema, "SCRIPT_LOCATION", scripts_with_revision(tmp_path, broken=True))
    with pytest.raises(StoreError, match="migrating the schema"):
        s.migrate()
    assert head(s) == ALL_VERSIONS[-1] and s.rows("churn").empty
    with pytest.raises(DBAPIError, match="half_done"):
        scalar(s, "SELECT COUNT(*) FROM half_done")
    monkeypatch.setattr(schema, "SCRIPT_LOCATION", scripts_with_revision(tmp_path, broken=False))
    assert s.migrate() == [f"{int(ALL_VERSIONS[-1]) + 1:03d}"]
    s.dispose()


def test_missing_sql_dir_says_install_from_source(store_url, tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "VIEWS_DIR", tmp_path / "nowhere")
    with pytest.raises(StoreError, match="installed from source"):
        MetricStore(store_url).migrate()


def legacy_store(url: str, versions: list[str]) -> None:
    """A store as the migrator before alembic left it: the sql files of ``versions`` applied, each recorded in
    ``schema_migrations``."""
    files = {p.name[:3]: p for p in LEGACY_SQL.glob("*.sql")}
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for version in versions:
            script = files[version].read_text()
            if conn.dialect.name == "sqlite":
                conn.connection.driver_connection.executescript(script)  # the driver runs the whole script
            else:
                conn.exec_driver_sql(script)  # psycopg2 sends the whole script in one call
            conn.execute(
                sa.text("INSERT INTO schema_migrations (version, applied_at) VALUES (:v, :at)"),
                {"v": version, "at": T0.isoformat()},
            )
    engine.dispose()


@pytest.mark.parametrize("applied", [LEGACY_VERSIONS, LEGACY_VERSIONS[:3]], ids=["all", "up-to-003"])
def test_a_store_made_by_the_old_migrator_is_upgraded_in_place(store_url, applied):
    legacy_store(store_url, applied)
    with sa.create_engine(store_url).begin() as conn:  # a row written by the old code
        conn.execute(
            sa.text(
                "INSERT INTO metric_values (model, partition_date, family, metric, segment, value, status, run_id, "
                "computed_at) VALUES ('churn', '2026-11-20', 'drift', 'feature_drift_score', 'f0', 0.5, 'ok', "
                "'old-run', '2026-11-21T02:00:00.123456+00:00')"
            )
        )
    s = MetricStore(store_url)
    assert s.migrate() == ALL_VERSIONS[len(applied) :]  # the old versions are stamped, not run again
    assert head(s) == ALL_VERSIONS[-1] and s.migrate() == []
    old = s.rows("churn")
    assert old[["segment", "value", "run_id"]].values.tolist() == [["f0", 0.5, "old-run"]]
    assert old["computed_at"].iloc[0] == pd.Timestamp(T0)
    if s.url.get_backend_name() == "postgresql":  # SQLite reflects the old DDL's quirks (nullable TEXT keys)
        [left] = schema_differences(s)  # the old migrator's own table, nothing else
        assert left[0] == "remove_table" and left[1].name == "schema_migrations"
    s.replace_rows("churn", D1, ["drift"], day_set(n=2))
    assert s.rows("churn")["segment"].tolist() == ["f0", "f1"]
    assert scalar(s, "SELECT COUNT(*) FROM schema_migrations") == len(applied)  # left for older releases
    s.dispose()


def test_an_unknown_old_migration_history_is_refused(store_url):
    legacy_store(store_url, ["001"])
    with sa.create_engine(store_url).begin() as conn:
        conn.execute(
            sa.text("INSERT INTO schema_migrations (version, applied_at) VALUES ('003', :at)"), {"at": T0.isoformat()}
        )
    with pytest.raises(StoreError, match=r"records versions \['001', '003'\]"):
        MetricStore(store_url).migrate()


# -- metric values ---------------------------------------------------------------------------------------------


def test_replace_twice_keeps_exactly_the_second_set(store):
    assert store.replace_rows("churn", D1, ["drift"], day_set(n=3, base=0.0, run_id="run-1")) == 3
    assert store.replace_rows("churn", D1, ["drift"], day_set(n=2, base=10.0, run_id="run-2")) == 2
    df = store.rows("churn")
    assert len(df) == 2
    assert df["value"].tolist() == [10.0, 11.0]
    assert df["segment"].tolist() == ["f0", "f1"]
    assert set(df["run_id"]) == {"run-2"}


def test_replace_leaves_other_days_families_and_models(store):
    store.replace_rows("churn", D1, ["drift", "quality"], day_set(D1, "drift") + day_set(D1, "quality", n=2))
    store.replace_rows("churn", D2, ["drift"], day_set(D2, "drift", n=4))
    store.replace_rows("fraud", D1, ["drift"], day_set(D1, "drift", model="fraud", n=5))

    store.replace_rows("churn", D1, [Family.DRIFT], [mrow(segment="only", value=42.0, family=Family.DRIFT)])

    churn = store.rows("churn")
    assert churn.groupby(["partition_date", "family"]).size().to_dict() == {
        (D1, "drift"): 1,
        (D1, "quality"): 2,
        (D2, "drift"): 4,
    }
    assert churn.loc[(churn["partition_date"] == D1) & (churn["family"] == "drift"), "value"].tolist() == [42.0]
    assert len(store.rows("fraud")) == 5


def test_replace_with_no_rows_clears_the_families(store):
    store.replace_rows("churn", D1, ["drift", "quality"], day_set(D1, "drift") + day_set(D1, "quality"))
    assert store.replace_rows("churn", D1, ["drift"], []) == 0
    assert store.rows("churn")["family"].unique().tolist() == ["quality"]


@pytest.mark.parametrize(
    "bad",
    [
        dict(day=D2),
        dict(family="performance"),
        dict(model="fraud"),
        dict(status="bad"),
        dict(direction="up"),
        dict(computed_at=datetime(2026, 11, 21, 2, 0)),
    ],
    ids=["day", "family", "model", "status", "direction", "naive-time"],
)
def test_invalid_row_raises_before_writing(store, bad):
    store.replace_rows("churn", D1, ["drift"], day_set(n=3))
    rows = day_set(n=2, base=100.0) + [mrow(segment="bad", **bad)]
    with pytest.raises(ValueError, match=r"row 2 \("):
        store.replace_rows("churn", D1, ["drift"], rows)
    assert store.rows("churn")["value"].tolist() == [0.0, 1.0, 2.0]


def test_validation_happens_before_any_database_access():
    # Nothing listens on port 1: any connection attempt would raise StoreError, not ValueError.
    unreachable = MetricStore("postgresql+psycopg2://u:pw@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(ValueError, match="not for day 2026-11-20"):
        unreachable.replace_rows("churn", D1, ["drift"], [mrow(day=D2)])


def test_insert_failure_midway_rolls_back(store):
    store.replace_rows("churn", D1, ["drift"], day_set(n=3))
    duplicate_key = day_set(n=2, base=50.0) + [mrow(segment="f0", value=99.0)]
    with pytest.raises(StoreError, match="churn on 2026-11-20"):
        store.replace_rows("churn", D1, ["drift"], duplicate_key)
    df = store.rows("churn")
    assert df["value"].tolist() == [0.0, 1.0, 2.0]
    assert set(df["run_id"]) == {"run-1"}


def test_concurrent_replacements_of_one_day_never_mix_or_fail(store_url):
    stores = [MetricStore(store_url) for _ in range(2)]
    stores[0].migrate()
    barrier, errors = threading.Barrier(2), []

    def run(s: MetricStore, run_id: str, base: float):
        barrier.wait()
        for _ in range(15):
            try:
                s.replace_rows("churn", D1, ["drift"], day_set(n=4, base=base, run_id=run_id))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(s, f"run-{i}", 10.0 * i)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    df = stores[0].rows("churn")
    assert len(df) == 4 and df["run_id"].nunique() == 1
    for s in stores:
        s.dispose()


def test_blocked_days_are_the_days_whose_blocking_quality_checks_failed(store):
    def quality(day, failed):
        return mrow("blocking_failed_checks", value=failed, day=day, family="quality", direction=None)

    days = [D1 + timedelta(days=i) for i in range(5)]
    for day, failed in zip(days, [0, 2, None, 1, float("nan")]):
        store.replace_rows("churn", day, ["quality"], [quality(day, failed)])
    store.replace_rows("churn", days[2], ["drift"], [mrow("blocking_failed_checks", value=3, day=days[2])])
    store.replace_rows("fraud", days[0], ["quality"], [dataclasses.replace(quality(days[0], 5), model="fraud")])
    assert store.blocked_days("churn") == {days[1], days[3]}
    assert store.blocked_days("churn", start=days[2]) == {days[3]}
    assert store.blocked_days("churn", end=days[2]) == {days[1]}
    assert store.blocked_days("churn", start=days[2], end=days[2]) == set()
    assert store.blocked_days("fraud") == {days[0]}


def test_the_blocking_metric_is_the_quality_familys():
    from monitoring_pipelines.families.quality.names import FAMILY, Metric
    from monitoring_pipelines.store import metric_values

    assert (metric_values.BLOCKING_FAMILY, metric_values.BLOCKING_METRIC) == (
        FAMILY.value,
        Metric.BLOCKING_FAILED_CHECKS.value,
    )


def test_null_and_nan_round_trip_as_null(store):
    rows = [
        mrow(
            segment="none",
            value=None,
            warning_threshold=None,
            critical_threshold=None,
            direction=None,
            status="unknown",
        ),
        mrow(segment="nan", value=float("nan"), critical_threshold=float("nan"), status="unknown"),
        mrow(segment="num", value=0.25),
    ]
    store.replace_rows("churn", D1, ["drift"], rows)
    # NaN must become SQL NULL (PostgreSQL would otherwise keep a 'NaN' that NULL-aware queries miss).
    assert scalar(store, "SELECT COUNT(*) FROM metric_values WHERE value IS NULL") == 2
    df = store.rows("churn").set_index("segment")
    assert math.isnan(df.loc["none", "value"]) and math.isnan(df.loc["nan", "value"])
    assert math.isnan(df.loc["nan", "critical_threshold"]) and df.loc["nan", "warning_threshold"] == 0.2
    assert df.loc["none", "direction"] is None
    assert df.loc["num", "value"] == 0.25


def test_rows_filters_and_timestamps(store):
    paris = timezone(timedelta(hours=1))
    store.replace_rows(
        "churn",
        D1,
        ["drift", "quality"],
        day_set(D1, "drift") + [mrow("row_count", value=1000, family="quality", computed_at=T0.astimezone(paris))],
    )
    store.replace_rows("churn", D2, ["drift"], day_set(D2, "drift"))
    assert store.rows("churn", family="quality")["metric"].tolist() == ["row_count"]
    assert store.rows("churn", metric="feature_drift_score", start=D2)["partition_date"].tolist() == [D2] * 3
    assert store.rows("churn", end=D1)["partition_date"].unique().tolist() == [D1]
    assert store.rows("churn", start=D1, end=D1, family=Family.DRIFT).shape[0] == 3
    assert store.rows("nobody").empty
    computed = store.rows("churn", family="quality")["computed_at"].iloc[0]
    assert computed == pd.Timestamp(T0) and str(computed.tz) == "UTC"


def test_dtypes_identical_between_backends(tmp_path, pg_schema_url):
    frames = {}
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'm.db'}"), ("postgresql", pg_schema_url)):
        s = MetricStore(url)
        s.migrate()
        empty_rows, empty_actions = s.rows("churn"), s.actions("churn")
        s.replace_rows(
            "churn",
            D1,
            ["drift", "quality"],
            day_set() + [mrow("row_count", value=None, family="quality", direction=None, status="unknown")],
        )
        s.record_action(model="churn", action="retrain", status="requested", trigger="drift")
        frames[name] = (empty_rows, empty_actions, s.rows("churn"), s.actions("churn"))
        s.dispose()

    expected_rows = {c: "object" for c in store_module.METRIC_COLUMNS} | {
        "value": "float64",
        "warning_threshold": "float64",
        "critical_threshold": "float64",
        "computed_at": "datetime64[ns, UTC]",
    }
    expected_actions = {c: "object" for c in store_module.ACTION_COLUMNS} | {
        "created_at": "datetime64[ns, UTC]",
        "updated_at": "datetime64[ns, UTC]",
    }
    for name, (empty_rows, empty_actions, rows, actions) in frames.items():
        for frame, expected in (
            (empty_rows, expected_rows),
            (rows, expected_rows),
            (empty_actions, expected_actions),
            (actions, expected_actions),
        ):
            assert frame.dtypes.astype(str).to_dict() == expected, name
        assert all(type(d) is date for d in rows["partition_date"]), name
    sqlite_rows, pg_rows = frames["sqlite"][2], frames["postgresql"][2]
    pd.testing.assert_frame_equal(sqlite_rows, pg_rows)
    ignore = ["id", "created_at"]  # generated per call
    pd.testing.assert_frame_equal(
        frames["sqlite"][3].drop(columns=ignore), frames["postgresql"][3].drop(columns=ignore)
    )


# -- model actions ---------------------------------------------------------------------------------------------


def test_action_record_and_update_round_trip(store):
    first = store.record_action(
        model="churn",
        action="retrain",
        status="requested",
        trigger="drift_breach",
        partition_date=D1,
        from_version=3,
        reason="drift share 0.4",
        run_id="sensor-1",
        actor="sensor",
    )
    second = store.record_action(
        model="churn", action="promote", status="pending_approval", from_version="3", to_version="4"
    )
    store.record_action(model="fraud", action="rollback", status="succeeded")
    store.update_action(first, status="succeeded", run_id="run-9", to_version=4)

    df = store.actions("churn").set_index("id")
    assert df.index.tolist() == [first, second]
    one = df.loc[first]
    assert (one["status"], one["trigger"], one["partition_date"], one["from_version"], one["to_version"]) == (
        "succeeded",
        "drift_breach",
        D1,
        "3",
        "4",
    )
    assert (one["reason"], one["run_id"], one["actor"]) == ("drift share 0.4", "run-9", "sensor")  # reason kept
    assert one["updated_at"] >= one["created_at"]
    two = df.loc[second]
    assert two["partition_date"] is None and pd.isna(two["updated_at"]) and two["status"] == "pending_approval"

    store.update_action(second, status="refused", reason="approval missing")
    assert store.actions("churn").set_index("id").loc[second, "reason"] == "approval missing"


def test_action_validation(store):
    with pytest.raises(ValueError, match="action 'deploy'"):
        store.record_action(model="churn", action="deploy", status="requested")
    with pytest.raises(ValueError, match="status 'done'"):
        store.record_action(model="churn", action="retrain", status="done")
    with pytest.raises(StoreError, match="no model action with id 'missing'"):
        store.update_action("missing", status="failed")


# -- URLs and secrets ------------------------------------------------------------------------------------------


def test_password_never_shown():
    s = MetricStore("postgresql://postgres:s3cret@127.0.0.1:1/nope?connect_timeout=2")
    assert "s3cret" not in repr(s) and "***" in repr(s)
    assert s.url.drivername == "postgresql+psycopg2"  # plain postgresql:// would load psycopg v3
    with pytest.raises(StoreError) as info:
        s.migrate()
    assert "s3cret" not in str(info.value) and "127.0.0.1" in str(info.value)
    with pytest.raises(StoreError) as info:
        MetricStore("postgresql+psycopg2://postgres:s3cret@127.0.0.1:notaport/nope")
    assert "s3cret" not in str(info.value)


def test_unsupported_backend_is_refused():
    with pytest.raises(StoreError, match="only SQLite and PostgreSQL"):
        MetricStore("mysql+pymysql://u:s3cret@localhost/db")


def test_default_url_comes_from_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITORING_HOME", str(tmp_path))
    monkeypatch.delenv("MONITORING_STORE_URL", raising=False)
    s = MetricStore()
    assert s.migrate() == ALL_VERSIONS and (tmp_path / "metrics.db").exists()
    s.dispose()
