"""Champion / challenger end to end: shadow comparison rows, accumulated evidence, the promotion and rollback
sensors (evaluated by Dagster against a real instance, with the code location's resources), the alias moves
in a real SQLite MLflow registry, and the faults: registry unreachable, a version that does not load, a
failure between two alias moves, a retrain that produces a broken version.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from monitoring_pipelines import settings
from monitoring_pipelines.actions import operations as actions
from monitoring_pipelines.actions.registry import TAG_EVIDENCE_AFTER, TAG_TRIGGER_DAY, Registry
from monitoring_pipelines.definitions import build_definitions, build_model_defs
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource, ReportsResource
from monitoring_pipelines.demo import load_adult, scenario
from monitoring_pipelines.errors import ActionRefused
from monitoring_pipelines.store.metric_store import MetricStore

M = "adult_income"
PROMOTE_KEY = f"{M}__promote"
ROLLBACK_KEY = f"{M}__rollback"


# --- recipes used by the retrain fault tests (the plan names them as 'module:function') ---------------------


def broken_recipe(window, plan):
    raise RuntimeError("feature store timed out while building the training frame")


def nan_recipe(window, plan):
    """A real fitted pipeline whose coefficients became NaN: it saves and loads, but scores nothing sane."""
    from monitoring_pipelines.demo.training import train

    model = train(window, plan)
    model.named_steps["classifier"].coef_[:] = np.nan
    return model


# --- the world -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(plan):
    from monitoring_pipelines.demo.training import train_boosted, train_mislabelled

    train_df, reference, _ = scenario.split(load_adult())
    return {
        "boosted": train_boosted(train_df.sample(10000, random_state=0), plan),
        "mislabelled": train_mislabelled(train_df.sample(5000, random_state=0), plan),
        "reference": reference,
    }


@dataclass
class World:
    demo: object
    defs: dg.Definitions
    instance: dg.DagsterInstance
    store: MetricStore
    registry: Registry
    models: dict

    @property
    def plan(self):
        return self.demo.plan

    def day(self, i: int) -> dt.date:
        return self.plan.schedule.start_date + dt.timedelta(days=i - 1)

    def register(self, name: str, trigger_day: str | None = None) -> str:
        tags = {TAG_TRIGGER_DAY: trigger_day} if trigger_day else {}
        return scenario.register_version(
            self.plan,
            self.models[name],
            self.models["reference"],
            settings.mlflow_tracking_uri(),
            settings.mlflow_artifact_root(),
            run_name=f"test-{name}",
            estimator=name,
            train_rows=0,
            tags=tags,
        )

    def serve(self, i: int, *, model=None, version=None, labels=True):
        """Scenario day ``i`` served by ``model`` / ``version`` (default the first champion), labels filed."""
        preds, labs = scenario.simulate_day(
            self.plan,
            i,
            self.day(i),
            self.demo.pool,
            model or self.demo.model,
            version or self.demo.version,
            np.random.default_rng([scenario.SEED, i]),
        )
        scenario.write_day(self.plan, preds, labs if labels else labs.iloc[0:0])
        return preds, labs

    def run(self, job: str, defs=None, **kw):
        return (
            (defs or self.defs)
            .resolve_job_def(n.scoped(M, job))
            .execute_in_process(instance=self.instance, raise_on_error=False, **kw)
        )

    def nightly(self, i: int, defs=None):
        result = self.run(n.NIGHTLY_MONITORING, defs, partition_key=self.day(i).isoformat())
        return result

    def tick(self, sensor: str, cursor=None, defs=None):
        defs = defs or self.defs
        s = defs.resolve_sensor_def(n.scoped(M, sensor))
        return s.evaluate_tick(
            dg.build_sensor_context(
                instance=self.instance, cursor=cursor, definitions=defs, resources=defs.resources, sensor_name=s.name
            )
        )

    def launch(self, request: dg.RunRequest, job: str, sensor: str, defs=None):
        """What the daemon does with a sensor's run request."""
        return self.run(
            job,
            defs,
            run_config=request.run_config,
            tags={**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": n.scoped(M, sensor)},
        )

    def refresh_reference(self):
        assert self.run(n.REFRESH_REFERENCE).success

    def comparison_rows(self, i: int) -> pd.DataFrame:
        return self.store.rows(M, family="comparison", start=self.day(i), end=self.day(i))


def _defs(plan, **promote):
    if promote:
        plan = plan.model_copy(
            update={
                "actions": plan.actions.model_copy(update={"promote": plan.actions.promote.model_copy(update=promote)})
            }
        )
    return build_definitions([plan])


@pytest.fixture
def world(demo_world, models):
    with dg.instance_for_test() as instance:
        defs = build_definitions([demo_world.plan])
        store = MetricStore()
        store.migrate()
        w = World(demo_world, defs, instance, store, Registry(settings.mlflow_tracking_uri()), models)
        w.refresh_reference()
        yield w


def _labelled(preds: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    return preds[preds["score"].notna()].merge(labels[["request_id", "label"]], on="request_id")


# --- shadow comparison -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_challenger_is_scored_in_shadow_and_every_row_names_the_version_it_was_computed_for(world):
    v2 = world.register("boosted", trigger_day="2026-01-01")
    world.registry.set_alias(M, "challenger", v2)
    preds, labels = world.serve(2)
    result = world.nightly(2)
    assert result.success
    rows = world.comparison_rows(2)
    candidate = rows[rows["segment"].str.startswith(f"challenger={v2}")]
    assert set(candidate["model_version"]) == {v2} and set(candidate["alias"]) == {"challenger"}
    own = rows[~rows["segment"].str.startswith("challenger=")]
    assert set(own["model_version"]) == {"1"} and set(own["alias"]) == {"champion"}
    fig = rows.set_index(["metric", "segment"])["value"]
    seg = f"challenger={v2}"
    joined = _labelled(preds, labels)
    challenger_scores = world.models["boosted"].predict_proba(joined[world.plan.features.model_inputs])[:, 1]
    expected = roc_auc_score(joined["label"], challenger_scores) - roc_auc_score(joined["label"], joined["score"])
    assert fig["roc_auc_delta", seg] == pytest.approx(expected, abs=1e-12)
    assert fig["roc_auc_delta_ci_low", seg] < fig["roc_auc_delta", seg] < fig["roc_auc_delta_ci_high", seg]
    assert 0 <= fig["roc_auc_delta_p_value", seg] < 0.05 and fig["labelled_rows", seg] == len(joined)
    assert fig["served_rows", "version=1"] == preds["score"].notna().sum()
    assert {"score_drift"} <= set(rows[rows["segment"] == "champion=1"]["metric"])
    # the challenger's prediction drift is measured against its own reference (its run's artifact)
    ref = world.models["reference"]
    ref_scores = world.models["boosted"].predict_proba(ref[world.plan.features.model_inputs])[:, 1]
    served = preds[preds["score"].notna()]
    day_scores = world.models["boosted"].predict_proba(served[world.plan.features.model_inputs])[:, 1]
    assert fig["score_drift", seg] == pytest.approx(
        stats.wasserstein_distance(ref_scores, day_scores) / np.std(ref_scores), rel=1e-9
    )
    meta = result.asset_materializations_for_node(f"{M}__{n.CHALLENGER_COMPARISON}")[0].metadata
    assert (meta["challenger_version"].value, meta["served_version"].value) == (v2, "1")
    assert meta["evidence_days"].value == 1.0
    assert meta["promotion"].value == "1 labelled day(s) of evidence, the plan needs 2"


# --- promotion -----------------------------------------------------------------------------------------------


def _two_days_of_evidence(world, defs=None) -> str:
    """A boosted challenger trained on data up to day 1, compared on days 1 (does not count), 2 and 3."""
    v2 = world.register("boosted", trigger_day="2026-01-01")
    world.registry.set_alias(M, "challenger", v2)
    for i in (1, 2):
        world.serve(i)
        assert world.nightly(i, defs).success
    data = world.tick(n.PROMOTE_SENSOR, defs=defs)
    assert not data.run_requests
    assert data.skip_message.endswith("not promoted: 1 labelled day(s) of evidence, the plan needs 2")
    world.serve(3)
    assert world.nightly(3, defs).success
    return v2


@pytest.mark.slow
def test_evidence_accumulates_and_the_promotion_runs_once_and_never_again_from_the_same_evidence(world):
    v2 = _two_days_of_evidence(world)
    # two ticks racing on the same state ask for the same run: the daemon starts one
    first, second = world.tick(n.PROMOTE_SENSOR), world.tick(n.PROMOTE_SENSOR)
    (request,) = first.run_requests
    assert [r.run_key for r in second.run_requests] == [request.run_key] == [f"promote:{M}:v{v2}:2026-01-03"]
    # the evidence is days 2 and 3 (day 1 is in the training window), combined with Stouffer's method
    stored = world.store.rows(M, family="comparison", start=world.day(1), end=world.day(3))
    per_day = stored[stored["segment"] == f"challenger={v2}"].pivot(
        index="partition_date", columns="metric", values="value"
    )
    days = per_day.loc[[world.day(2), world.day(3)]]
    z, p = stats.combine_pvalues(
        stats.norm.sf(days["roc_auc_delta_z"]), method="stouffer", weights=np.sqrt(days["labelled_rows"])
    )
    assert per_day.loc[world.day(3), "evidence_days"] == 2.0
    assert per_day.loc[world.day(3), "evidence_z"] == pytest.approx(z, rel=1e-9)
    assert per_day.loc[world.day(3), "evidence_p_value"] == pytest.approx(p, rel=1e-6)
    assert (
        "better on 2 of 2 labelled days (2026-01-02..2026-01-03"
        in request.run_config["ops"][PROMOTE_KEY]["config"]["reason"]
    )
    run = world.launch(request, n.PROMOTE_CHALLENGER, n.PROMOTE_SENSOR)
    assert run.success
    assert world.registry.aliases(M) == {"champion": v2, "previous_champion": "1"}
    audit = world.store.actions(M)
    assert list(zip(audit["action"], audit["status"], audit["to_version"], audit["actor"])) == [
        ("promote", "succeeded", v2, n.scoped(M, n.PROMOTE_SENSOR))
    ]
    assert world.tick(n.PROMOTE_SENSOR).skip_message == "no challenger"
    # a person rolls it back; made challenger again, the evidence that promoted it does not count twice
    back = world.run(n.ROLLBACK_CHAMPION, run_config={"ops": {ROLLBACK_KEY: {"config": {"reason": "test"}}}})
    assert back.success and world.registry.aliases(M) == {"champion": "1"}
    assert world.registry.version(M, v2).tags[TAG_EVIDENCE_AFTER] == "2026-01-03"
    # nothing left to roll back to: refused, and audited as such
    with pytest.raises(ActionRefused, match="no previous_champion"):
        actions.rollback(world.plan, world.registry, world.store, reason="again", run_id="r", actor="test")
    assert list(world.store.actions(M)["status"])[-2:] == ["succeeded", "refused"]
    world.registry.set_alias(M, "challenger", v2)
    again = world.tick(n.PROMOTE_SENSOR)
    assert not again.run_requests
    assert again.skip_message.startswith(f"challenger v{v2}: no labelled day of evidence yet; not promoted: 0 labelled")


@pytest.mark.slow
def test_manual_approval_records_one_pending_request_visible_in_the_ui_and_moves_nothing(world):
    manual = _defs(world.plan, approval="manual")
    v2 = _two_days_of_evidence(world, manual)
    first, second = world.tick(n.PROMOTE_SENSOR, defs=manual), world.tick(n.PROMOTE_SENSOR, defs=manual)
    assert not first.run_requests and not second.run_requests
    assert first.skip_message.endswith(f"awaiting approval: launch {n.scoped(M, n.PROMOTE_CHALLENGER)}")
    (observation,) = first.asset_events
    assert observation.asset_key == n.key(M, n.CHALLENGER_COMPARISON) and observation.partition == "2026-01-03"
    assert observation.metadata["pending_promotion"].value == f"v{v2}"
    assert not second.asset_events  # recorded once
    pending = world.store.actions(M)
    assert list(zip(pending["action"], pending["status"], pending["to_version"])) == [
        ("promote", "pending_approval", v2)
    ]
    assert world.registry.aliases(M) == {"champion": "1", "challenger": v2}
    # the person approves by launching the job
    run = world.run(n.PROMOTE_CHALLENGER, manual, run_config={"ops": {PROMOTE_KEY: {"config": {"reason": "ok"}}}})
    assert run.success and world.registry.aliases(M) == {"champion": v2, "previous_champion": "1"}
    audit = world.store.actions(M)
    assert list(zip(audit["status"], audit["actor"])) == [
        ("succeeded", n.scoped(M, n.PROMOTE_SENSOR)),
        ("succeeded", "user"),
    ]
    assert audit["reason"].iloc[0] == f"approved: promoted by run {run.run_id}"


# --- rollback -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_rollback_follows_the_served_version_and_returns_to_a_previous_champion_that_was_better(world):
    bad = world.register("mislabelled")
    world.registry.set_alias(M, "challenger", bad)
    by_hand = world.run(n.PROMOTE_CHALLENGER, run_config={"ops": {PROMOTE_KEY: {"config": {"reason": "hotfix"}}}})
    assert by_hand.success and world.registry.aliases(M) == {"champion": bad, "previous_champion": "1"}
    world.refresh_reference()
    # day 4 was still served by version 1 (the log says so) although the job runs after the promotion
    world.serve(4)
    assert world.nightly(4).success
    data = world.tick(n.ROLLBACK_SENSOR)
    assert not data.run_requests and data.skip_message == f"champion v{bad} has served no monitored day yet"
    # day 5 is served by the hand-promoted version: its labels reveal a ranking no better than chance
    preds, labels = world.serve(5, model=world.models["mislabelled"], version=bad)
    assert world.nightly(5).success
    perf = world.store.rows(M, family="performance", metric="roc_auc", start=world.day(5), end=world.day(5))
    assert perf["status"].iloc[0] == "critical"
    # more model_health records than one page: the sensor still looks at the newest
    for _ in range(510):
        world.instance.report_runless_asset_event(
            dg.AssetMaterialization(n.key(M, n.MODEL_HEALTH), partition="2026-01-05")
        )
    newest = world.instance.fetch_materializations(n.key(M, n.MODEL_HEALTH), limit=1).records[0].storage_id
    first, second = world.tick(n.ROLLBACK_SENSOR, data.cursor), world.tick(n.ROLLBACK_SENSOR, data.cursor)
    assert first.cursor == str(newest)
    (request,) = first.run_requests
    since = world.registry.version(M, bad).tags["monitoring.champion_since"]
    assert [r.run_key for r in second.run_requests] == [request.run_key] == [f"rollback:{M}:v{bad}:{since}"]
    reason = request.run_config["ops"][ROLLBACK_KEY]["config"]["reason"]
    assert reason.startswith(f"champion v{bad} breached performance.critical on 2026-01-05 (served day 1 of 7)")
    # the previous champion was scored in shadow on the same rows and was better
    rows = world.comparison_rows(5)
    prev = rows[rows["segment"] == "previous_champion=1"].set_index("metric")
    assert set(prev["model_version"]) == {"1"} and set(prev["alias"]) == {"previous_champion"}
    joined = _labelled(preds, labels)
    v1_scores = world.demo.model.predict_proba(joined[world.plan.features.model_inputs])[:, 1]
    assert prev.loc["roc_auc_delta", "value"] == pytest.approx(
        roc_auc_score(joined["label"], v1_scores) - roc_auc_score(joined["label"], joined["score"]), abs=1e-12
    )
    assert prev.loc["roc_auc_delta", "value"] > 0.3
    run = world.launch(request, n.ROLLBACK_CHAMPION, n.ROLLBACK_SENSOR)
    assert run.success and world.registry.aliases(M) == {"champion": "1"}
    assert world.registry.version(M, bad).tags[TAG_EVIDENCE_AFTER] == "2026-01-05"
    assert world.tick(n.ROLLBACK_SENSOR, first.cursor).skip_message == "no new model_health"
    # version 1 is champion again: its reference is profiled again, under a key of this stint as champion
    stint = world.registry.version(M, "1").tags["monitoring.champion_since"]
    (refresh,) = world.tick(n.REFERENCE_SENSOR).run_requests
    assert refresh.run_key == f"reference:{M}:v1:{stint}:0"


@pytest.mark.slow
def test_no_rollback_without_shadow_evidence_that_the_previous_champion_was_better(world):
    bad = world.register("mislabelled")
    world.registry.set_alias(M, "challenger", bad)
    assert world.run(n.PROMOTE_CHALLENGER, run_config={"ops": {PROMOTE_KEY: {"config": {"reason": "x"}}}}).success
    world.refresh_reference()
    # the previous champion alias now names a version that is just as bad (a person re-pointed it)
    world.registry.set_alias(M, "previous_champion", bad)
    world.serve(5, model=world.models["mislabelled"], version=bad)
    assert world.nightly(5).success
    data = world.tick(n.ROLLBACK_SENSOR)
    assert not data.run_requests
    assert data.skip_message == (
        f"champion v{bad} breached ['2026-01-05'], but previous champion v{bad} was not "
        "scored on them; not rolling back"
    )


# --- faults -------------------------------------------------------------------------------------------------


def test_an_unreachable_registry_fails_the_promotion_naming_model_and_registry(world, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    v2 = world.register("boosted")
    world.registry.set_alias(M, "challenger", v2)
    down = dg.Definitions.merge(
        build_model_defs(world.plan),
        dg.Definitions(
            resources={
                "store": MetricStoreResource(),
                "registry": RegistryResource(tracking_uri="http://127.0.0.1:9"),
                "reports": ReportsResource(),
            },
            executor=dg.in_process_executor,
        ),
    )
    run = world.run(n.PROMOTE_CHALLENGER, down, run_config={"ops": {PROMOTE_KEY: {"config": {"reason": "x"}}}})
    assert not run.success
    message = run.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert f"model {M}: reading its aliases: MLflow registry at http://127.0.0.1:9 failed" in message
    audit = world.store.actions(M)
    assert list(audit["status"]) == ["failed"] and "http://127.0.0.1:9" in audit["reason"].iloc[0]
    assert world.registry.aliases(M) == {"champion": "1", "challenger": v2}


@pytest.mark.slow
def test_a_version_that_does_not_load_is_never_promoted_and_fails_its_comparison_loudly(world):
    v2 = world.register("boosted", trigger_day="2026-01-01")
    world.registry.set_alias(M, "challenger", v2)
    location = world.registry.client.get_model_version_download_uri(M, v2)
    shutil.rmtree(Path(urlparse(location).path) if location.startswith("file:") else Path(location))
    run = world.run(n.PROMOTE_CHALLENGER, run_config={"ops": {PROMOTE_KEY: {"config": {"reason": "x"}}}})
    assert not run.success
    message = run.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert f"model {M} version {v2} (challenger): cannot be loaded from the MLflow registry" in message
    assert world.registry.aliases(M) == {"champion": "1", "challenger": v2}
    assert list(world.store.actions(M)["status"]) == ["failed"]
    world.serve(2)
    nightly = world.nightly(2)
    assert not nightly.success
    failure = {e.step_key: e.event_specific_data.error.to_string() for e in nightly.get_step_failure_events()}
    assert list(failure) == [f"{M}__{n.CHALLENGER_COMPARISON}"]
    assert (
        f"model {M} day 2026-01-02: shadow comparison of the challenger: model {M} version {v2}"
        in failure[f"{M}__{n.CHALLENGER_COMPARISON}"]
    )
    assert world.comparison_rows(2).empty  # nothing half-written


def test_a_registry_failure_between_two_alias_moves_restores_every_alias(world):
    v2 = world.register("boosted")
    world.registry.set_alias(M, "challenger", v2)
    db = urlparse(settings.mlflow_tracking_uri()).path
    db = db[1:] if db.startswith("//") else db
    with sqlite3.connect(db) as con:  # the database refuses the second move (as a full disk or a lock would)
        for event in ("INSERT", "UPDATE"):
            con.execute(
                f"CREATE TRIGGER refuse_{event.lower()} BEFORE {event} ON registered_model_aliases "
                "WHEN NEW.alias = 'previous_champion' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
            )
    run = world.run(n.PROMOTE_CHALLENGER, run_config={"ops": {PROMOTE_KEY: {"config": {"reason": "x"}}}})
    assert not run.success
    message = run.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert "failed at 'previous_champion'" in message and "the aliases were restored" in message
    assert world.registry.aliases(M) == {"champion": "1", "challenger": v2}
    assert list(world.store.actions(M)["status"]) == ["failed"]


@pytest.mark.parametrize(
    ("recipe", "expected"),
    [
        ("broken_recipe", "RuntimeError: feature store timed out"),
        ("nan_recipe", "holdout scores are not probabilities (NaN or outside [0, 1]); nothing was registered"),
    ],
    ids=["recipe raises", "recipe returns a model that scores NaN"],
)
def test_a_failing_retrain_never_leaves_the_challenger_alias_on_a_broken_version(world, recipe, expected):
    good = world.register("boosted")
    world.registry.set_alias(M, "challenger", good)
    plan = world.plan.model_copy(
        update={
            "actions": world.plan.actions.model_copy(
                update={"retrain": world.plan.actions.retrain.model_copy(update={"recipe": f"test_promotion:{recipe}"})}
            )
        }
    )
    defs = build_definitions([plan])
    for i in (1, 2):
        world.serve(i)
    versions_before = {mv.version for mv in world.registry.client.search_model_versions(f"name='{M}'")}
    run = world.run(n.RETRAIN_MODEL, defs, run_config={"ops": {f"{M}__retrain": {"config": {"day": "2026-01-05"}}}})
    assert not run.success
    assert expected in run.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert world.registry.aliases(M) == {"champion": "1", "challenger": good}
    audit = world.store.actions(M)
    assert list(audit["status"]) == ["failed"] and expected in audit["reason"].iloc[0]
    assert {mv.version for mv in world.registry.client.search_model_versions(f"name='{M}'")} == versions_before


def test_registry_errors_never_carry_the_tracking_uri_password(monkeypatch):
    """MLflow's own message quotes the whole URL; what we raise (and audit) must not."""
    from monitoring_pipelines.actions.registry import Registry
    from monitoring_pipelines.errors import RegistryError
    from monitoring_pipelines_tests.local_servers import closed_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    registry = Registry(f"http://alice:s3cretPW@127.0.0.1:{closed_port()}")
    with pytest.raises(RegistryError) as err:
        registry.aliases("adult_income")
    assert "s3cretPW" not in str(err.value) and "alice:***@127.0.0.1" in str(err.value)
    assert "API request" in str(err.value)  # MLflow's own (scrubbed) message is kept
