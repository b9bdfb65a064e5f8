"""Notifications end to end against real local servers (HTTP receivers, aiosmtpd), with the outbox in SQLite and
in the real PostgreSQL. Nothing of ours and no protocol is mocked."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from monitoring_pipelines.errors import PlanError
from monitoring_pipelines.notify import (
    ALERT_TYPES,
    Alert,
    alert_type,
    deliver_pending,
    enqueue,
    notify,
    outbox_attempts,
    outbox_rows,
    playbook_for,
    requeue,
    verify_signature,
)
from monitoring_pipelines.notify.transport import ChannelConfigError, RetryPolicy, TransientDeliveryError, post
from monitoring_pipelines.plan.schema import parse_plan
from monitoring_pipelines.store.metric_store import MetricStore
from monitoring_pipelines_tests.local_servers import HttpReceiver, Reply, SmtpReceiver, closed_port

REPO = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 1, 12)
T_OPEN = dt.datetime(2026, 1, 13, 2, 5, tzinfo=dt.UTC)
HMAC_KEY = "whsec-7f3a9c1e5b2d4f60"
ROUTING_KEY = "R0UT1NGKEY-a1b2c3d4e5f6"
SMTP_PASSWORD = "smtp-pa55word-Zq81"
SLACK_TOKEN = "T00000000/B00000000/XXXXslackTOKENxxxx"
SECRETS = (HMAC_KEY, ROUTING_KEY, SMTP_PASSWORD, SLACK_TOKEN)
# the loopback SMTP test server takes logins without TLS on purpose (aiosmtpd warns about it)
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
FAST_RETRY = {"attempts_per_call": 3, "backoff_seconds": 0.1, "max_backoff_seconds": 5, "timeout_seconds": 5}


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


def make_plan(base_plan, channels: list[dict], **alerts):
    """The bundled plan with an alerts section, validated like a YAML file would be."""
    raw = base_plan.model_dump(mode="json", by_alias=True)
    raw["alerts"] = {"channels": channels, "retry": FAST_RETRY, **alerts}  # generous timeout: a loaded CI machine
    return parse_plan(raw, "test-plan.yaml")


def alert(state="opened", severity="critical", incident="inc-1", **kw) -> Alert:
    fields = dict(
        incident_id=incident,
        model="adult_income",
        model_version="3",
        family="drift",
        metric="share_of_drifted_features",
        segment="",
        day=DAY,
        severity=severity,
        state=state,
        value=0.0 if state == "resolved" else 0.45,
        threshold=0.4,
        direction="max",
        context={
            "top_drifted_features": [{"feature": "age", "score": 0.31}, {"feature": "education", "score": 0.22}],
            "breaches": ["drift.feature_drift_score[age] = 0.31 (critical, threshold 0.2)"],
        },
        links={
            "report": "https://reports.example.com/adult_income/2026-01-12.html",
            "dagster_run": "https://dagster.example.com/runs/abc123",
        },
        opened_at=T_OPEN,
        at=T_OPEN,
    )
    fields.update(kw)
    return Alert(**fields)


def slack_channel(name="team-slack", env="TEST_SLACK_URL", **kw):
    return {"name": name, "type": "slack", "url_env": env, **kw}


def table_dump(store: MetricStore) -> str:
    with store.engine.connect() as conn:
        rows = [
            *conn.execute(text("SELECT * FROM notification_outbox")),
            *conn.execute(text("SELECT * FROM notification_attempts")),
        ]
    return "\n".join(repr(tuple(r)) for r in rows)


# -- plan validation -------------------------------------------------------------------------------------------


def test_a_channel_without_its_env_var_name_is_a_plan_error_naming_the_field(plan):
    with pytest.raises(PlanError) as err:
        make_plan(
            plan,
            [
                {"name": "ops", "type": "webhook", "url_env": "OPS_HOOK_URL"},
                {"name": "pager", "type": "pagerduty"},
                {"name": "mail", "type": "email", "smtp_host": "localhost", "to": ["a@example.com"]},
            ],
        )
    problems = {(field, msg) for _, field, msg in err.value.problems}
    assert ("alerts.channels[0].hmac_key_env", "required for a webhook channel") in problems
    assert ("alerts.channels[1].routing_key_env", "required for a pagerduty channel") in problems
    assert ("alerts.channels[2].from", "required for a email channel") in problems


def test_a_secret_pasted_instead_of_an_env_var_name_is_refused_without_echoing_it(plan):
    url = "https://hooks.slack.com/services/" + SLACK_TOKEN
    with pytest.raises(PlanError) as err:
        make_plan(plan, [slack_channel(env=url)])
    assert "alerts.channels[0].url_env: must be the NAME of an environment variable" in str(err.value)
    assert SLACK_TOKEN not in str(err.value)


def test_the_earlier_bare_channel_list_is_explained(plan):
    with pytest.raises(PlanError, match=r"alerts.channels: .*each channel is a mapping with name, type"):
        make_plan(plan, ["slack"])


def test_channel_fields_of_another_type_and_duplicate_names_are_refused(plan):
    with pytest.raises(PlanError) as err:
        make_plan(plan, [slack_channel(hmac_key_env="K"), slack_channel()])
    text_ = str(err.value)
    assert "alerts.channels[0].hmac_key_env: not used by a slack channel" in text_
    assert "alerts.channels[1].name: channel name 'team-slack' is also alerts.channels[0]" in text_


# -- playbooks -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, metric, kind",
    [
        ("quality", "blocking_failed_checks", "data-quality-failure"),
        ("drift", "share_of_drifted_features", "feature-drift"),
        ("drift", "feature_drift_score", "feature-drift"),
        ("drift", "prediction_drift_score", "prediction-drift"),
        ("performance", "roc_auc", "performance-drop"),
        ("performance_estimated", "roc_auc", "performance-drop"),
        ("fairness", "equal_opportunity_difference", "fairness-gap"),
        ("service", "latency_p99_ms", "latency-error-spike"),
        ("service", "error_rate", "latency-error-spike"),
        ("action", "retrain", "failed-retrain"),
        ("comparison", "roc_auc_delta", "failed-retrain"),
    ],
)
def test_each_alert_type_has_a_playbook_in_the_repository(plan, family, metric, kind):
    assert alert_type(family, metric) == kind
    bare = make_plan(plan, []).model_copy(update={"owners": plan.owners.model_copy(update={"playbook": None})})
    link = playbook_for(bare, family, metric)
    assert link == f"docs/playbooks/{kind}.md" and (REPO / link).is_file()


def test_playbook_links_follow_the_plan_overrides(plan):
    p = make_plan(
        plan,
        [],
        playbooks={"feature-drift": "https://wiki.example.com/drift"},
        playbook_base_url="https://git.example.com/ml/blob/main/docs/playbooks/",
    )
    assert playbook_for(p, "drift", "feature_drifted") == "https://wiki.example.com/drift"
    assert playbook_for(p, "service", "error_rate") == plan.owners.playbook  # the model's own playbook
    no_owner = p.model_copy(update={"owners": plan.owners.model_copy(update={"playbook": None})})
    assert (
        playbook_for(no_owner, "service", "error_rate")
        == "https://git.example.com/ml/blob/main/docs/playbooks/latency-error-spike.md"
    )
    assert set(ALERT_TYPES) == {f.stem for f in (REPO / "docs/playbooks").glob("*.md")} - {"TEMPLATE", "adult_income"}
    assert (REPO / plan.owners.playbook).is_file()


def test_bad_alerts_are_refused_with_the_incident_named():
    with pytest.raises(ValueError, match="incident 'inc-9'.*severity 'ok' and only it does"):
        alert(state="resolved", severity="critical", incident="inc-9")
    with pytest.raises(ValueError, match="no alert type for latency.p99"):
        alert(family="latency", metric="p99")


# -- the outbox --------------------------------------------------------------------------------------------------


def test_migration_of_the_outbox_is_safe_twice(store):
    assert store.migrate() == []
    again = MetricStore(store.url.render_as_string(hide_password=False))
    assert again.migrate() == []
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() >= "003"
        assert conn.execute(text("SELECT COUNT(*) FROM notification_outbox")).scalar_one() == 0
    again.dispose()


def test_enqueue_is_idempotent_per_incident_state_and_channel(store, plan, monkeypatch):
    p = make_plan(plan, [slack_channel(), slack_channel("second", "TEST_SLACK_URL_2")])
    first = enqueue(store, p, [alert(), alert(incident="inc-2")])
    again = enqueue(store, p, [alert(), alert(incident="inc-2"), alert()])
    assert len(first) == 4 and again == first
    rows = outbox_rows(store, "adult_income")
    assert len(rows) == 4 and {r.status for r in rows} == {"pending"} and {r.attempts for r in rows} == {0}
    assert {(r.incident_id, r.state, r.channel_name) for r in rows} == {
        ("inc-1", "opened", "team-slack"),
        ("inc-1", "opened", "second"),
        ("inc-2", "opened", "team-slack"),
        ("inc-2", "opened", "second"),
    }


def test_routing_follows_min_severity_and_a_resolve_goes_where_the_open_went(store, plan):
    p = make_plan(
        plan,
        [
            slack_channel("all"),
            slack_channel("critical-only", min_severity="critical"),
            {"name": "pager", "type": "pagerduty", "routing_key_env": "TEST_PD_KEY"},
        ],
        min_severity="warning",
    )
    enqueue(store, p, [alert(severity="warning", incident="w")])
    enqueue(store, p, [alert(severity="critical", incident="c")])
    enqueue(
        store,
        p,
        [
            alert(state="resolved", severity="ok", incident="w"),
            alert(state="resolved", severity="ok", incident="c"),
            alert(state="resolved", severity="ok", incident="never-opened"),
        ],
    )
    got = {(r.incident_id, r.state, r.channel_name) for r in outbox_rows(store, "adult_income")}
    assert got == {
        ("w", "opened", "all"),
        ("w", "resolved", "all"),
        ("c", "opened", "all"),
        ("c", "opened", "critical-only"),
        ("c", "opened", "pager"),
        ("c", "resolved", "all"),
        ("c", "resolved", "critical-only"),
        ("c", "resolved", "pager"),
    }


# -- channels ----------------------------------------------------------------------------------------------------


def test_slack_gets_a_readable_block_kit_message(store, plan, monkeypatch):
    with HttpReceiver() as slack:
        monkeypatch.setenv("TEST_SLACK_URL", f"{slack.base_url}/services/{SLACK_TOKEN}")
        report = notify(store, make_plan(plan, [slack_channel()]), [alert()])
        assert report.ok and len(report.delivered) == 1 and report.enqueued == (report.delivered[0].outbox_id,)
        (req,) = slack.requests
    assert req.path == f"/services/{SLACK_TOKEN}" and req.headers["content-type"].startswith("application/json")
    msg = req.json()
    assert msg["text"].startswith("[CRITICAL] adult_income: drift.share_of_drifted_features = 0.45 > 0.4")
    header, facts, *sections = msg["blocks"]
    assert (
        header["type"] == "header" and "CRITICAL" in header["text"]["text"] and "adult_income" in header["text"]["text"]
    )
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in facts["fields"]}
    assert fields["*Metric*"] == "drift.share_of_drifted_features"
    assert fields["*Value vs threshold*"] == "0.45 &gt; 0.4 (critical level)"
    assert fields["*Day*"] == "2026-01-12" and fields["*Model version*"] == "3"
    texts = [s["text"]["text"] for s in sections if s["type"] == "section"]
    assert any(t.startswith("*Top drifted features*") and "age (score 0.31)" in t for t in texts)
    links = sections[-1]["elements"][0]["text"]
    assert "<https://reports.example.com/adult_income/2026-01-12.html|Report>" in links
    assert "<https://dagster.example.com/runs/abc123|Dagster run>" in links
    assert f"Playbook: `{plan.owners.playbook}`" in links
    (row,) = outbox_rows(store, "adult_income")
    assert row.status == "delivered" and row.attempts == 1 and row.delivered_at is not None
    assert json.loads(row.payload) == msg  # what was stored is what was sent


def test_webhook_is_signed_and_the_signature_verifies_independently(store, plan, monkeypatch):
    with HttpReceiver() as hook:
        monkeypatch.setenv("TEST_HOOK_URL", f"{hook.base_url}/alerts")
        monkeypatch.setenv("TEST_HOOK_KEY", HMAC_KEY)
        p = make_plan(
            plan, [{"name": "ops-hook", "type": "webhook", "url_env": "TEST_HOOK_URL", "hmac_key_env": "TEST_HOOK_KEY"}]
        )
        assert notify(
            store,
            p,
            [
                alert(
                    context={"worst_group": {"group": "sex=Female", "value": 0.31}},
                    family="fairness",
                    metric="equal_opportunity_difference",
                    segment="sex",
                    value=0.31,
                    threshold=0.25,
                )
            ],
        ).ok
        (req,) = hook.requests
    stamp, signature = req.headers["x-monitoring-timestamp"], req.headers["x-monitoring-signature"]
    expected = hmac.new(HMAC_KEY.encode(), stamp.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert abs(time.time() - int(stamp)) < 60
    assert verify_signature(req.body, stamp, signature, HMAC_KEY)
    assert not verify_signature(req.body + b" ", stamp, signature, HMAC_KEY)
    assert not verify_signature(req.body, stamp, signature, "another-key")
    assert not verify_signature(req.body, stamp, signature, HMAC_KEY, now=int(stamp) + 301)  # a replay
    body = req.json()
    assert body["schema"] == "monitoring_pipelines.alert/v1" and body["event_id"] == "inc-1:opened"
    assert body["model"] == {"name": "adult_income", "version": "3"}
    assert body["incident"] == {
        "id": "inc-1",
        "state": "opened",
        "severity": "critical",
        "opened_at": "2026-01-13T02:05:00+00:00",
        "at": "2026-01-13T02:05:00+00:00",
    }
    assert body["metric"] == {
        "family": "fairness",
        "name": "equal_opportunity_difference",
        "segment": "sex",
        "value": 0.31,
        "threshold": 0.25,
        "direction": "max",
    }
    assert body["day"] == "2026-01-12" and body["context"]["worst_group"]["group"] == "sex=Female"
    assert body["links"]["playbook"] == plan.owners.playbook
    assert req.headers["x-monitoring-delivery"] == body["delivery_id"]


def test_email_reaches_a_real_smtp_server_with_login(store, plan, monkeypatch):
    monkeypatch.setenv("TEST_SMTP_USER", "alerts-bot")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    with SmtpReceiver(users={"alerts-bot": SMTP_PASSWORD}) as smtp:
        p = make_plan(
            plan,
            [
                {
                    "name": "risk-mail",
                    "type": "email",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp.port,
                    "starttls": False,
                    "username_env": "TEST_SMTP_USER",
                    "password_env": "TEST_SMTP_PASSWORD",
                    "from": "monitoring@example.com",
                    "to": ["risk-ml@example.com", "oncall@example.com"],
                }
            ],
        )
        assert notify(store, p, [alert()]).ok
        assert notify(store, p, [alert(state="resolved", severity="ok")]).ok
        opened, resolved = smtp.mails
        assert smtp.logins == [("alerts-bot", SMTP_PASSWORD)] * 2
    assert opened.rcpt_tos == ["risk-ml@example.com", "oncall@example.com"]
    msg = opened.message
    assert (
        msg["Subject"]
        == "[CRITICAL] adult_income: drift.share_of_drifted_features = 0.45 > 0.4 (critical level) on 2026-01-12"
    )
    assert msg["From"] == "monitoring@example.com" and msg["X-Monitoring-Incident"] == "inc-1"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for expected in (
        "Value vs threshold: 0.45 > 0.4 (critical level)",
        "Day: 2026-01-12",
        "Model version: 3",
        "  - age (score 0.31)",
        "Report: https://reports.example.com/adult_income/2026-01-12.html",
    ):
        assert expected in plain
    assert "<h2>[CRITICAL] adult_income" in html and '<a href="https://dagster.example.com/runs/abc123">' in html
    assert "0.45 &gt; 0.4" in html
    again = resolved.message
    assert again["Subject"].startswith("[RESOLVED] adult_income") and again["In-Reply-To"] == msg["Message-ID"]
    assert SMTP_PASSWORD not in opened.data.decode() + resolved.data.decode()


def test_email_asking_starttls_of_a_server_without_it_is_a_config_error(store, plan):
    with SmtpReceiver() as smtp:
        p = make_plan(
            plan,
            [
                {
                    "name": "risk-mail",
                    "type": "email",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp.port,
                    "from": "monitoring@example.com",
                    "to": ["risk-ml@example.com"],
                }
            ],
        )  # starttls: default on
        report = notify(store, p, [alert()])
        assert smtp.mails == []
    (bad,) = report.config_errors
    assert bad.attempts == 1
    assert bad.error.startswith(f"model adult_income, channel risk-mail (email) at smtp://127.0.0.1:{smtp.port}: ")
    assert "STARTTLS" in bad.error


def test_email_refused_by_the_server_for_now_is_retried(store, plan):
    with SmtpReceiver() as smtp:
        smtp.data_reply = "451 4.3.0 mailbox busy, try later"
        p = make_plan(
            plan,
            [
                {
                    "name": "risk-mail",
                    "type": "email",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp.port,
                    "starttls": False,
                    "from": "monitoring@example.com",
                    "to": ["risk-ml@example.com"],
                }
            ],
        )
        report = notify(store, p, [alert()])
        (pending,) = report.pending
        assert pending.attempts == 3 and "server replied 451 4.3.0 mailbox busy" in pending.error
        smtp.data_reply = None
        assert deliver_pending(store, p, now=_later()).delivered
        assert len(smtp.mails) == 1


def test_pagerduty_is_triggered_on_critical_escalation_and_resolved_with_the_incident_as_dedup_key(
    store, plan, monkeypatch
):
    with HttpReceiver() as pd, HttpReceiver() as slack:
        pd.default = Reply(202, b'{"status":"success","message":"Event processed","dedup_key":"inc-7"}')
        monkeypatch.setenv("TEST_PD_KEY", ROUTING_KEY)
        monkeypatch.setenv("TEST_SLACK_URL", f"{slack.base_url}/services/{SLACK_TOKEN}")
        p = make_plan(
            plan,
            [
                slack_channel(),
                {
                    "name": "pager",
                    "type": "pagerduty",
                    "routing_key_env": "TEST_PD_KEY",
                    "url": f"{pd.base_url}/v2/enqueue",
                },
            ],
        )
        assert notify(store, p, [alert(severity="warning", incident="inc-7", value=0.3, threshold=0.2)]).ok
        assert pd.requests == []  # a warning does not page (pagerduty's default min_severity is critical)
        assert notify(store, p, [alert(state="escalated", incident="inc-7")]).ok
        assert notify(store, p, [alert(state="resolved", severity="ok", incident="inc-7")]).ok
        trigger, resolve = (r.json() for r in pd.requests)
        assert [r.json()["text"].split(":")[0] for r in slack.requests] == [
            "[WARNING] adult_income",
            "[CRITICAL] adult_income",
            "[RESOLVED] adult_income",
        ]
    assert {r.path for r in pd.requests} == {"/v2/enqueue"}
    assert trigger["routing_key"] == ROUTING_KEY and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "inc-7"
    payload = trigger["payload"]
    assert payload["severity"] == "critical" and payload["source"] == "monitoring_pipelines/adult_income"
    assert payload["summary"].startswith("[CRITICAL] adult_income: escalated: drift.share_of_drifted_features")
    assert payload["custom_details"]["top_drifted_features"][0] == {"feature": "age", "score": 0.31}
    assert payload["custom_details"]["model_version"] == "3" and payload["custom_details"]["day"] == "2026-01-12"
    assert {"href": "https://dagster.example.com/runs/abc123", "text": "Dagster run"} in trigger["links"]
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "inc-7"}
    stored = [json.loads(r.payload) for r in outbox_rows(store, "adult_income") if r.channel_type == "pagerduty"]
    assert all("routing_key" not in s for s in stored)


# -- failures ------------------------------------------------------------------------------------------------------


def _later(seconds: float = 3600) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)


def test_http_5xx_is_retried_with_backoff_then_kept_pending_and_delivered_by_a_later_call(store, plan, monkeypatch):
    with HttpReceiver() as slack:
        slack.reply(*[Reply(500, b"rollup_error")] * 3)
        monkeypatch.setenv("TEST_SLACK_URL", f"{slack.base_url}/services/{SLACK_TOKEN}")
        p = make_plan(plan, [slack_channel()])
        report = notify(store, p, [alert()])
        (out,) = report.pending
        assert not report.ok and out.attempts == 3
        assert (
            out.error == f"model adult_income, channel team-slack (slack) at {slack.base_url}: "
            "HTTP 500 Internal Server Error: rollup_error"
        )
        gaps = [b.at - a.at for a, b in zip(slack.requests, slack.requests[1:])]
        assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # backoff 0.1 s, doubling
        (row,) = outbox_rows(store, "adult_income")
        assert row.status == "pending" and row.attempts == 3 and row.last_error == out.error
        assert row.next_attempt_at > row.last_attempt_at
        history = outbox_attempts(store, row.id)
        assert [(a, outcome) for a, _, outcome, _ in history] == [(1, "retry"), (2, "retry"), (3, "retry")]

        early = deliver_pending(store, p)  # not due yet: nothing sent, the row waits
        assert early.attempted == () and early.waiting[0].error.startswith("next attempt at")
        assert len(slack.requests) == 3

        later = deliver_pending(store, p, now=row.next_attempt_at)  # the server recovered (default reply 200)
        assert [o.status for o in later.attempted] == ["delivered"] and later.ok
        assert len(slack.requests) == 4 and slack.requests[-1].body == slack.requests[0].body
    (row,) = outbox_rows(store, "adult_income")
    assert row.status == "delivered" and row.attempts == 4 and row.last_error == out.error
    assert [o for _, _, o, _ in outbox_attempts(store, row.id)] == ["retry"] * 3 + ["delivered"]


def test_http_429_is_retried(store, plan, monkeypatch):
    with HttpReceiver() as slack:
        slack.reply(Reply(429, b"rate_limited", {"Retry-After": "0"}))
        monkeypatch.setenv("TEST_SLACK_URL", f"{slack.base_url}/services/{SLACK_TOKEN}")
        report = notify(store, make_plan(plan, [slack_channel()]), [alert()])
    assert [(o.status, o.attempts) for o in report.attempted] == [("delivered", 2)]


def test_connection_refused_and_timeout_keep_the_notification_pending(store, plan, monkeypatch):
    monkeypatch.setenv("TEST_SLACK_URL", f"http://127.0.0.1:{closed_port()}/services/{SLACK_TOKEN}")
    with HttpReceiver() as slow:
        slow.default = Reply(hang=1.5)
        monkeypatch.setenv("TEST_SLACK_URL_2", f"{slow.base_url}/services/{SLACK_TOKEN}")
        p = make_plan(
            plan,
            [slack_channel(), slack_channel("slow", "TEST_SLACK_URL_2")],
            retry={**FAST_RETRY, "timeout_seconds": 0.3},
        )
        report = notify(store, p, [alert()])
        by_channel = {o.channel: o for o in report.pending}
        assert by_channel["team-slack"].error.endswith(": connection refused")
        assert by_channel["slow"].error.endswith(": timed out") and by_channel["slow"].attempts == 3
        assert len(slow.requests) == 3
    assert {r.status for r in outbox_rows(store, "adult_income")} == {"pending"}


def test_a_dead_channel_costs_one_notification_per_call_and_a_resolve_waits_for_its_open(store, plan, monkeypatch):
    monkeypatch.setenv("TEST_SLACK_URL", f"http://127.0.0.1:{closed_port()}/x")
    p = make_plan(plan, [slack_channel()])
    report = notify(
        store, p, [alert(incident="a"), alert(incident="b"), alert(state="resolved", severity="ok", incident="a")]
    )
    assert [(o.incident_id, o.attempts) for o in report.attempted] == [("a", 3)]
    assert [(o.incident_id, o.state) for o in report.waiting] == [("b", "opened"), ("a", "resolved")]
    assert "failed earlier in this call" in report.waiting[0].error
    with HttpReceiver() as slack:
        monkeypatch.setenv("TEST_SLACK_URL", f"{slack.base_url}/x")
        assert deliver_pending(store, p, now=_later()).ok
        assert [(r.json()["text"][:10]) for r in slack.requests] == ["[CRITICAL]", "[CRITICAL]", "[RESOLVED]"]


def test_http_4xx_is_a_config_error_not_retried_and_a_person_can_requeue_it(store, plan, monkeypatch, caplog):
    with HttpReceiver() as slack:
        slack.reply(Reply(404, b"no_service"))
        monkeypatch.setenv("TEST_SLACK_URL", f"{slack.base_url}/services/{SLACK_TOKEN}")
        p = make_plan(plan, [slack_channel()])
        with caplog.at_level(logging.WARNING, logger="monitoring_pipelines.notify"):
            report = notify(store, p, [alert()])
        (bad,) = report.config_errors
        assert bad.attempts == 1 and len(slack.requests) == 1
        assert (
            bad.error
            == f"model adult_income, channel team-slack (slack) at {slack.base_url}: HTTP 404 Not Found: no_service"
        )
        assert bad.error in caplog.text and "re-queue" in caplog.text
        assert "1 notification(s) in config_error wait for a person" in report.summary()
        assert deliver_pending(store, p, now=_later()).attempted == ()  # never retried by itself
        assert requeue(store, "adult_income", channel="team-slack") == 1
        assert deliver_pending(store, p).ok
        assert len(slack.requests) == 2
    (row,) = outbox_rows(store, "adult_income")
    assert row.status == "delivered" and row.attempts == 2


def test_a_malformed_url_and_an_unset_env_var_are_config_errors_naming_variable_and_field(store, plan, monkeypatch):
    monkeypatch.setenv("TEST_SLACK_URL", f"htps:/hooks.example.com/services/{SLACK_TOKEN}")
    monkeypatch.delenv("TEST_HOOK_URL", raising=False)
    p = make_plan(
        plan,
        [
            slack_channel(),
            {"name": "ops-hook", "type": "webhook", "url_env": "TEST_HOOK_URL", "hmac_key_env": "TEST_HOOK_KEY"},
        ],
    )
    report = notify(store, p, [alert()])
    errors = {o.channel: o.error for o in report.config_errors}
    assert errors["team-slack"].startswith(
        "model adult_income, channel team-slack (slack): $TEST_SLACK_URL is not a valid http(s) URL"
    )
    assert errors["ops-hook"] == (
        "model adult_income, channel ops-hook (webhook): environment variable TEST_HOOK_URL "
        "(alerts.channels[1].url_env) is not set"
    )
    assert SLACK_TOKEN not in repr(report) + table_dump(store)


def test_a_channel_removed_from_the_plan_is_a_config_error(store, plan, monkeypatch):
    enqueue(store, make_plan(plan, [slack_channel("old-slack")]), [alert()])
    report = deliver_pending(store, make_plan(plan, [slack_channel()]))
    (bad,) = report.config_errors
    assert "the plan of adult_income has no slack channel named 'old-slack' any more" in bad.error


def test_two_delivery_processes_never_send_one_notification_twice(store, plan, monkeypatch):
    with HttpReceiver() as slack:
        slack.default = Reply(hang=0.05)
        monkeypatch.setenv("TEST_SLACK_URL", f"{slack.base_url}/x")
        p = make_plan(plan, [slack_channel()])
        enqueue(store, p, [alert(incident=f"inc-{i}") for i in range(6)])
        barrier, reports = threading.Barrier(2), []

        def run():
            barrier.wait()
            reports.append(deliver_pending(store, p))

        threads = [threading.Thread(target=run) for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert sorted(json.loads(r.body)["text"] for r in slack.requests) == sorted(
            json.loads(r.payload)["text"] for r in outbox_rows(store, "adult_income")
        )
        assert len(slack.requests) == 6
    assert {r.status for r in outbox_rows(store, "adult_income")} == {"delivered"}


def test_secrets_never_appear_in_anything_written(store, plan, monkeypatch, caplog):
    """Every channel, failing in every way, then recovering: the secret values appear nowhere except in the
    auth mechanism itself (the request URL of Slack/webhook, the PagerDuty routing_key field, the SMTP login)."""
    with (
        HttpReceiver() as slack,
        HttpReceiver() as hook,
        HttpReceiver() as pd,
        SmtpReceiver(users={"bot": SMTP_PASSWORD}) as smtp,
    ):
        # failing receivers echo the request path in their error page, as some do
        slack.reply(
            Reply(500, f"boom at /services/{SLACK_TOKEN}".encode()),
            Reply(403, f"forbidden /services/{SLACK_TOKEN}".encode()),
        )
        hook.reply(Reply(503, b"down"))
        pd.reply(Reply(400, f"bad routing_key {ROUTING_KEY}".encode()))
        monkeypatch.setenv("TEST_SLACK_URL", f"{slack.base_url}/services/{SLACK_TOKEN}")
        monkeypatch.setenv("TEST_HOOK_URL", f"{hook.base_url}/hook?token={HMAC_KEY}x")
        monkeypatch.setenv("TEST_HOOK_KEY", HMAC_KEY)
        monkeypatch.setenv("TEST_PD_KEY", ROUTING_KEY)
        monkeypatch.setenv("TEST_SMTP_USER", "bot")
        monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
        p = make_plan(
            plan,
            [
                slack_channel(),
                {"name": "hook", "type": "webhook", "url_env": "TEST_HOOK_URL", "hmac_key_env": "TEST_HOOK_KEY"},
                {
                    "name": "pager",
                    "type": "pagerduty",
                    "routing_key_env": "TEST_PD_KEY",
                    "url": f"{pd.base_url}/v2/enqueue",
                },
                {
                    "name": "mail",
                    "type": "email",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp.port,
                    "starttls": False,
                    "username_env": "TEST_SMTP_USER",
                    "password_env": "TEST_SMTP_PASSWORD",
                    "from": "m@example.com",
                    "to": ["o@example.com"],
                },
            ],
        )
        with caplog.at_level(logging.DEBUG):
            reports = [notify(store, p, [alert()])]
            reports.append(deliver_pending(store, p, now=_later()))
            requeue(store, "adult_income")
            reports.append(deliver_pending(store, p, now=_later()))
        assert {r.status for r in outbox_rows(store, "adult_income")} == {"delivered"}
        assert any("HTTP 403" in (o.error or "") for o in reports[0].attempted)
        # everything logged but the SMTP test server's own protocol trace (it logs the AUTH exchange)
        logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))
        assert "HTTP 500" in logged and "HTTP 400" in logged
        written = [table_dump(store), logged, *(repr(r) + r.summary() for r in reports)]
        written += [m.data.decode() for m in smtp.mails]
        written += [r.body.decode() + repr(r.headers) for r in slack.requests + hook.requests]
        written += [json.dumps({k: v for k, v in r.json().items() if k != "routing_key"}) for r in pd.requests]
    assert smtp.logins[-1] == ("bot", SMTP_PASSWORD)
    for secret in SECRETS:
        for blob in written:
            assert secret not in blob
    assert "***" in table_dump(store)  # the echoed token was masked, not dropped silently


def test_a_resolve_waits_while_its_open_is_a_config_error_and_follows_it_after_the_requeue(store, plan, monkeypatch):
    with HttpReceiver() as slack:
        slack.reply(Reply(404, b"no_service"))  # the open: a bad token at first
        monkeypatch.setenv("TEST_SLACK_URL", f"{slack.base_url}/services/{SLACK_TOKEN}")
        p = make_plan(plan, [slack_channel()])
        (bad,) = notify(store, p, [alert()]).config_errors
        report = notify(store, p, [alert(state="resolved", severity="ok", at=T_OPEN + dt.timedelta(days=2))])
        assert report.attempted == () and [o.state for o in report.waiting] == ["resolved"]
        assert len(slack.requests) == 1  # the resolve was not sent before its open
        assert requeue(store, "adult_income", channel="team-slack") == 1
        assert deliver_pending(store, p).ok
    states = [json.loads(r.body)["text"] for r in slack.requests[1:]]
    assert len(states) == 2 and "RESOLVED" not in states[0] and "RESOLVED" in states[1]


# -- the HTTP client: requests with urllib3's Retry ------------------------------------------------------------


def test_a_redirect_is_a_config_error_and_is_not_followed(store, plan, monkeypatch):
    with HttpReceiver() as slack:
        slack.reply(Reply(301, b"moved", {"Location": f"{slack.base_url}/elsewhere"}))
        monkeypatch.setenv("TEST_SLACK_URL", f"{slack.base_url}/services/{SLACK_TOKEN}")
        report = notify(store, make_plan(plan, [slack_channel()]), [alert()])
        assert [r.path for r in slack.requests] == [f"/services/{SLACK_TOKEN}"]  # /elsewhere never asked
    (bad,) = report.config_errors
    assert bad.attempts == 1
    assert bad.error == (
        f"model adult_income, channel team-slack (slack) at {slack.base_url}: HTTP 301 Moved Permanently: moved "
        "(redirects are not followed: put the final URL in the environment variable)"
    )


def test_retry_after_sets_the_pause_in_the_call_and_a_long_one_is_left_to_a_later_call(store, plan, monkeypatch):
    with HttpReceiver() as slack:
        # backoff is 0.1 s: a 1 s gap is the receiver's Retry-After, honoured
        slack.reply(Reply(503, b"busy", {"Retry-After": "1"}))
        monkeypatch.setenv("TEST_SLACK_URL", f"{slack.base_url}/services/{SLACK_TOKEN}")
        p = make_plan(plan, [slack_channel()])
        report = notify(store, p, [alert()])
        assert [(o.status, o.attempts) for o in report.attempted] == [("delivered", 2)]
        assert 1.0 <= slack.requests[1].at - slack.requests[0].at < 3.0

        # longer than the call may pause (max_backoff_seconds 5 here): no second attempt now, due after 120 s
        slack.reply(Reply(429, b"slow down", {"Retry-After": "120"}))
        (out,) = notify(store, p, [alert(incident="inc-2")]).pending
        assert out.attempts == 1 and len(slack.requests) == 3
        assert out.error.endswith("HTTP 429 Too Many Requests: slow down")
    row = next(r for r in outbox_rows(store, "adult_income") if r.incident_id == "inc-2")
    assert row.status == "pending"
    assert 119 <= (row.next_attempt_at - row.last_attempt_at).total_seconds() <= 121


def test_a_503_then_200_is_recorded_as_two_attempts_with_the_body_of_the_failed_one(store, plan, monkeypatch):
    with HttpReceiver() as hook:
        hook.reply(Reply(503, b"warming up"))
        monkeypatch.setenv("TEST_HOOK_URL", f"{hook.base_url}/hook")
        monkeypatch.setenv("TEST_HOOK_KEY", HMAC_KEY)
        p = make_plan(
            plan, [{"name": "hook", "type": "webhook", "url_env": "TEST_HOOK_URL", "hmac_key_env": "TEST_HOOK_KEY"}]
        )
        report = notify(store, p, [alert()])
        first, second = hook.requests
    assert [(o.status, o.attempts) for o in report.attempted] == [("delivered", 2)]
    assert 0.1 <= second.at - first.at < 1.0  # backoff_seconds before the 2nd attempt
    assert first.body == second.body
    for req in (first, second):  # each attempt carries a signature that verifies
        stamp = req.headers["x-monitoring-timestamp"]
        assert verify_signature(req.body, stamp, req.headers["x-monitoring-signature"], HMAC_KEY)
    (row,) = outbox_rows(store, "adult_income")
    history = outbox_attempts(store, row.id)
    assert [(a, o, e) for a, _, o, e in history] == [
        (
            1,
            "retry",
            f"model adult_income, channel hook (webhook) at {hook.base_url}: HTTP 503 Service Unavailable: warming up",
        ),
        (2, "delivered", None),
    ]
    assert history[0][1] < history[1][1]  # each attempt written when it happened


def test_a_certificate_that_does_not_verify_is_a_config_error_at_the_first_attempt(store, plan, monkeypatch, tmp_path):
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    receiver = HttpReceiver()
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    with receiver:
        port = receiver.server.server_address[1]
        monkeypatch.setenv("TEST_SLACK_URL", f"https://127.0.0.1:{port}/services/{SLACK_TOKEN}")
        report = notify(store, make_plan(plan, [slack_channel()]), [alert()])
        assert receiver.requests == []
    (bad,) = report.config_errors
    assert bad.attempts == 1  # not retried: only a person can fix it
    assert bad.error.startswith(
        f"model adult_income, channel team-slack (slack) at https://127.0.0.1:{port}: TLS certificate does not verify"
    )


def _chain(exc: BaseException) -> list[BaseException]:
    out = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def test_post_raises_errors_that_carry_no_secret_and_no_chained_library_exception():
    url = f"http://127.0.0.1:{closed_port()}/services/{SLACK_TOKEN}"
    with pytest.raises(TransientDeliveryError) as refused:
        post(url, b"{}", {}, 5, "channel x")
    with pytest.raises(ChannelConfigError) as malformed:
        post(f"http://127.0.0.1:99999/services/{SLACK_TOKEN}", b"{}", {}, 5, "channel x")
    assert str(refused.value).endswith(": connection refused")
    assert "malformed" in str(malformed.value)
    for err in (refused.value, malformed.value):
        assert _chain(err) == [err]  # requests' and urllib3's exceptions quote the URL: none is attached
        assert SLACK_TOKEN not in str(err)


def test_post_retries_within_its_policy_and_reports_each_retried_failure():
    with HttpReceiver() as hook:
        hook.reply(Reply(500, b"a"), Reply(502, b"b"), Reply(503, b"c"))
        heard: list[str] = []
        policy = RetryPolicy(attempts=3, backoff_seconds=0.05, max_pause_seconds=5)
        with pytest.raises(TransientDeliveryError, match=r"HTTP 503 Service Unavailable: c$"):
            post(f"{hook.base_url}/x", b"{}", {}, 5, "channel x", retry=policy, on_retry=lambda e: heard.append(str(e)))
        assert [h.rsplit(": ", 1)[1] for h in heard] == ["a", "b"] and len(hook.requests) == 3

        # a retry that would start later than max_span_seconds after the first attempt is left to a later call
        hook.reply(Reply(500, b"a"), Reply(502, b"b"))
        span = RetryPolicy(attempts=3, backoff_seconds=0.3, max_pause_seconds=5, max_span_seconds=0.5)
        with pytest.raises(TransientDeliveryError, match=r"HTTP 502 Bad Gateway: b$"):
            post(f"{hook.base_url}/x", b"{}", {}, 5, "channel x", retry=span)
        assert len(hook.requests) == 5  # 2 of 3: the 3rd would start 0.9 s after the first

        # without a policy: one attempt, as a bare call always made
        hook.reply(Reply(503, b"once"))
        with pytest.raises(TransientDeliveryError):
            post(f"{hook.base_url}/x", b"{}", {}, 5, "channel x")
        assert len(hook.requests) == 6
