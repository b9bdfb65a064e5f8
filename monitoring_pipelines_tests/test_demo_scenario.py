"""The demo's data copy, training recipe and 30-day scenario (monitoring_pipelines.demo)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring_pipelines.demo import load_adult, scenario
from monitoring_pipelines.demo.training import train
from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR
from monitoring_pipelines.validation import load_plan

RAW = Path("/work/shared/data/uci-adult")
RAW_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
]


@pytest.fixture(scope="module")
def plan():
    return load_plan(BUNDLED_PLANS_DIR / "adult_income.yaml")


@pytest.fixture(scope="module")
def adult():
    return load_adult()


@pytest.fixture(scope="module")
def parts(adult):
    return scenario.split(adult)


@pytest.fixture(scope="module")
def model(plan, parts):
    return train(parts[0], plan)


def _generate(plan, pool, model, home: Path) -> dict[str, pd.DataFrame]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MONITORING_HOME", str(home))
        counts = scenario.run_scenario(plan, pool, model, "1")
    base = home / "demo-data" / "adult_income"
    return {
        "counts": counts,
        "base": base,
        "predictions": pd.concat(
            [pd.read_parquet(f) for f in sorted((base / "predictions").glob("*.parquet"))], ignore_index=True
        ),
        "labels": pd.concat(
            [pd.read_parquet(f).assign(file_day=f.stem) for f in sorted((base / "labels").glob("*.parquet"))],
            ignore_index=True,
        ),
    }


@pytest.fixture(scope="module")
def generated(plan, parts, model, tmp_path_factory):
    return _generate(plan, parts[2], model, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def by_day(generated, plan):
    preds = generated["predictions"]
    start = pd.Timestamp(plan.schedule.start_date)
    day_index = (preds["ts"].dt.tz_localize(None).dt.normalize() - start).dt.days + 1
    return {i: g for i, g in preds.groupby(day_index)}


# ----------------------------------------------------------------------------------------------------------
# the data copy


def _raw_rows(name: str) -> list[list[str]]:
    lines = (RAW / name).read_text().splitlines()
    return [ln.split(", ") for ln in lines if ln.strip() and not ln.startswith("|")]


def test_compressed_copy_matches_the_raw_files(adult):
    raw = _raw_rows("adult.data") + _raw_rows("adult.test")
    assert len(raw) == len(adult) == 48_842
    assert (adult["source"] == "train").sum() == len(_raw_rows("adult.data")) == 32_561
    assert adult["label"].sum() == sum(r[-1].rstrip(".") == ">50K" for r in raw) == 11_687
    # Cell by cell, parsed independently of pandas' CSV reader: '?' <-> NaN, everything else verbatim.
    expected = pd.DataFrame([r[:-1] for r in raw], columns=RAW_COLUMNS).replace("?", "<NA>")
    actual = adult[RAW_COLUMNS].astype(str).replace("nan", "<NA>")
    pd.testing.assert_frame_equal(actual, expected)
    assert list(adult.columns) == [*RAW_COLUMNS, "label", "source"]
    readme = (Path(scenario.__file__).parent / "data" / "README.md").read_text()
    assert "10.24432/C5XW20" in readme and "CC BY 4.0" in readme


# ----------------------------------------------------------------------------------------------------------
# split and training


def test_split_is_deterministic_and_disjoint(adult, parts):
    train_df, reference_df, pool = parts
    assert len(reference_df) == scenario.REFERENCE_ROWS
    assert len(train_df) == round(0.6 * len(adult)) and len(pool) == len(adult) - len(train_df) - 5000
    indexes = [set(p.index) for p in parts]
    assert not (indexes[0] & indexes[1] or indexes[0] & indexes[2] or indexes[1] & indexes[2])
    assert set().union(*indexes) == set(adult.index)
    for a, b in zip(parts, scenario.split(adult)):
        pd.testing.assert_frame_equal(a, b)


def test_training_is_deterministic_and_survives_an_all_null_column(plan, parts, model):
    train_df, reference_df, _ = parts
    again = train(train_df, plan)
    np.testing.assert_array_equal(model[-1].coef_, again[-1].coef_)
    x = reference_df[plan.features.model_inputs].head(200).copy()
    for broken in (pd.Series([None] * len(x), index=x.index, dtype="object"), np.nan):
        x["occupation"] = broken
        score = model.predict_proba(x)[:, 1]
        assert np.isfinite(score).all()


# ----------------------------------------------------------------------------------------------------------
# the generated scenario


def test_files_follow_the_plan_layout(generated, plan, by_day):
    preds, base = generated["predictions"], generated["base"]
    days = [d.isoformat() for _, d in scenario.scenario_days(plan)]
    assert [f.stem for f in sorted((base / "predictions").glob("*.parquet"))] == days
    assert set(plan.logged_columns) <= set(preds.columns)
    assert preds["request_id"].is_unique and len(preds) == generated["counts"]["predictions"]
    assert sorted(by_day) == list(range(1, 31))
    assert all(scenario.DAILY_ROWS[0] <= len(g) <= scenario.DAILY_ROWS[1] for g in by_day.values())
    ok = preds["status"] == "ok"
    assert 0.0005 < (~ok).mean() < 0.005  # ~0.2% background errors
    assert preds.loc[~ok, "score"].isna().all() and preds.loc[ok, "score"].notna().all()
    assert (preds.loc[ok, "predicted_label"] == (preds.loc[ok, "score"] >= 0.5).astype(int)).all()
    hours = preds["ts"].dt.hour
    assert hours.between(9, 16).mean() > 2 * hours.between(0, 7).mean()  # business hours are busier


def test_scores_are_the_champions_on_the_rows_as_served(by_day, model, plan):
    day8 = by_day[8]
    ok = day8[day8["status"] == "ok"]
    np.testing.assert_allclose(ok["score"], model.predict_proba(ok[plan.features.model_inputs])[:, 1])


def test_events_are_in_the_data(by_day):
    assert by_day[8]["occupation"].isna().all()  # broken feature pipeline
    assert all(by_day[i]["occupation"].isna().mean() < 0.1 for i in by_day if i != 8)

    female = {i: (g["sex"] == "Female").mean() for i, g in by_day.items()}
    clean = [female[i] for i in range(1, 12)]
    assert min(clean) > 0.28 and all(female[i] < 0.15 for i in range(20, 24))  # protected-group shift
    assert female[19] > 0.25 and female[24] > 0.2

    assert by_day[30]["age"].mean() > by_day[5]["age"].mean() + 6  # gradual drift
    assert by_day[30]["hours_per_week"].mean() > by_day[5]["hours_per_week"].mean() + 7
    assert abs(by_day[11]["age"].mean() - by_day[1]["age"].mean()) < 1.5

    p99 = {i: g["latency_ms"].quantile(0.99) for i, g in by_day.items()}
    normal = [v for i, v in p99.items() if i != 17]
    assert p99[17] > 4 * max(normal) and max(normal) < 300  # latency spike, day 17 only


def test_labels_arrive_three_days_later_filed_by_arrival_day(generated, plan, by_day):
    preds, labels = generated["predictions"], generated["labels"]
    assert labels["request_id"].is_unique
    assert (labels["labelled_at"].dt.strftime("%Y-%m-%d") == labels["file_day"]).all()
    joined = labels.merge(preds[["request_id", "ts", "status"]], on="request_id", validate="one_to_one")
    delay = joined["labelled_at"] - joined["ts"]
    assert delay.min() >= pd.Timedelta(days=3)
    assert delay.max() <= pd.Timedelta(days=3, hours=scenario.LABEL_JITTER_HOURS)
    assert (joined["status"] == "ok").all()
    # Nothing arrives after the last scenario day, so days 28-30 have no labels and day 27 only some.
    assert labels["labelled_at"].max() < pd.Timestamp("2026-01-31", tz="UTC")
    coverage = {
        i: g["request_id"].isin(labels["request_id"]).sum() / (g["status"] == "ok").sum() for i, g in by_day.items()
    }
    assert all(coverage[i] == 1.0 for i in range(1, 27))
    assert 0.5 < coverage[27] < 1.0 and coverage[28] == coverage[29] == coverage[30] == 0.0


@pytest.mark.slow
def test_two_runs_write_identical_files(generated, plan, parts, model, tmp_path):
    again = _generate(plan, parts[2], model, tmp_path)

    def digests(base: Path) -> dict[str, str]:
        return {
            str(f.relative_to(base)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(base.rglob("*.parquet"))
        }

    first = digests(generated["base"])
    assert len(first) == 30 + 27 and first == digests(again["base"])  # 30 prediction days, labels arrive days 4-30


@pytest.mark.slow
def test_clean_days_show_no_drift_and_day_30_does(by_day, parts, plan):
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [*plan.features.model_inputs, *plan.features.context]
    definition = DataDefinition(
        numerical_columns=list(plan.features.numerical),
        categorical_columns=[*plan.features.categorical, *plan.features.context],
    )
    reference = Dataset.from_pandas(parts[1][columns], data_definition=definition)

    def drifted(day: int) -> set[str]:
        current = Dataset.from_pandas(by_day[day][columns], data_definition=definition)
        snap = Report([DataDriftPreset(columns=columns)], include_tests=True).run(current, reference)
        tests = snap.dict()["tests"]
        assert len(tests) > len(columns)  # one test per column plus the dataset-level share
        return {
            t["metric_config"]["params"].get("column")
            for t in tests
            if str(getattr(t["status"], "value", t["status"])) == "FAIL"
        }

    assert drifted(3) == set() and drifted(10) == set()
    assert {"age", "hours_per_week"} <= drifted(30)


# ----------------------------------------------------------------------------------------------------------
# champion registration


@pytest.mark.slow
def test_register_champion_in_a_sqlite_registry(plan, parts, tmp_path, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    version = scenario.register_champion(plan, parts[0], parts[1], uri, (tmp_path / "artifacts").as_uri())
    assert version == "1"
    assert "MLFLOW_TRACKING_URI" not in os.environ  # the process-wide setting is left alone
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for models:/ URIs below; undone after the test

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version_by_alias(plan.name, "champion")
    assert str(mv.version) == version and mv.tags["monitoring.role"] == "initial_champion"
    run = client.get_run(mv.run_id)
    assert 0.88 < run.data.metrics["roc_auc"] < 0.95
    assert client.get_experiment(run.info.experiment_id).name == plan.name

    local = mlflow.artifacts.download_artifacts(
        run_id=mv.run_id,
        artifact_path=plan.data.reference.artifact_path,
        dst_path=str(tmp_path / "dl"),
        tracking_uri=uri,
    )
    reference = pd.read_parquet(local)
    assert len(reference) == scenario.REFERENCE_ROWS
    assert list(reference.columns) == [
        *plan.features.model_inputs,
        *plan.features.context,
        "label",
        "score",
        "predicted_label",
    ]
    champion = mlflow.sklearn.load_model(f"models:/{plan.name}@champion")
    np.testing.assert_allclose(reference["score"], champion.predict_proba(reference[plan.features.model_inputs])[:, 1])
    assert (reference["label"].to_numpy() == parts[1]["label"].to_numpy()).all()


# ----------------------------------------------------------------------------------------------------------
# the retraining recipe and the hand-made version of the rollback episode


def test_the_retraining_recipe_beats_the_first_champion_on_drifted_days_it_never_saw(plan, parts, generated, by_day):
    """Honest uplift: the boosted recipe fitted on the training split (disjoint from the traffic pool) ranks
    the drifted days better than the logistic champion; the demo's retrain sees recent traffic and does more."""
    from sklearn.metrics import roc_auc_score

    from monitoring_pipelines.demo.training import train_boosted

    boosted = train_boosted(parts[0].sample(10000, random_state=0), plan)
    gains = []
    for day in (21, 22):
        rows = by_day[day]
        rows = rows[rows["score"].notna()].merge(generated["labels"][["request_id", "label"]], on="request_id")
        gains.append(
            roc_auc_score(rows["label"], boosted.predict_proba(rows[plan.features.model_inputs])[:, 1])
            - roc_auc_score(rows["label"], rows["score"])
        )
    assert 0.01 < min(gains) and max(gains) < 0.03


def test_the_hand_trained_version_ranks_no_better_than_chance(plan, parts, generated, by_day):
    from sklearn.metrics import roc_auc_score

    from monitoring_pipelines.demo.training import train_mislabelled

    bad = train_mislabelled(parts[0].sample(10000, random_state=0), plan)
    rows = by_day[27]
    rows = rows[rows["score"].notna()].merge(generated["labels"][["request_id", "label"]], on="request_id")
    auc = roc_auc_score(rows["label"], bad.predict_proba(rows[plan.features.model_inputs])[:, 1])
    assert 0.4 < auc < 0.6  # far below the plan's critical ROC AUC (0.80): the rollback trigger
    assert plan.thresholds["performance.roc_auc"].critical == 0.80
