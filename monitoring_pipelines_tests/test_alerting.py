"""Incidents reach people: the nightly job's model_health sends each incident state change to the plan's webhook
(a real HTTP receiver on 127.0.0.1), signed; an outage of the receiver delays the notification to a later
run, never drops it, and never fails the monitoring run; the secrets appear nowhere the project writes."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import dagster as dg
import numpy as np
import pytest

from monitoring_pipelines import notify
from monitoring_pipelines.definitions import build_definitions
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.demo import scenario
from monitoring_pipelines.incidents import tracker as incidents
from monitoring_pipelines.store.metric_store import MetricStore
from monitoring_pipelines_tests.local_servers import HttpReceiver, Reply

M = "adult_income"
SECRET_KEY = "hmac-key-7f3a9c1e5b"
SECRET_PATH = "/hooks/T0-secret-path-91x"


@pytest.fixture
def world(demo_world, monkeypatch):
    """The demo plan with p99 latency breaching every day (warning at 1 ms) and one signed webhook channel."""
    from monitoring_pipelines.plan.schema import Alerts, IncidentSettings, Threshold

    with HttpReceiver() as receiver:
        monkeypatch.setenv("TEST_WEBHOOK_URL", receiver.base_url + SECRET_PATH)
        monkeypatch.setenv("TEST_WEBHOOK_KEY", SECRET_KEY)
        alerts = Alerts.model_validate(
            {
                "channels": [
                    {
                        "name": "oncall-hook",
                        "type": "webhook",
                        "url_env": "TEST_WEBHOOK_URL",
                        "hmac_key_env": "TEST_WEBHOOK_KEY",
                    }
                ],
                "retry": {"attempts_per_call": 2, "backoff_seconds": 0, "max_backoff_seconds": 0, "timeout_seconds": 5},
                "dagster_url": "http://dagster.example:3000",
            }
        )
        plan = demo_world.plan.model_copy(
            update={
                "thresholds": {**demo_world.plan.thresholds, "service.latency_p99_ms": Threshold(warning=1)},
                "incidents": IncidentSettings(resolve_after_ok_days=1),
                "alerts": alerts,
            }
        )
        with dg.instance_for_test() as instance:
            defs = build_definitions([plan])
            store = MetricStore()
            store.migrate()
            assert defs.resolve_job_def(n.scoped(M, n.REFRESH_REFERENCE)).execute_in_process(instance=instance).success
            yield demo_world, defs, instance, store, receiver


def _night(world, index: int):
    w, defs, instance, _, _ = world
    day = w.plan.schedule.start_date + dt.timedelta(days=index - 1)
    preds, _ = scenario.simulate_day(
        w.plan, index, day, w.pool, w.model, w.version, np.random.default_rng([scenario.SEED, index])
    )
    scenario.write_day(w.plan, preds, preds.iloc[0:0][[]].assign(request_id=[], label=[], labelled_at=[]))
    result = defs.resolve_job_def(n.scoped(M, n.NIGHTLY_MONITORING)).execute_in_process(
        instance=instance, partition_key=day.isoformat(), raise_on_error=False
    )
    health = result.asset_materializations_for_node(f"{M}__{n.MODEL_HEALTH}")[0].metadata
    return result, health


@pytest.mark.slow
def test_an_incident_is_sent_once_signed_and_an_outage_delays_it_without_failing_the_run(world):
    _, _, instance, store, receiver = world

    # the channel is down on day 1, and its error page echoes the secret path (as some proxies do)
    receiver.default = Reply(503, b"maintenance of " + SECRET_PATH.encode())
    result, health = _night(world, 1)
    first_run_id = result.run_id
    assert result.success  # monitoring results are written even when notification fails
    assert [c["change"] for c in health["incident_changes_json"].value] == ["opened"]
    assert health["notifications_pending"].value == 1
    assert len(receiver.requests) == 2  # attempts_per_call, then left in the outbox
    [row] = notify.outbox_rows(store, M)
    assert row.status == "pending" and "503" in (row.last_error or "")

    receiver.default = Reply(200)  # back up: day 2's run delivers the pending open; day 2 adds no change
    receiver.requests.clear()
    result, health = _night(world, 2)
    assert result.success and health["incident_changes_json"].value == []
    assert health["notifications_pending"].value == 0
    [sent] = receiver.requests
    payload = sent.json()
    # signed as documented: HMAC-SHA256 over "<timestamp>.<body>"
    expected = hmac.new(
        SECRET_KEY.encode(), sent.headers[notify.TIMESTAMP_HEADER.lower()].encode() + b"." + sent.body, hashlib.sha256
    ).hexdigest()
    assert sent.headers[notify.SIGNATURE_HEADER.lower()] == f"sha256={expected}"
    assert sent.path == SECRET_PATH
    [inc] = incidents.incidents(store, M).itertuples()
    assert payload["schema"] == notify.WEBHOOK_SCHEMA and payload["day"] == "2026-01-01"
    assert payload["incident"] == {**payload["incident"], "id": inc.id, "state": "opened", "severity": "warning"}
    assert (payload["metric"]["family"], payload["metric"]["name"], payload["metric"]["threshold"]) == (
        "service",
        "latency_p99_ms",
        1,
    )
    day1 = store.rows(M, family="service", metric="latency_p99_ms", start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 1))
    assert payload["metric"]["value"] == pytest.approx(day1["value"].iloc[0])
    assert payload["model"] == {"name": M, "version": "1"}
    # the day-1 nightly run opened the incident: its page in the Dagster UI
    assert payload["links"]["dagster_run"] == f"http://dagster.example:3000/runs/{first_run_id}"
    assert payload["links"]["playbook"] == world[0].plan.owners.playbook  # the plan's link wins over the bundled one
    kinds = list(incidents.timeline(store, inc.id)["kind"])
    assert kinds == ["opened", "attached", "notified"]  # day 2's breach attached; the delivery is on the timeline

    # nothing the project wrote holds a secret: outbox, metric rows, incident tables, run metadata and logs
    written = [
        json.dumps([r.__dict__ for r in notify.outbox_rows(store, M)], default=str),
        store.rows(M).to_json(),
        incidents.incidents(store, M).to_json(default_handler=str),
        incidents.timeline(store, inc.id).to_json(default_handler=str),
    ]
    for run_id in (first_run_id, result.run_id):  # the failing day's run logged the delivery errors
        written += [str(record) for record in instance.all_logs(run_id)]
    text = "\n".join(written)
    assert SECRET_KEY not in text and SECRET_PATH not in text and "T0-secret" not in text


def test_a_change_whose_run_stopped_before_queueing_its_notification_is_sent_by_the_next_evaluation(
    tmp_path, monkeypatch
):
    """incidents.update and the outbox are two transactions: a run that dies between them must not lose the alert."""
    from monitoring_pipelines.incidents.alerting import dispatch
    from monitoring_pipelines.judge.health import judge, read_history
    from monitoring_pipelines.judge.metrics import Family, MetricValue
    from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR, parse_plan, read_yaml

    with HttpReceiver() as receiver:
        monkeypatch.setenv("TEST_WEBHOOK_URL", receiver.base_url + "/hook")
        monkeypatch.setenv("TEST_WEBHOOK_KEY", SECRET_KEY)
        raw = read_yaml((BUNDLED_PLANS_DIR / "adult_income.yaml").read_text())
        raw["alerts"] = {
            "channels": [
                {"name": "hook", "type": "webhook", "url_env": "TEST_WEBHOOK_URL", "hmac_key_env": "TEST_WEBHOOK_KEY"}
            ]
        }
        plan = parse_plan(raw, "plan.yaml")
        store = MetricStore(f"sqlite:///{tmp_path / 'metrics.db'}")
        store.migrate()
        day = dt.date(2026, 1, 5)
        rows = judge(
            plan,
            day,
            [MetricValue(Family.PERFORMANCE, "roc_auc", 0.7)],
            model_version="1",
            alias="champion",
            run_id="r1",
            history=read_history(store, plan, day, ["performance"]),
        )
        store.replace_rows(M, day, ["performance"], rows)
        [opened] = incidents.update(store, plan, day, store.rows(M, start=day, end=day), run_id="r1")
        assert opened.kind == "opened" and notify.outbox_rows(store, M) == []  # the run "died" here

        report = dispatch(store, plan, [], run_id="r2")  # the next evaluation, with no change of its own
        assert len(report.delivered) == 1 and len(receiver.requests) == 1
        payload = receiver.requests[0].json()
        assert (payload["incident"]["id"], payload["incident"]["state"], payload["metric"]["name"]) == (
            opened.incident_id,
            "opened",
            "roc_auc",
        )
        assert "sent late" in json.dumps(payload["context"])
        dispatch(store, plan, [], run_id="r3")
        assert len(receiver.requests) == 1  # once only
        store.dispose()
