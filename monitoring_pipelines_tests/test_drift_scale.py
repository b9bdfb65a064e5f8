"""drift.compute_day reads a parquet day one column at a time: its results equal the in-memory path exactly.

The in-memory path is ``drift.compute`` on ``sources.read_predictions`` (the whole day as one DataFrame, the
way the other sources are read); the columnar path reads each column of each file with pyarrow (text columns
as dictionaries), keeps the rows of the UTC day and drops the column after testing it. Files have several
row groups, nulls, infinities and rows of the neighbouring days; results must be equal to the last bit
(dataclass equality of every score) and so must the seeded sample the HTML report shows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from monitoring_pipelines import profiling
from monitoring_pipelines.data import sources
from monitoring_pipelines.demo import load_adult
from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.families.base import FamilyResult
from monitoring_pipelines.families.drift import calculator as drift
from monitoring_pipelines.families.drift import evidently as drift_report
from monitoring_pipelines.plan.schema import ColumnDriftTest, DriftSettings

DAY = dt.date(2026, 1, 5)


@pytest.fixture(scope="module")
def rows(plan):
    df = load_adult().sample(frac=1, random_state=5).reset_index(drop=True)
    df[plan.data.predictions.score] = 1 / (1 + np.exp(-(df["age"] - 38) / 10))
    return df


@pytest.fixture(scope="module")
def profile(rows, plan):
    return profiling.build_profile(rows.iloc[:10_000].reset_index(drop=True), plan, "1")


def prediction_log(rows: pd.DataFrame, plan, start: str, seed: int) -> pd.DataFrame:
    """Adult rows as a prediction log: 20% of the rows fall on the neighbouring days; some nulls and infinities."""
    p = plan.data.predictions
    rng = np.random.default_rng(seed)
    day = rows.reset_index(drop=True).copy()
    offsets = pd.to_timedelta(rng.integers(-6 * 3600, 30 * 3600, len(day)), unit="s")
    day[p.timestamp] = pd.Timestamp(start, tz="UTC") + offsets
    day[p.id] = [f"req-{seed}-{i}" for i in range(len(day))]
    day[p.prediction] = (day[p.score] > 0.5).astype("int64")
    day[p.latency_ms], day[p.status], day[p.model_version] = 12.0, "ok", "1"
    day["capital_gain"] = day["capital_gain"].astype("float64")
    day.loc[rng.random(len(day)) < 0.05, "capital_gain"] = np.nan
    day.loc[day.index[:3], "capital_gain"] = np.inf
    day.loc[rng.random(len(day)) < 0.05, "occupation"] = None
    return day


def folder_plan(plan, path: str):
    preds = plan.data.predictions.model_copy(update={"path": path})
    return plan.model_copy(update={"data": plan.data.model_copy(update={"predictions": preds})})


def assert_same(columnar: drift.DriftResult, in_memory: drift.DriftResult) -> None:
    assert columnar == in_memory  # every FeatureDrift: method, threshold, score (exactly), decision; row counts
    assert columnar.report_rows == in_memory.report_rows > 0
    pd.testing.assert_frame_equal(
        columnar.report_sample.astype(object).where(columnar.report_sample.notna(), None),
        in_memory.report_sample.astype(object).where(in_memory.report_sample.notna(), None),
    )


@pytest.mark.parametrize(
    "chosen",
    [
        {},
        {
            "age": ("psi", 0.1),
            "hours_per_week": ("hellinger", 0.1),
            "occupation": ("kl_div", 0.1),
            "education": ("chisquare", 0.05),
        },
    ],
)
def test_one_file_of_several_row_groups_equals_the_in_memory_path(tmp_path, rows, profile, plan, chosen, monkeypatch):
    monkeypatch.setattr(drift_report, "REPORT_ROWS", 700)  # the day has more rows than the report's sample
    p = folder_plan(plan, str(tmp_path))
    p = p.model_copy(
        update={
            "drift": DriftSettings(columns={c: ColumnDriftTest(method=m, threshold=t) for c, (m, t) in chosen.items()})
        }
    )
    log = prediction_log(rows.iloc[10_000:16_000], p, "2026-01-05", seed=1)
    log.assign(age=log["age"] + 2).to_parquet(tmp_path / "2026-01-05.parquet", row_group_size=1000)
    assert pq.ParquetFile(tmp_path / "2026-01-05.parquet").num_row_groups == 6
    columnar = drift.compute_day(p, DAY, profile.drift_reference, reference_rows=profile.row_count)
    whole = sources.read_predictions(p, DAY)
    in_memory = drift.compute(profile.drift_reference, whole, p, reference_rows=profile.row_count, day=DAY)
    assert 3500 < columnar.evaluated_rows == len(whole) < 4500  # the neighbouring days' rows are left out
    assert_same(columnar, in_memory)
    assert "age" in {f.column for f in columnar.drifted} or chosen  # wasserstein flags 2 years older
    assert {c: (f.method, f.threshold) for c, f in ((f.column, f) for f in columnar.features) if c in chosen} == chosen
    # the family's calculator: fitted on the reference rows, reading the day itself
    fitted = drift.DriftCalculator(p).fit(rows.iloc[:10_000].reset_index(drop=True), "1")
    assert fitted.reference_rows == profile.row_count and fitted.reference.keys() == profile.drift_reference.keys()
    result = fitted.calculate(DAY)
    assert_same(result, columnar)
    assert isinstance(result, FamilyResult)
    assert result.headline() == {
        "share_of_drifted_features": columnar.share,
        "drifted_features": float(len(columnar.drifted)),
        "prediction_drift_score": columnar.prediction.score,
    }


def test_several_files_of_a_day_equal_the_in_memory_path(tmp_path, rows, profile, plan):
    p = folder_plan(plan, str(tmp_path / "{date}" / "*.parquet"))
    (tmp_path / "2026-01-05").mkdir()
    parts = [
        prediction_log(rows.iloc[16_000 + 2000 * i : 18_000 + 2000 * i], p, "2026-01-05", seed=i) for i in range(3)
    ]
    parts[1] = parts[1].assign(workclass=parts[1]["workclass"].replace("Private", "Private-new"))
    for i, part in enumerate(parts):
        part.to_parquet(tmp_path / "2026-01-05" / f"part-{i}.parquet", row_group_size=500)
    columnar = drift.compute_day(p, DAY, profile.drift_reference, reference_rows=profile.row_count)
    in_memory = drift.compute(
        profile.drift_reference, sources.read_predictions(p, DAY), p, reference_rows=profile.row_count, day=DAY
    )
    assert_same(columnar, in_memory)
    assert {f.column: f for f in columnar.features}["workclass"].drifted


def test_a_column_missing_from_a_file_names_model_day_file_and_column(tmp_path, rows, plan):
    p = folder_plan(plan, str(tmp_path))
    prediction_log(rows.iloc[:500], p, "2026-01-05", seed=0).drop(columns=["education"]).to_parquet(
        tmp_path / "2026-01-05.parquet"
    )
    with pytest.raises(
        DataSourceError,
        match=r"model adult_income, day 2026-01-05: file .*2026-01-05.parquet "
        r"lacks column\(s\) education",
    ):
        drift.compute_day(p, DAY, {}, reference_rows=1)


def test_a_changed_type_or_an_empty_day_names_model_day_and_column(tmp_path, rows, profile, plan):
    p = folder_plan(plan, str(tmp_path))
    log = prediction_log(rows.iloc[:500], p, "2026-01-05", seed=0)
    log.assign(hours_per_week=log["hours_per_week"].astype(str)).to_parquet(tmp_path / "2026-01-05.parquet")
    with pytest.raises(
        DataSourceError,
        match=r"model adult_income, day 2026-01-05: drift of column "
        r"'hours_per_week': .* should be numerical",
    ):
        drift.compute_day(p, DAY, profile.drift_reference, reference_rows=profile.row_count)
    log.to_parquet(tmp_path / "2026-01-07.parquet")  # no row of 2026-01-07 in it
    with pytest.raises(DataSourceError, match=r"model adult_income, day 2026-01-07: the day has no rows"):
        drift.compute_day(p, dt.date(2026, 1, 7), profile.drift_reference, reference_rows=profile.row_count)
