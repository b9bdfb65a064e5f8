"""`monitoring-pipelines demo`: what the monitor must find over the month, and nothing lost.

The first checks read the session's 30-day demo (conftest ``demo_month``) as a 16-day demo leaves it (its
day-16 snapshot); the month's checks read its end.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from monitoring_pipelines.store.metric_store import MetricStore
from monitoring_pipelines_tests.state_copies import copy_state

DAYS = 16


@pytest.fixture(scope="module")
def demo(demo_month):
    """The session's 30-day demo as a 16-day demo leaves it: the store and table of day 16's snapshot."""
    store = MetricStore(demo_month.store_url_after(DAYS))
    yield demo_month.home, demo_month.result_after(DAYS), store
    store.dispose()


def test_every_day_and_every_served_row_is_accounted_for(demo):
    home, result, store = demo
    table = result.table.set_index("day")
    days = [(dt.date(2026, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
    assert list(table.index) == days
    for day in days:
        written = pd.read_parquet(home / "demo-data" / "adult_income" / "predictions" / f"{day}.parquet")
        assert table.loc[day, "rows"] == len(written)
    rows = store.rows("adult_income")
    assert sorted({d.isoformat() for d in rows["partition_date"]}) == days
    assert not rows.duplicated(["partition_date", "family", "metric", "segment"]).any()


def test_the_broken_pipeline_day_fails_its_checks_and_feeds_no_decision(demo):
    _, result, store = demo
    assert list(result.failed_runs) == ["2026-01-08"]
    assert "occupation_not_null" in result.failed_runs["2026-01-08"] or "blocking" in result.failed_runs["2026-01-08"]
    day8 = store.rows("adult_income", start=dt.date(2026, 1, 8), end=dt.date(2026, 1, 8))
    assert set(day8["family"]) == {"quality"}  # no drift, performance, fairness or comparison, even after labels
    failed = day8[(day8["metric"] == "check_failed") & (day8["value"] == 1.0)]["segment"]
    assert set(failed) == {"occupation_not_null"}
    others = result.table[result.table["day"] != "2026-01-08"]
    assert (others["failed_checks"] == 0).all()


def test_drift_appears_after_it_starts_and_not_before(demo):
    _, result, _ = demo
    table = result.table.set_index("day")
    before = table.loc["2026-01-01":"2026-01-11", "drifted_share"].drop("2026-01-08")
    assert (before == 0).all()
    assert table.loc["2026-01-12", "drifted_share"] == 0  # the drift starts on day 12 but is still too small
    after = table.loc["2026-01-13":, "drifted_share"]
    assert (after > 0).all()  # hours_per_week from day 13 (docs/demo-scenario.md), then growing


def test_performance_is_realised_once_labels_land_three_days_later(demo):
    _, result, store = demo
    table = result.table.set_index("day")
    labelled = [d for d in table.index if d <= "2026-01-12" and d != "2026-01-08"]
    assert table.loc[labelled, "label_coverage"].eq(1.0).all()
    assert table.loc[labelled, "auc"].between(0.85, 0.95).all()
    last = table.loc["2026-01-14":]  # labels for these arrive after the demo's last day: AUC is estimated
    assert last["realised_auc"].isna().all() and last["auc_estimated"].all()
    assert last["estimated_auc"].between(0.85, 0.95).all()
    both = table.loc[labelled]  # no concept drift in the scenario: the estimate tracks the realised AUC
    assert (both["estimated_auc"] - both["realised_auc"]).abs().max() < 0.02
    final = store.rows("adult_income", family="performance", metric="roc_auc")
    assert set(final[final["value"].notna()]["status"]) == {"ok"}


def test_running_the_demo_command_again_starts_from_a_clean_state(demo_month, tmp_path):
    """A user runs the console script a second time (a new process): no day of the first run survives."""
    home = tmp_path / "home"
    copy_state(demo_month.home, home)  # the session's demo stays as it is for the other tests
    assert len(list((home / "demo-data" / "adult_income" / "predictions").iterdir())) == 30
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MONITORING_STORE_URL", "MLFLOW_TRACKING_URI", "MONITORING_PLANS_DIR", "DAGSTER_HOME")
    }
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "monitoring-pipelines"), "demo", "--days", "2"],
        env={**env, "MONITORING_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2026-01-02" in proc.stdout and "2026-01-03" not in proc.stdout
    rows = MetricStore(f"sqlite:///{home / 'metrics.db'}").rows("adult_income")
    assert sorted({d.isoformat() for d in rows["partition_date"]}) == ["2026-01-01", "2026-01-02"]
    assert sorted(p.name for p in (home / "demo-data" / "adult_income" / "predictions").iterdir()) == [
        "2026-01-01.parquet",
        "2026-01-02.parquet",
    ]


@pytest.mark.slow
def test_the_demo_honours_external_locations_and_resets_only_its_own_model(pg_schema_url, tmp_path):
    """MONITORING_STORE_URL (PostgreSQL), MLFLOW_TRACKING_URI, DAGSTER_HOME and MONITORING_PLANS_DIR are used as
    given; a second run replaces the demo model's rows, runs and registered model, and keeps other models'."""
    import shutil

    from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR
    from monitoring_pipelines.store.metric_store import MetricRow

    plans = tmp_path / "plans"
    plans.mkdir()
    shutil.copy(BUNDLED_PLANS_DIR / "adult_income.yaml", plans)
    mlflow_db = tmp_path / "elsewhere" / "mlflow.db"
    mlflow_db.parent.mkdir()
    env = {
        **os.environ,
        "MONITORING_HOME": str(tmp_path / "home"),
        "MONITORING_STORE_URL": pg_schema_url,
        "MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_db}",
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "MONITORING_PLANS_DIR": str(plans),
    }
    (tmp_path / "dagster").mkdir()
    store = MetricStore(pg_schema_url)
    store.migrate()
    other = MetricRow(
        model="churn",
        model_version="3",
        alias="champion",
        partition_date=dt.date(2026, 1, 1),
        family="drift",
        metric="share_of_drifted_features",
        segment="",
        value=0.1,
        warning_threshold=None,
        critical_threshold=None,
        direction=None,
        status="ok",
        run_id="r",
        computed_at=dt.datetime.now(dt.UTC),
    )
    store.replace_rows("churn", dt.date(2026, 1, 1), ["drift"], [other])
    script = str(Path(sys.executable).parent / "monitoring-pipelines")
    for _ in range(2):
        proc = subprocess.run([script, "demo", "--days", "2"], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = store.rows("adult_income")
        assert sorted({d.isoformat() for d in rows["partition_date"]}) == ["2026-01-01", "2026-01-02"]
        assert not rows.duplicated(["partition_date", "family", "metric", "segment"]).any()
    assert len(store.rows("churn")) == 1  # another model's history is never touched
    assert mlflow_db.exists() and not (tmp_path / "home" / "mlflow.db").exists()
    assert not (tmp_path / "home" / "metrics.db").exists()
    assert (tmp_path / "dagster" / "storage").is_dir()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}", registry_uri=f"sqlite:///{mlflow_db}")
    assert {a: str(v) for a, v in client.get_registered_model("adult_income").aliases.items()} == {"champion": "1"}


@pytest.fixture(scope="module")
def month(demo_month):
    """The whole 30-day demo: the champion/challenger loop needs days 20-30."""
    store = MetricStore(demo_month.store_url)
    yield demo_month.home, demo_month.result, store
    store.dispose()


def test_the_demo_keeps_its_dagster_instance_under_monitoring_home_when_dagster_home_is_unset(demo_month):
    assert demo_month.dagster_home_env == str(demo_month.home / "dagster_home")
    assert (demo_month.home / "dagster_home" / "storage").is_dir()


def test_the_month_closes_the_loop_retrain_shadow_evidence_promotion_and_rollback(month):
    from monitoring_pipelines.actions.registry import Registry
    from monitoring_pipelines.families.comparison import calculator as comparison

    home, result, store = month
    table = result.table.set_index("day")
    acted = table[table["actions"] != ""]["actions"].to_dict()
    assert acted == {
        "2026-01-20": "retrain v2",
        "2026-01-25": "promote v2",
        "2026-01-26": "promote v3 (by hand)",
        "2026-01-30": "retrain v4, rollback v2",
    }
    assert list(result.failed_runs) == ["2026-01-08"]  # every other nightly run succeeds, before and after
    audit = store.actions("adult_income").set_index(["action", "to_version"])
    promoted = audit.loc[("promote", "2")]
    assert promoted["actor"] == "adult_income__challenger_promotion"
    assert "better on 2 of 2 labelled days (2026-01-21..2026-01-22" in promoted["reason"]
    assert audit.loc[("promote", "3"), "actor"] == "user"
    rolled = audit.loc[("rollback", "2")]
    assert rolled["actor"] == "adult_income__post_promotion_rollback"
    assert rolled["reason"].startswith(
        "version 3 -> 2: champion v3 breached performance.critical on 2026-01-27 "
        "(served day 1 of 7); previous champion v2 was better"
    )
    # days are attributed to the version that served them
    served = comparison.served_by(store.rows("adult_income", family="comparison", metric="served_rows"))
    expected = (
        {f"2026-01-{d:02d}": "1" for d in range(1, 26) if d != 8}
        | {"2026-01-26": "2"}
        | {f"2026-01-{d}": "3" for d in range(27, 31)}
    )
    assert {d.isoformat(): v for d, v in served.items()} == expected
    assert table.loc["2026-01-26", "realised_auc"] > 0.9 and table.loc["2026-01-27", "realised_auc"] < 0.6
    uri = f"sqlite:///{home / 'mlflow.db'}"
    assert Registry(uri).aliases("adult_income") == {"champion": "2", "challenger": "4"}


def test_the_month_notifies_each_scenario_event_once_signed(month):
    """Every notification reached the demo's signed webhook (none refused), one per incident state change, and the
    scenario's events are among them: the broken pipeline, the latency spike, the drift, the bad version."""
    home, result, store = month
    assert result.refused_notifications == 0
    sent = [
        (p["metric"]["family"], p["metric"]["name"], p["incident"]["state"], p["incident"]["severity"], p["day"])
        for p in result.notifications
    ]
    assert len(sent) == len(set((p["incident"]["id"], p["incident"]["state"]) for p in result.notifications))
    for event in [
        ("quality", "blocking_failed_checks", "opened", "critical", "2026-01-08"),
        ("service", "latency_p99_ms", "opened", "critical", "2026-01-17"),
        ("service", "latency_p99_ms", "resolved", "ok", "2026-01-19"),
        ("drift", "share_of_drifted_features", "opened", "critical", "2026-01-20"),
        ("performance", "roc_auc", "opened", "critical", "2026-01-27"),
    ]:
        assert event in sent, event
    # what the receiver filed is what was sent, and the outbox holds them all as delivered
    filed = [json.loads(line) for line in (home / "demo-alerts.jsonl").read_text().splitlines()]
    assert filed == result.notifications
    from monitoring_pipelines import notify

    assert {r.status for r in notify.outbox_rows(store, "adult_income")} == {"delivered"}
    assert len(notify.outbox_rows(store, "adult_income")) == len(sent) <= 20  # few enough for a person to read
