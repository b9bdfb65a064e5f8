"""The nightly graph on a real Dagster instance, a real MLflow registry, real GX / Evidently runs and the store.

Days come from the demo scenario (UCI Adult traffic), written to files as the serving system would.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from monitoring_pipelines.definitions import build_definitions
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.demo import scenario
from monitoring_pipelines.store.metric_store import MetricStore

M = "adult_income"


@pytest.fixture
def world(demo_world):
    with dg.instance_for_test() as instance:
        defs = build_definitions([demo_world.plan])
        store = MetricStore()
        store.migrate()
        ref = defs.resolve_job_def(n.scoped(M, n.REFRESH_REFERENCE)).execute_in_process(instance=instance)
        assert ref.success
        yield demo_world, defs, instance, store


def _serve(world, day_index: int, labels: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    w = world[0]
    day = w.plan.schedule.start_date + dt.timedelta(days=day_index - 1)
    preds, labs = scenario.simulate_day(
        w.plan, day_index, day, w.pool, w.model, w.version, np.random.default_rng([scenario.SEED, day_index])
    )
    scenario.write_day(w.plan, preds, labs if labels else labs.iloc[0:0])
    return preds, labs


def _nightly(world, day: str, **kw):
    _, defs, instance, _ = world
    return defs.resolve_job_def(n.scoped(M, n.NIGHTLY_MONITORING)).execute_in_process(
        instance=instance, partition_key=day, raise_on_error=False, **kw
    )


def _tick(world, sensor: str, cursor=None):
    _, defs, instance, _ = world
    s = defs.resolve_sensor_def(n.scoped(M, sensor))
    return s.evaluate_tick(
        dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=defs.resources, sensor_name=s.name
        )
    )


@pytest.mark.slow
def test_a_clean_day_passes_every_check_and_stores_every_family_for_the_champion(world):
    preds, _ = _serve(world, 2)
    result = _nightly(world, "2026-01-02")
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    rows = world[3].rows(M, start=dt.date(2026, 1, 2), end=dt.date(2026, 1, 2))
    assert set(rows["family"]) == {
        "quality",
        "drift",
        "performance",
        "performance_estimated",
        "fairness",
        "service",
        "comparison",
    }
    assert set(rows["model_version"]) == {world[0].version} and set(rows["alias"]) == {"champion"}
    assert set(rows["run_id"]) == {result.run_id}
    figure = rows.set_index(["family", "metric", "segment"])["value"]
    assert figure["quality", "row_count", ""] == len(preds)
    assert figure["service", "request_count", ""] == len(preds)
    assert figure["service", "latency_p99_ms", ""] == pytest.approx(np.percentile(preds["latency_ms"], 99))
    assert figure["drift", "share_of_drifted_features", ""] == 0.0
    # labels have not landed: performance is partial and not judged, but estimated from the scores
    estimated = rows[rows["family"] == "performance_estimated"].set_index("metric")
    assert estimated.loc["estimated_rows", "value"] == preds["score"].notna().sum()
    assert 0.85 < estimated.loc["roc_auc", "value"] < 0.95
    perf = rows[(rows["family"] == "performance")].set_index("metric")
    assert perf.loc["label_coverage", "value"] == 0.0
    assert pd.isna(perf.loc["roc_auc", "value"]) and perf.loc["roc_auc", "status"] == "unknown"
    health = result.asset_materializations_for_node(f"{M}__{n.MODEL_HEALTH}")[0].metadata
    assert health["status.drift"].value == "ok" and health["model_version"].value == world[0].version


@pytest.mark.slow
def test_rerunning_a_day_replaces_its_rows_and_never_duplicates_them(world):
    _serve(world, 3)
    first = _nightly(world, "2026-01-03")
    before = world[3].rows(M, start=dt.date(2026, 1, 3), end=dt.date(2026, 1, 3))
    second = _nightly(world, "2026-01-03")
    after = world[3].rows(M, start=dt.date(2026, 1, 3), end=dt.date(2026, 1, 3))
    assert first.success and second.success and len(after) == len(before) > 50
    assert set(after["run_id"]) == {second.run_id}
    key = ["family", "metric", "segment"]
    pd.testing.assert_series_equal(
        before.set_index(key)["value"].sort_index(), after.set_index(key)["value"].sort_index()
    )


@pytest.mark.slow
def test_a_broken_feature_pipeline_fails_its_blocking_check_and_stops_every_decision(world):
    preds, _ = _serve(world, 8)  # scenario day 8: occupation arrives all null
    result = _nightly(world, "2026-01-08")
    assert not result.success
    failed = {c.check_name: c for c in result.get_asset_check_evaluations() if not c.passed}
    assert "occupation_not_null" in failed
    meta = failed["occupation_not_null"].metadata
    assert meta["unexpected_count"].value == len(preds) and meta["column"].value == "occupation"
    assert meta["day"].value == "2026-01-08" and meta["model"].value == M
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert materialized == {n.SCORING_BATCH}
    rows = world[3].rows(M, start=dt.date(2026, 1, 8), end=dt.date(2026, 1, 8))
    assert set(rows["family"]) == {"quality"}
    blocked = rows.set_index(["metric", "segment"]).loc[("blocking_failed_checks", ""), "status"]
    assert blocked == "critical"
    # model_health does not run on a blocked day, so scoring_batch itself opens the data-quality incident
    from monitoring_pipelines.incidents import tracker as incidents

    [inc] = incidents.incidents(world[3], M).itertuples()
    assert (inc.family, inc.metric, inc.severity, inc.state, inc.first_day) == (
        "quality",
        "blocking_failed_checks",
        "critical",
        "open",
        dt.date(2026, 1, 8),
    )
    # a later launch of the label-dependent assets (e.g. by hand) refuses the broken day too
    rerun = _nightly(world, "2026-01-08", asset_selection=[dg.AssetKey([M, n.PERFORMANCE])])
    assert not rerun.success
    assert "blocking quality checks" in rerun.get_step_failure_events()[0].event_specific_data.error.to_string()


def test_a_missing_prediction_file_fails_the_run_naming_model_day_and_path_and_writes_nothing(world):
    result = _nightly(world, "2026-01-20")
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert f"model {M}, day 2026-01-20" in message and "2026-01-20.parquet" in message
    assert world[3].rows(M, start=dt.date(2026, 1, 20), end=dt.date(2026, 1, 20)).empty


@pytest.mark.slow
def test_late_labels_rerun_exactly_their_day_which_turns_from_partial_to_final(world):
    w, defs, instance, store = world
    preds, labels = _serve(world, 4)
    assert _nightly(world, "2026-01-04").success
    cursor = _tick(world, n.LABELS_SENSOR).cursor  # baseline: what exists now
    day = dt.date(2026, 1, 4)
    partial = store.rows(M, family="performance", start=day, end=day).set_index("metric")
    assert partial.loc["label_coverage", "value"] == 0.0 and pd.isna(partial.loc["roc_auc", "value"])
    scenario.write_day(w.plan, preds, labels)  # labels of day 4 land (filed under their arrival days)
    data = _tick(world, n.LABELS_SENSOR, cursor)
    assert [(r.partition_key, sorted(k.path[-1] for k in r.asset_selection)) for r in data.run_requests] == [
        ("2026-01-04", sorted(n.LABEL_DEPENDENT))
    ]
    rr = data.run_requests[0]
    rerun = defs.resolve_job_def(n.scoped(M, n.NIGHTLY_MONITORING)).execute_in_process(
        instance=instance, partition_key=rr.partition_key, asset_selection=rr.asset_selection, tags=rr.tags
    )
    assert rerun.success
    final = store.rows(M, family="performance", start=day, end=day).set_index("metric")
    assert len(final) == len(
        store.rows(M, family="performance", start=day, end=day).drop_duplicates(["metric", "segment"])
    )
    served = preds[preds["score"].notna()].merge(labels, on="request_id")
    assert final.loc["label_coverage", "value"] == pytest.approx(len(served) / preds["score"].notna().sum())
    assert final.loc["roc_auc", "value"] == pytest.approx(roc_auc_score(served["label"], served["score"]), abs=1e-12)
    assert final.loc["roc_auc", "status"] == "ok"
    # nothing new since: the next tick requests nothing
    assert not _tick(world, n.LABELS_SENSOR, data.cursor).run_requests
    # labels for requests no monitored day served are counted, not silently used or lost
    lab = w.plan.data.labels
    stray = pd.DataFrame(
        {
            lab.id: ["no-such-request-1", "no-such-request-2"],
            lab.label: [1, 0],
            lab.labelled_at: pd.Timestamp("2026-01-10 12:00", tz="UTC"),
        }
    )  # a new arrival file
    scenario.write_day(w.plan, preds, stray)
    after = _tick(world, n.LABELS_SENSOR, data.cursor)
    assert not after.run_requests and after.skip_message.endswith("; 2 match no monitored request")
    assert json.loads(data.cursor)


@pytest.mark.slow
def test_a_critical_drift_breach_starts_one_retrain_and_the_cooldown_holds_the_next(world, monkeypatch):
    w, defs, instance, store = world
    strict = w.plan.model_copy(
        update={
            "thresholds": {
                **w.plan.thresholds,
                "drift.share_of_drifted_features": w.plan.thresholds["drift.share_of_drifted_features"].model_copy(
                    update={"warning": 0.01, "critical": 0.05}
                ),
            }
        }
    )
    defs = build_definitions([strict])
    world = (w, defs, instance, store)
    for i in (29, 30):
        _serve(world, i)  # late scenario days: age and hours_per_week have drifted
        assert _nightly(world, f"2026-01-{i}").success
    data = _tick(world, n.BREACH_SENSOR)
    # day 30 breaches too, but falls in the 72 h cooldown of day 29's request
    assert [r.run_key for r in data.run_requests] == ["retrain:adult_income:2026-01-29:drift.critical"]
    assert not _tick(world, n.BREACH_SENSOR, data.cursor).run_requests  # already handled
    # the retrain runs; with no labels in its window it refuses, and says so in the audit trail
    rr = data.run_requests[0]
    run = defs.resolve_job_def(n.scoped(M, n.RETRAIN_MODEL)).execute_in_process(
        instance=instance, run_config=rr.run_config, tags=rr.tags, raise_on_error=False
    )
    assert not run.success
    audit = store.actions(M)
    assert list(audit["action"]) == ["retrain"] and list(audit["status"]) == ["refused"]
    assert "no labelled rows" in audit["reason"].iloc[0] and audit["run_id"].iloc[0] == run.run_id


@pytest.mark.slow
def test_a_protected_attribute_missing_on_a_day_fails_its_check_and_is_reported_not_dropped(world):
    w = world[0]
    day = dt.date(2026, 1, 5)
    preds, _ = scenario.simulate_day(
        w.plan, 5, day, w.pool, w.model, w.version, np.random.default_rng([scenario.SEED, 5])
    )
    scenario.write_day(
        w.plan,
        preds.drop(columns=["sex"]),
        preds.iloc[0:0][[]].assign(request_id=[], label=[], labelled_at=pd.Series([], dtype="datetime64[ns, UTC]")),
    )
    result = _nightly(world, "2026-01-05")
    assert result.success  # not blocking: the day is still monitored
    failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
    assert failed == {"sex_present"}
    rows = world[3].rows(M, family="fairness", start=day, end=day)
    missing = rows[rows["metric"] == "attribute_missing"]
    assert list(zip(missing["segment"], missing["value"])) == [("sex", 1.0)]
    meta = result.asset_materializations_for_node(f"{M}__{n.FAIRNESS}")[0].metadata
    assert meta["missing_attributes"].value == "sex"
    drift = world[3].rows(M, family="drift", metric="protected_drift_score", start=day, end=day)
    assert list(drift["segment"]) == ["race"]


# -- incidents (issue 6): statuses with persistence and incidents through the real nightly job ----------------


@pytest.fixture
def strict_world(demo_world):
    """The demo world with a plan whose p99 latency always breaches (warning at 1 ms), after two days in a row."""
    from monitoring_pipelines.plan.schema import IncidentSettings, Threshold

    plan = demo_world.plan.model_copy(
        update={
            "thresholds": {
                **demo_world.plan.thresholds,
                "service.latency_p99_ms": Threshold(warning=1, persistence={"k": 2, "m": 2}),
            },
            "incidents": IncidentSettings(resolve_after_ok_days=1),
        }
    )
    with dg.instance_for_test() as instance:
        defs = build_definitions([plan])
        store = MetricStore()
        store.migrate()
        assert defs.resolve_job_def(n.scoped(M, n.REFRESH_REFERENCE)).execute_in_process(instance=instance).success
        yield demo_world, defs, instance, store


@pytest.mark.slow
def test_nightly_runs_hold_a_single_breach_back_then_open_one_incident_and_rerun_changes_nothing(strict_world):
    from monitoring_pipelines.incidents import tracker as incidents

    store = strict_world[3]
    _serve(strict_world, 2)
    first = _nightly(strict_world, "2026-01-02")
    assert first.success
    health = first.asset_materializations_for_node(f"{M}__{n.MODEL_HEALTH}")[0].metadata
    # day 2 alone: the breach is held back by persistence (k=2 of m=2), stored ok beyond its level
    assert health["status.service"].value == "ok" and health["held_back"].value == 1
    assert "warning on 1 of the last 2 days (2 needed)" in health["held_back_list"].value
    row = store.rows(M, family="service", metric="latency_p99_ms")
    assert row["status"].tolist() == ["ok"] and row["value"].iloc[0] > row["warning_threshold"].iloc[0] == 1
    assert health["open_incidents"].value == 0 and incidents.incidents(store, M).empty

    _serve(strict_world, 3)
    second = _nightly(strict_world, "2026-01-03")
    health = second.asset_materializations_for_node(f"{M}__{n.MODEL_HEALTH}")[0].metadata
    assert health["status.service"].value == "warning" and "2 of 2" in health["breach_list"].value
    [change] = health["incident_changes_json"].value
    assert (change["change"], change["family"], change["metric"], change["day"]) == (
        "opened",
        "service",
        "latency_p99_ms",
        "2026-01-03",
    )
    assert health["open_incidents"].value == 1 and change["incident"] in health["open_incident_list"].value
    # the unpartitioned incidents summary is part of the nightly job
    summary = second.asset_materializations_for_node(f"{M}__{n.INCIDENTS}")[0].metadata
    assert (summary["open"].value, summary["resolved"].value) == (1, 0)
    assert change["incident"] in summary["open_incident_list"].value
    assert summary["mean_time_to_detect_hours"].value > 0

    rerun = _nightly(strict_world, "2026-01-03")  # e.g. late labels: the same day again
    health = rerun.asset_materializations_for_node(f"{M}__{n.MODEL_HEALTH}")[0].metadata
    assert rerun.success and health["incident_changes_json"].value == [] and health["open_incidents"].value == 1
    assert len(incidents.incidents(store, M)) == 1
    [inc] = incidents.incidents(store, M).itertuples()
    assert list(incidents.timeline(store, inc.id)["kind"]) == ["opened"]
