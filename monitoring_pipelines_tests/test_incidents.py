"""Incidents (monitoring_pipelines.incidents.tracker) on SQLite and the real local PostgreSQL: open, attach segments,
escalate, resolve after ok days; idempotent re-runs, old days re-run later, manual acknowledge and resolve, the
timeline and the response-time figures. Figures are judged and stored as the assets do (health.judge +
MetricStore.replace_rows) before each evaluation."""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
import pytest
from sqlalchemy import text

from monitoring_pipelines.incidents import tracker as incidents
from monitoring_pipelines.incidents.tracker import IncidentChange, IncidentError
from monitoring_pipelines.judge.health import judge, read_history
from monitoring_pipelines.judge.metrics import Family, MetricValue
from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR, parse_plan, read_yaml
from monitoring_pipelines.store.metric_store import MetricStore

M = "adult_income"
D = [None] + [dt.date(2026, 1, i) for i in range(1, 31)]  # D[1] = 2026-01-01
UTC = dt.UTC


def at(day: int, hour: int = 2) -> dt.datetime:
    """The wall-clock moment of the nightly run after day ``day`` (the next day at ``hour``:00 UTC)."""
    return dt.datetime(2026, 1, day, hour, tzinfo=UTC) + dt.timedelta(days=1)


@pytest.fixture(scope="module")
def plan():
    raw = read_yaml((BUNDLED_PLANS_DIR / "adult_income.yaml").read_text())
    raw["thresholds"] = {
        "drift.feature_drift_score": {"warning": 0.1, "critical": 0.2},
        "performance.roc_auc": {"warning": 0.85, "critical": 0.80, "direction": "min"},
        "fairness.equal_opportunity_difference": {"warning": 0.25, "critical": 0.40},
    }
    raw["incidents"] = {"resolve_after_ok_days": 2}
    return parse_plan(raw, "plan.yaml")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'metrics.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_schema_url")
    )
    s = MetricStore(url)
    s.migrate()
    yield s
    s.dispose()


def put(store, plan, day: int, family: Family, figures: dict, *, version="1"):
    """Judge and store one family's figures of day ``day``: ``figures`` maps (metric, segment) -> value."""
    values = [MetricValue(family, metric, v, seg) for (metric, seg), v in figures.items()]
    rows = judge(
        plan,
        D[day],
        values,
        model_version=version,
        alias="champion",
        run_id=f"run-{day}",
        history=read_history(store, plan, D[day], [family.value]),
    )
    store.replace_rows(M, D[day], [family.value], rows)


def drift(store, plan, day: int, **scores):
    put(
        store,
        plan,
        day,
        Family.DRIFT,
        {("feature_drift_score", f): v for f, v in scores.items()}
        | {("feature_drifted", f): float(v >= 0.1) for f, v in scores.items()},
    )


def auc(store, plan, day: int, value):
    put(store, plan, day, Family.PERFORMANCE, {("roc_auc", ""): value})


def evaluate(store, plan, day: int, now=None) -> list[IncidentChange]:
    rows = store.rows(M, start=D[day], end=D[day])
    return incidents.update(store, plan, D[day], rows, run_id=f"health-{day}", now=now or at(day))


def kinds(changes) -> list[tuple[str, str]]:
    return [(c.kind, c.severity) for c in changes]


# -- lifecycle --------------------------------------------------------------------------------------------------


def test_breach_opens_segments_attach_severity_escalates_and_ok_days_resolve(store, plan):
    drift(store, plan, 1, age=0.15, education=0.02)
    [opened] = evaluate(store, plan, 1)
    assert (opened.kind, opened.severity, opened.previous_severity) == ("opened", "warning", None)
    assert (opened.family, opened.metric, opened.segments, opened.segment) == (
        "drift",
        "feature_drift_score",
        ("age",),
        "age",
    )
    assert (opened.day, opened.value, opened.threshold, opened.direction) == (D[1], 0.15, 0.1, "max")
    assert opened.model == M and opened.model_version == "1" and opened.run_id == "health-1"
    assert opened.context["top_drifted_features"][0] == {"feature": "age", "score": 0.15, "drifted": True}
    assert opened.context["breaches"] == ["drift.feature_drift_score[age] = 0.15 (warning, threshold 0.1, absolute)"]

    drift(store, plan, 2, age=0.12, education=0.13)  # another feature of the same metric: same incident
    assert evaluate(store, plan, 2) == []
    drift(store, plan, 3, age=0.25, education=0.05)
    [esc] = evaluate(store, plan, 3)
    assert (esc.kind, esc.severity, esc.previous_severity, esc.incident_id) == (
        "escalated",
        "critical",
        "warning",
        opened.incident_id,
    )
    assert esc.segments == ("age", "education") and esc.value == 0.25 and esc.threshold == 0.2

    drift(store, plan, 4, age=0.01, education=0.01)
    assert evaluate(store, plan, 4) == []  # one ok day of the two the plan asks for
    drift(store, plan, 5, age=0.01, education=0.01)
    [res] = evaluate(store, plan, 5)
    assert (res.kind, res.severity, res.previous_severity, res.day) == ("resolved", "ok", "critical", D[5])
    assert res.context["ok_days"] == ["2026-01-04", "2026-01-05"] and res.context["resolution"] == "auto"

    [inc] = incidents.incidents(store, M).itertuples()
    assert (inc.state, inc.severity, inc.segments, inc.first_day, inc.last_breach_day, inc.closed_day) == (
        "resolved",
        "critical",
        ["age", "education"],
        D[1],
        D[3],
        D[5],
    )
    assert inc.resolution == "auto" and inc.resolved_by == "auto"
    events = incidents.timeline(store, inc.id)
    assert list(zip(events["kind"], events["day"])) == [
        ("opened", D[1]),
        ("attached", D[2]),
        ("attached", D[3]),
        ("escalated", D[3]),
        ("resolved", D[5]),
    ]
    assert events.loc[1, "segments"] == ["age", "education"] and list(events["seq"]) == [1, 2, 3, 4, 5]

    drift(store, plan, 6, age=0.3)  # a breach after the resolution: a new incident
    [again] = evaluate(store, plan, 6)
    assert again.kind == "opened" and again.incident_id != opened.incident_id and again.severity == "critical"


def test_unknown_days_neither_count_as_ok_nor_reset_the_wait(store, plan):
    auc(store, plan, 1, 0.70)
    assert kinds(evaluate(store, plan, 1)) == [("opened", "critical")]
    auc(store, plan, 2, None)  # a partial day: not judged
    auc(store, plan, 3, 0.90)
    assert evaluate(store, plan, 2) == [] and evaluate(store, plan, 3) == []
    auc(store, plan, 4, 0.91)
    [res] = evaluate(store, plan, 4)
    assert res.kind == "resolved" and res.context["ok_days"] == ["2026-01-03", "2026-01-04"]


# -- idempotence and order --------------------------------------------------------------------------------------


def test_rerunning_a_day_opens_no_duplicate_and_does_not_escalate_twice(store, plan):
    drift(store, plan, 1, age=0.15)
    assert len(evaluate(store, plan, 1)) == 1
    drift(store, plan, 1, age=0.15)  # the day re-run: same figures
    assert evaluate(store, plan, 1) == []
    drift(store, plan, 2, age=0.3)
    assert kinds(evaluate(store, plan, 2)) == [("escalated", "critical")]
    assert evaluate(store, plan, 2) == [] and evaluate(store, plan, 1) == []
    [inc] = incidents.incidents(store, M).itertuples()
    assert list(incidents.timeline(store, inc.id)["kind"]) == ["opened", "attached", "escalated"]


def test_late_labels_for_an_earlier_day_attach_to_the_incident_and_it_starts_earlier(store, plan):
    auc(store, plan, 3, 0.82)
    [opened] = evaluate(store, plan, 3)
    auc(store, plan, 2, 0.78)  # day 2's labels land after day 3 was evaluated
    [esc] = evaluate(store, plan, 2)
    assert (esc.kind, esc.incident_id, esc.day) == ("escalated", opened.incident_id, D[2])
    [inc] = incidents.incidents(store, M).itertuples()
    assert (inc.first_day, inc.last_breach_day, inc.value) == (D[2], D[3], 0.82)  # it shows its latest day


def test_rerunning_an_old_day_of_a_resolved_incident_never_reopens_it(store, plan):
    for day, value in [(1, 0.82), (2, 0.83), (3, 0.90), (4, 0.90), (5, 0.90)]:
        auc(store, plan, day, value)
        evaluate(store, plan, day)
    [inc] = incidents.incidents(store, M).itertuples()
    assert (inc.state, inc.closed_day) == ("resolved", D[4])
    auc(store, plan, 2, 0.70)  # re-run later with worse figures
    assert evaluate(store, plan, 2) == []
    auc(store, plan, 4, 0.70)  # even its resolution day
    assert evaluate(store, plan, 4) == []
    [after] = incidents.incidents(store, M).itertuples()
    assert (after.id, after.state, after.severity, after.closed_day) == (inc.id, "resolved", "warning", D[4])
    events = incidents.timeline(store, inc.id)
    assert list(events["kind"]) == ["opened", "attached", "resolved", "attached"]
    assert "not reopened" in events["note"].iloc[-1]
    auc(store, plan, 6, 0.70)  # a later day is a new incident
    assert kinds(evaluate(store, plan, 6)) == [("opened", "critical")]


def test_a_backfilled_breach_before_an_incident_is_its_own_incident_only_if_ok_days_came_between(store, plan):
    auc(store, plan, 10, 0.82)
    [later] = evaluate(store, plan, 10)
    for day in (4, 5):  # the ok days between day 3 and day 10 are stored already
        auc(store, plan, day, 0.9)
    auc(store, plan, 3, 0.82)
    changes = evaluate(store, plan, 3)
    assert [(c.kind, c.day) for c in changes] == [("opened", D[3]), ("resolved", D[5])]
    assert changes[0].incident_id != later.incident_id
    auc(store, plan, 8, 0.70)  # day 9 not evaluated: no recovery between day 8 and day 10
    [esc] = evaluate(store, plan, 8)
    assert (esc.kind, esc.incident_id) == ("escalated", later.incident_id)
    frame = incidents.incidents(store, M).set_index("id")
    assert frame.loc[later.incident_id, "first_day"] == D[8] and frame.loc[later.incident_id, "state"] == "open"
    assert len(frame) == 2


def test_concurrent_evaluations_of_the_same_day_open_one_incident(store, plan):
    drift(store, plan, 1, age=0.15)
    rows = store.rows(M, start=D[1], end=D[1])
    stores = [MetricStore(store.url.render_as_string(hide_password=False)) for _ in range(3)]
    barrier, results, errors = threading.Barrier(3), [], []

    def run(s):
        try:
            barrier.wait()
            results.append(incidents.update(s, plan, D[1], rows, now=at(1)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    [t.start() for t in threads]
    [t.join() for t in threads]
    [s.dispose() for s in stores]
    assert errors == []
    assert sorted(len(r) for r in results) == [0, 0, 1]
    assert len(incidents.incidents(store, M)) == 1


# -- people -----------------------------------------------------------------------------------------------------


def test_acknowledge_then_escalation_reopens_and_a_person_resolves(store, plan):
    auc(store, plan, 1, 0.84)
    [opened] = evaluate(store, plan, 1)
    ack = incidents.acknowledge(store, opened.incident_id, actor="alice", note="looking", now=at(1, 3))
    assert (ack.kind, ack.severity, ack.context["actor"]) == ("acknowledged", "warning", "alice")
    assert incidents.incidents(store, M)["state"].tolist() == ["acknowledged"]
    auc(store, plan, 2, 0.84)
    assert evaluate(store, plan, 2) == []  # still acknowledged: nothing new to say
    assert incidents.incidents(store, M)["state"].tolist() == ["acknowledged"]
    auc(store, plan, 3, 0.75)
    assert kinds(evaluate(store, plan, 3)) == [("escalated", "critical")]
    assert incidents.incidents(store, M)["state"].tolist() == ["open"]  # worse now: needs a person again

    res = incidents.resolve(store, opened.incident_id, actor="bob", note="fixed the join", now=at(3, 9))
    assert (res.kind, res.severity, res.previous_severity, res.day) == ("resolved", "ok", "critical", D[3])
    [inc] = incidents.incidents(store, M).itertuples()
    assert (inc.state, inc.resolution, inc.resolved_by, inc.closed_day, inc.acknowledged_by) == (
        "resolved",
        "manual",
        "bob",
        D[3],
        "alice",
    )
    assert evaluate(store, plan, 3) == []  # its own day re-run: recorded, not reopened
    with pytest.raises(IncidentError, match=f"incident {opened.incident_id} of model adult_income .* already resolved"):
        incidents.acknowledge(store, opened.incident_id, actor="carol")
    with pytest.raises(IncidentError, match="no incident with id 'nope'"):
        incidents.resolve(store, "nope", actor="carol")
    with pytest.raises(ValueError, match="actor"):
        incidents.resolve(store, opened.incident_id, actor=" ")
    auc(store, plan, 4, 0.75)
    assert kinds(evaluate(store, plan, 4)) == [("opened", "critical")]
    events = incidents.timeline(store, opened.incident_id)
    assert list(zip(events["kind"], events["actor"])) == [
        ("opened", "auto"),
        ("acknowledged", "alice"),
        ("attached", "auto"),
        ("attached", "auto"),
        ("escalated", "auto"),
        ("resolved", "bob"),
    ]


def test_timeline_and_response_times(store, plan):
    auc(store, plan, 1, 0.84)
    [a] = evaluate(store, plan, 1, now=at(1))  # opened at 2026-01-02 02:00, 2 h after day 1 ended
    incidents.acknowledge(store, a.incident_id, actor="alice", now=at(1, 5))
    incidents.record_notified(store, a.incident_id, channel="slack:#ml", note="opened: delivered", at=at(1, 2))
    for day in (2, 3):
        auc(store, plan, day, 0.9)
        evaluate(store, plan, day, now=at(day))  # resolved on day 3's run: 2026-01-04 02:00
    drift(store, plan, 2, age=0.3)
    [b] = evaluate(store, plan, 2, now=at(2, 8))  # opened 8 h after day 2 ended, still open

    events = incidents.timeline(store, a.incident_id)
    assert list(events["kind"]) == ["opened", "acknowledged", "notified", "resolved"]
    assert events["at"].tolist() == [
        pd.Timestamp(at(1)),
        pd.Timestamp(at(1, 5)),
        pd.Timestamp(at(1, 2)),
        pd.Timestamp(at(3)),
    ]
    assert events.loc[2, "actor"] == "slack:#ml" and pd.isna(events.loc[2, "day"])

    rt = incidents.response_times(store, M).set_index("id")
    assert rt.loc[a.incident_id, "time_to_detect"] == pd.Timedelta(hours=2)
    assert rt.loc[a.incident_id, "time_to_acknowledge"] == pd.Timedelta(hours=3)
    assert rt.loc[a.incident_id, "time_to_resolve"] == pd.Timedelta(hours=48)
    assert rt.loc[a.incident_id, "days_to_resolve"] == 2.0  # first breached day 1 -> resolved on day 3
    assert rt.loc[b.incident_id, "time_to_detect"] == pd.Timedelta(hours=8)
    assert pd.isna(rt.loc[b.incident_id, "time_to_resolve"])
    s = incidents.stats(store, M)
    assert (s.open, s.acknowledged, s.resolved, s.open_critical) == (1, 0, 1, 1)
    assert s.mean_time_to_detect == pd.Timedelta(hours=5) and s.mean_time_to_resolve == pd.Timedelta(hours=48)
    assert s.mean_days_to_resolve == 2.0


def test_no_incidents_give_empty_figures(store, plan):
    s = incidents.stats(store, M)
    assert (s.open, s.resolved, s.mean_time_to_detect, s.mean_days_to_resolve) == (0, 0, None, None)
    assert incidents.response_times(store, M).empty


# -- context ----------------------------------------------------------------------------------------------------


def test_fairness_gap_names_the_worst_group_of_the_attribute(store, plan):
    put(
        store,
        plan,
        1,
        Family.FAIRNESS,
        {
            ("equal_opportunity_difference", "sex"): 0.30,
            ("equal_opportunity_difference", "race"): 0.05,
            ("true_positive_rate", "sex=Female"): 0.55,
            ("true_positive_rate", "sex=Male"): 0.85,
            ("true_positive_rate", "race=White"): 0.80,
        },
    )
    [c] = evaluate(store, plan, 1)
    assert (c.segments, c.value) == (("sex",), 0.30)
    assert c.context["worst_group"] == {"group": "sex=Female", "metric": "true_positive_rate", "value": 0.55}


def test_update_refuses_rows_of_another_day(store, plan):
    auc(store, plan, 1, 0.7)
    with pytest.raises(
        ValueError,
        match=r"incidents.update\('adult_income', 2026-01-02\): got a row of model "
        r"'adult_income' on 2026-01-01 \(performance.roc_auc\)",
    ):
        incidents.update(store, plan, D[2], store.rows(M, start=D[1], end=D[1]))


def test_delete_model_removes_incidents_and_their_timeline(store, plan):
    auc(store, plan, 1, 0.7)
    evaluate(store, plan, 1)
    incidents.delete_model(store, M)
    assert incidents.incidents(store, M).empty
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM incident_events")).scalar_one() == 0


# -- schema -----------------------------------------------------------------------------------------------------


def test_incident_schema_is_safe_to_apply_twice(store, plan):
    auc(store, plan, 1, 0.7)
    [opened] = evaluate(store, plan, 1)
    assert store.migrate() == []  # on a database that has the tables (and an incident), nothing is redone
    again = MetricStore(store.url.render_as_string(hide_password=False))  # as another process would
    assert again.migrate() == []
    again.dispose()
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() >= "002"
    assert incidents.incidents(store, M)["id"].tolist() == [opened.incident_id]


def test_the_database_refuses_a_second_open_incident_of_a_metric(store, plan):
    auc(store, plan, 1, 0.7)
    [c] = evaluate(store, plan, 1)
    with pytest.raises(Exception, match="(?i)unique"):
        with store.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO incidents (id, model, family, metric, state, severity, segments, first_day, "
                    "last_breach_day, opened_at, updated_at) VALUES ('x', :m, 'performance', 'roc_auc', 'open', "
                    "'warning', '[]', '2026-01-05', '2026-01-05', :t, :t)"
                ),
                {"m": M, "t": at(5).isoformat()},
            )
