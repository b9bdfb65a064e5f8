"""False alarms by design: 30 clean days of the demo model raise no drift alert at the default settings.

The default is Evidently's own test choice, which with more than 1000 reference rows uses distances (normed
Wasserstein, Jensen-Shannon) at 0.1 rather than p-values: a distance does not shrink towards "significant"
as daily volume grows, and it does not multiply false positives with the number of features the way 11
p-value tests at 0.05 would (about 43% of clean days would flag at least one feature). The plan then alerts
on the *share* of drifted features (warning 0.2 = at least 3 of 11), so one borderline feature never pages.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from monitoring_pipelines import profiling
from monitoring_pipelines.demo import load_adult, scenario, training
from monitoring_pipelines.families.drift import calculator as drift
from monitoring_pipelines.judge.metrics import Status


@pytest.fixture(scope="module")
def clean_month(plan):
    train, ref_rows, pool = scenario.split(load_adult())
    model = training.train(train, plan)
    ref_rows = ref_rows.assign(score=model.predict_proba(ref_rows[plan.features.model_inputs])[:, 1])
    profile = profiling.build_profile(ref_rows, plan, "1")  # drift statistics fitted once, as the pipeline does
    results = []
    for i, day in scenario.scenario_days(plan, 30):
        preds, _ = scenario.simulate_day(
            plan, i, day, pool, model, "1", np.random.default_rng([scenario.SEED, i]), events=()
        )
        results.append(
            (
                day,
                drift.compute(
                    profile.drift_reference,
                    preds[preds["score"].notna()],
                    plan,
                    reference_rows=profile.row_count,
                    day=day,
                ),
            )
        )
    return results


def test_thirty_clean_days_raise_no_drift_alert_at_the_default(clean_month, plan):
    bounds = plan.bounds("drift", "share_of_drifted_features")
    statuses = {day: bounds.judge(result.share) for day, result in clean_month}
    assert set(statuses.values()) == {Status.OK}
    assert len(statuses) == 30 and min(statuses) == dt.date(2026, 1, 1)


def test_no_single_feature_crosses_its_threshold_on_clean_days(clean_month):
    worst = max(f.score / f.threshold for _, r in clean_month for f in r.features)
    assert worst < 1.0
    assert all(not r.drifted and not r.prediction.drifted for _, r in clean_month)
    assert all(r.evaluated_rows == r.current_rows and not r.unjudged_segments() for _, r in clean_month)
