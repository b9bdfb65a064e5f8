"""The Grafana dashboard's SQL, run against the dashboard views on the real PostgreSQL after a 14-day demo.

The demo is the session's 30-day demo as it stood after day 14 (conftest ``demo_month``), its metric store
copied row by row into a fresh PostgreSQL schema.

Every panel target (and the template variable query) of deploy/grafana/dashboards/model-monitoring.json is
executed with Grafana's macros substituted as Grafana's PostgreSQL datasource expands them, for the demo model
and for a model with no data (empty result, no error).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from monitoring_pipelines.store.metric_store import MetricStore

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "model-monitoring.json"
DAYS = 14  # includes the broken-pipeline day (8) and the drift onset (13)
FROM, TO = dt.datetime(2025, 12, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def expand(sql: str, model: str) -> str:
    """Grafana's PostgreSQL macros for a fixed time range (grafana-postgresql-datasource, macros.go)."""
    start, end = FROM.strftime("%Y-%m-%dT%H:%M:%SZ"), TO.strftime("%Y-%m-%dT%H:%M:%SZ")
    sql = re.sub(r"\$__timeFilter\(([^()]*(?:\([^()]*\))?[^()]*)\)", rf"\1 BETWEEN '{start}' AND '{end}'", sql)
    sql = re.sub(r"\$__time\(([^)]*)\)", r'\1 AS "time"', sql)
    sql = sql.replace("$__timeFrom()", f"'{start}'").replace("$__timeTo()", f"'{end}'")
    sql = sql.replace("$model", model)
    assert "$" not in sql, f"an unexpanded macro is left in: {sql}"
    return sql


def targets() -> list[tuple[str, str, str]]:
    board = json.loads(DASHBOARD.read_text())
    out = [("template variable model", "table", v["query"]) for v in board["templating"]["list"]]
    for panel in board["panels"]:
        for t in panel.get("targets", []):
            out.append((f"{panel['title']} [{t['refId']}]", t["format"], t["rawSql"]))
    return out


def copy_store(sqlite_url: str, pg_url: str) -> None:
    """Every row of a SQLite metric store into a freshly migrated PostgreSQL one (tables in foreign-key order;
    the store keeps dates and timestamps as ISO text on SQLite, which PostgreSQL reads into its own types)."""
    MetricStore(pg_url).migrate()
    source, target = sa.create_engine(sqlite_url), sa.create_engine(pg_url)
    tables = sa.MetaData()
    tables.reflect(target)
    try:
        with source.connect() as src, target.begin() as dst:
            present = set(sa.inspect(src).get_table_names())
            for table in tables.sorted_tables:
                if table.name in present and table.name not in ("schema_migrations", "alembic_version"):
                    rows = [dict(r) for r in src.exec_driver_sql(f'SELECT * FROM "{table.name}"').mappings()]
                    if rows:
                        dst.execute(table.insert(), rows)
    finally:
        source.dispose()
        target.dispose()


@pytest.fixture(scope="module")
def demo_on_postgres(pg_url, demo_month):
    """The session's 30-day demo as a 14-day demo leaves it (its day-14 snapshot), in a fresh PostgreSQL schema."""
    schema = f"mp_grafana_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = (
        sa.engine.make_url(pg_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    copy_store(demo_month.store_url_after(DAYS), url)
    engine = sa.create_engine(url)
    store = MetricStore(url)
    yield engine, store
    store.dispose()
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def run(engine, sql: str) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(sa.text(sql.replace(":", r"\:")))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def test_every_panel_query_runs_on_the_views_for_the_demo_model(demo_on_postgres):
    engine, _ = demo_on_postgres
    for name, fmt, sql in targets():
        frame = run(engine, expand(sql, "adult_income"))
        if fmt == "time_series":  # Grafana needs a time column first and numeric series
            assert frame.columns[0] == "time", name
            assert len(frame) > 0, f"{name}: no rows for the demo"


def test_every_panel_query_is_empty_for_a_model_without_data(demo_on_postgres):
    engine, _ = demo_on_postgres
    for name, _fmt, sql in targets():
        if name.startswith("template variable"):
            continue
        assert run(engine, expand(sql, "no_such_model")).empty, name


def _panel(title: str) -> list[str]:
    return [sql for name, _f, sql in targets() if name.startswith(title)]


def test_panels_return_the_demo_figures(demo_on_postgres):
    engine, store = demo_on_postgres
    rows = store.rows("adult_income")

    def stored(family, metric):
        sub = rows[(rows["family"] == family) & (rows["metric"] == metric) & (rows["segment"] == "")]
        return {pd.Timestamp(d): v for d, v in zip(sub["partition_date"], sub["value"])}

    (sql,) = _panel("Share of drifted features")
    drift = run(engine, expand(sql, "adult_income")).set_index("time")["drifted share"]
    assert {pd.Timestamp(t): v for t, v in drift.items()} == pytest.approx(stored("drift", "share_of_drifted_features"))
    # the scenario: no drift on days 1-12, the broken day 8 has no drift figure, the onset is day 13
    assert pd.Timestamp("2026-01-08") not in drift.index
    assert (drift[:"2026-01-12"] == 0).all() and drift[pd.Timestamp("2026-01-13")] > 0

    realised, estimated = _panel("ROC AUC")
    auc = run(engine, expand(realised, "adult_income")).set_index("time")["realised"].dropna()
    assert {pd.Timestamp(t): v for t, v in auc.items()} == pytest.approx(
        {d: v for d, v in stored("performance", "roc_auc").items() if not pd.isna(v)}
    )
    assert len(auc) >= DAYS - 4  # labels arrive three days later; day 8 never gets figures
    est = run(engine, expand(estimated, "adult_income")).set_index("time")["estimated (CBPE)"]
    assert est.notna().all() and len(est) == DAYS - 1

    (sql,) = _panel("Latency p99")
    p99 = run(engine, expand(sql, "adult_income")).set_index("time")["p99 ms"]
    assert {pd.Timestamp(t): v for t, v in p99.items()} == pytest.approx(stored("service", "latency_p99_ms"))

    (sql,) = _panel("Worst fairness gap")
    gap = run(engine, expand(sql, "adult_income")).set_index("time")["worst gap"]
    fair = rows[(rows["family"] == "fairness") & (rows["metric"] == "equal_opportunity_difference")]
    assert gap.to_dict() == pytest.approx(
        {pd.Timestamp(d): v for d, v in fair.groupby("partition_date")["value"].max().items()}, nan_ok=True
    )

    (sql,) = _panel("Health")
    health = run(engine, expand(sql, "adult_income")).set_index("metric")["value"]
    latest = store.rows("adult_income", start=dt.date(2026, 1, DAYS), end=dt.date(2026, 1, DAYS))
    rank = {"ok": 0, "unknown": 1, "warning": 2, "critical": 3}
    for family, sub in latest.groupby("family"):
        assert health[family] == max(rank[s] for s in sub["status"]), family


def test_the_open_incidents_panel_lists_what_the_incident_tracker_holds_open(demo_on_postgres):
    from monitoring_pipelines.incidents import tracker as incidents

    engine, store = demo_on_postgres
    (sql,) = _panel("Open incidents")
    panel = run(engine, expand(sql, "adult_income"))
    live = incidents.incidents(store, "adult_income", states=("open", "acknowledged"))
    assert sorted(zip(panel["family"], panel["metric"], panel["severity"])) == sorted(
        zip(live["family"], live["metric"], live["severity"])
    )
    # the broken-pipeline day's data-quality incident was opened on day 8 and resolved after ok days
    everything = incidents.incidents(store, "adult_income")
    quality = everything[everything["metric"] == "blocking_failed_checks"]
    assert list(quality["first_day"]) == [dt.date(2026, 1, 8)] and list(quality["state"]) == ["resolved"]
