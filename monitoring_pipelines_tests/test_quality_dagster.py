"""Volume and plan-added expectations through a real Dagster run of ``scoring_batch`` (real MLflow registry, real
GX, the SQLite metric store): the volume range comes from the days stored before, plan checks are asset checks.

Blocking checks stopping the downstream assets are covered by test_pipeline.py.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import pytest

from monitoring_pipelines.definitions import build_definitions
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.demo import scenario
from monitoring_pipelines.plan.schema import QualitySettings
from monitoring_pipelines.store.metric_store import MetricStore

M = "adult_income"
QUALITY = {
    "expectations": [
        {
            "name": "age_adult",
            "type": "expect_column_min_to_be_between",
            "kwargs": {"column": "age", "min_value": 17},
            "description": "Only adults are scored.",
        },
        {
            "name": "status_known",
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "status", "value_set": ["ok"]},
            "blocking": True,
        },
    ],
    "disable": ["native_country_known_categories"],
}


@pytest.fixture
def world(demo_world):
    plan = demo_world.plan.model_copy(update={"quality": QualitySettings.model_validate(QUALITY)})
    with dg.instance_for_test() as instance:
        defs = build_definitions([plan])
        MetricStore().migrate()
        assert defs.resolve_job_def(n.scoped(M, n.REFRESH_REFERENCE)).execute_in_process(instance=instance).success
        yield demo_world, plan, defs, instance


def _scoring_batch(world, day_index: int, keep: float = 1.0):
    w, plan, defs, instance = world
    day = plan.schedule.start_date + dt.timedelta(days=day_index - 1)
    preds, labels = scenario.simulate_day(
        plan, day_index, day, w.pool, w.model, w.version, np.random.default_rng([scenario.SEED, day_index])
    )
    preds = preds.iloc[: int(len(preds) * keep)].copy()
    if keep < 1:
        preds.loc[preds.index[:3], "status"] = "timeout"  # a status the plan's status_known does not allow
    scenario.write_day(plan, preds, labels.iloc[0:0])
    result = defs.resolve_job_def(n.scoped(M, n.NIGHTLY_MONITORING)).execute_in_process(
        instance=instance,
        partition_key=day.isoformat(),
        raise_on_error=False,
        asset_selection=[dg.AssetKey([M, n.SCORING_BATCH])],
    )
    return preds, {c.check_name: c for c in result.get_asset_check_evaluations()}, result


@pytest.mark.slow
def test_a_volume_drop_fails_row_volume_against_the_stored_days_and_plan_checks_run(world):
    sizes = [len(_scoring_batch(world, i)[0]) for i in (1, 2, 3)]
    first = _scoring_batch(world, 1)[1]  # re-run of day 1: no earlier day stored, so no derived range yet
    assert (
        first["row_volume"].passed
        and "0 recent day(s) stored" in first["row_volume"].metadata["expected"].value["basis"]
    )
    preds, checks, result = _scoring_batch(world, 4, keep=0.1)
    vol = checks["row_volume"]
    assert not vol.passed and vol.severity == dg.AssetCheckSeverity.WARN
    meta = vol.metadata
    assert meta["observed"].value == len(preds) and meta["day"].value == "2026-01-04" and meta["model"].value == M
    assert meta["expected"].value["min_value"] == int(np.ceil(0.5 * np.median(sizes)))
    assert "median of 3 recent days" in meta["expected"].value["basis"]
    # plan expectations are asset checks with the same metadata as derived ones
    adult = checks["age_adult"]
    assert adult.passed and adult.metadata["observed"].value == preds["age"].min()
    assert adult.metadata["origin"].value == "quality.expectations[0]"
    status = checks["status_known"]
    n_errors = int((preds["status"] != "ok").sum())
    assert n_errors > 0 and not status.passed and status.severity == dg.AssetCheckSeverity.ERROR
    assert status.metadata["unexpected_count"].value == n_errors
    assert "timeout" in status.metadata["unexpected_examples"].value
    assert "native_country_known_categories" not in checks
    # the plan made status_known blocking: it fails the run (row_volume alone, a warning, would not)
    assert not result.success
    assert {c for c, e in checks.items() if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR} == {
        "status_known"
    }
    rows = MetricStore().rows(M, family="quality", start=dt.date(2026, 1, 4), end=dt.date(2026, 1, 4))
    failed = rows[rows["metric"] == "check_failed"].set_index("segment")["value"]
    assert failed["row_volume"] == 1.0 and failed["status_known"] == 1.0 and failed["age_adult"] == 0.0
