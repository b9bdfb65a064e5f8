"""Route alerts to the plan's channels through the outbox, and deliver what is pending.

``enqueue`` writes one outbox row per (incident state change, channel) and sends nothing; ``deliver_pending``
sends what is due, retrying transient failures with exponential backoff and recording every attempt;
``notify`` does both and never raises for a delivery problem: a monitoring run must finish and write its
results even when Slack is down, and the problem stays visible in the returned report, the log and the outbox.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from monitoring_pipelines.notify import outbox
from monitoring_pipelines.notify.alert import SEVERITY_RANK, Alert
from monitoring_pipelines.notify.messages import canonical_json, render
from monitoring_pipelines.notify.transport import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ChannelConfigError,
    OnRetry,
    RetryPolicy,
    TransientDeliveryError,
    build_email,
    check_http_url,
    post,
    send_email,
    sign,
)
from monitoring_pipelines.plan.schema import AlertChannel, MonitoringPlan
from monitoring_pipelines.store.metric_store import MetricStore

log = logging.getLogger("monitoring_pipelines.notify")

# env fields whose values are secrets: scrubbed from everything written (user names are not secrets)
_SECRET_FIELDS = ("url_env", "hmac_key_env", "routing_key_env", "password_env")
_MIN_SCRUB_LENGTH = 4  # shorter values would mangle ordinary words; no real secret is that short
_MAX_PAUSE_IN_CALL = 30.0  # seconds: a delivery call never sleeps longer between two attempts
# seconds: the retries of a webhook within one call reuse its signature timestamp; receivers refuse one older
# than their tolerance (verify_signature: 300 s), so no retry of the call starts later than this
_SIGNATURE_FRESH_SECONDS = 240.0


@dataclass(frozen=True)
class Outcome:
    """Where one notification stands after a delivery call. ``error`` says why it is not delivered (or, for a
    row left waiting, why it was not tried in this call)."""

    outbox_id: str
    model: str
    channel: str
    incident_id: str
    state: str
    status: str  # delivered | pending | config_error
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class DeliveryReport:
    """What one ``deliver_pending`` / ``notify`` call did for one model."""

    model: str
    attempted: tuple[Outcome, ...] = ()
    waiting: tuple[
        Outcome, ...
    ] = ()  # pending rows not tried in this call: not due, behind an earlier one, channel down
    enqueued: tuple[str, ...] = ()  # notify: the outbox ids of its alerts
    config_errors_total: int = 0  # config_error rows of the model in the outbox, this call's included

    @property
    def delivered(self) -> list[Outcome]:
        return [o for o in self.attempted if o.status == "delivered"]

    @property
    def pending(self) -> list[Outcome]:
        return [o for o in self.attempted if o.status == "pending"] + list(self.waiting)

    @property
    def config_errors(self) -> list[Outcome]:
        return [o for o in self.attempted if o.status == "config_error"]

    @property
    def ok(self) -> bool:
        """Nothing pending and nothing misconfigured (in this call)."""
        return not self.pending and not self.config_errors

    def summary(self) -> str:
        text = (
            f"notifications of {self.model}: {len(self.delivered)} delivered, {len(self.pending)} pending, "
            f"{len(self.config_errors)} config error(s)"
        )
        if self.config_errors_total:
            text += (
                f"; {self.config_errors_total} notification(s) in config_error wait for a person "
                "(fix the channel, then monitoring_pipelines.notify.requeue)"
            )
        problems = [f"{o.channel} {o.state} {o.incident_id}: {o.error}" for o in self.config_errors + self.pending]
        return text + "".join(f"\n  {p}" for p in problems)


# -- enqueue ---------------------------------------------------------------------------------------------------


def enqueue(store: MetricStore, plan: MonitoringPlan, alerts: Iterable[Alert]) -> list[str]:
    """Write one outbox row per alert and channel it routes to; return the outbox ids (existing rows included).

    Routing: an opening or escalation goes to every channel whose ``min_severity`` (default
    ``alerts.min_severity``; pagerduty: critical) it reaches; a resolution goes to every channel told of the
    incident before. The same (incident, state, channel) never gets a second row. Nothing is sent here.
    Raises ``ValueError`` for an alert of another model and ``StoreError`` when the outbox cannot be written
    (an alert must not vanish silently).
    """
    alerts = list(alerts)
    secrets = _secret_values(plan)
    told: dict[str, set[str]] = {}  # incident -> channels routed in this call (a resolve may follow its open)
    start = _utcnow()
    rows = []
    for alert in alerts:
        if alert.model != plan.name:
            raise ValueError(
                f"alert of model {alert.model!r} (incident {alert.incident_id}) was given with the "
                f"plan of model {plan.name!r}"
            )
        if alert.state == "resolved":
            names = told.get(alert.incident_id, set()) | outbox.channels_told(store, alert.incident_id)
            channels = [c for c in plan.alerts.channels if c.name in names]
            gone = names - {c.name for c in channels}
            if gone:
                log.warning(
                    "model %s: incident %s resolved, but channel(s) %s that were told of it are no longer "
                    "in the plan; not notified",
                    plan.name,
                    alert.incident_id,
                    sorted(gone),
                )
        else:
            channels = [
                c
                for c in plan.alerts.channels
                if SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[c.severity_floor or plan.alerts.min_severity]
            ]
            told.setdefault(alert.incident_id, set()).update(c.name for c in channels)
        for channel in channels:
            outbox_id = uuid.uuid4().hex
            payload = _scrub(canonical_json(render(channel, plan, alert, outbox_id)), secrets)
            rows.append(
                {
                    "id": outbox_id,
                    "model": plan.name,
                    "incident_id": alert.incident_id,
                    "state": alert.state,
                    "severity": alert.severity,
                    "family": str(getattr(alert.family, "value", alert.family)),
                    "metric": alert.metric,
                    "segment": alert.segment or "",
                    "partition_date": alert.day.isoformat(),
                    "channel_name": channel.name,
                    "channel_type": channel.type,
                    "payload": payload,
                    "status": "pending",
                    "attempts": 0,
                    # distinct, increasing times keep the delivery order of one call's alerts (open before resolve)
                    "created_at": outbox.iso(start + dt.timedelta(microseconds=len(rows))),
                }
            )
    return outbox.insert(store, rows)


# -- deliver ---------------------------------------------------------------------------------------------------


def deliver_pending(
    store: MetricStore,
    plan: MonitoringPlan,
    *,
    now: dt.datetime | None = None,
    max_attempts_per_call: int | None = None,
) -> DeliveryReport:
    """Send every pending notification of the plan's model that is due at ``now`` (default: the current time).

    Each is tried up to ``max_attempts_per_call`` times (default ``alerts.retry.attempts_per_call``) with
    exponential backoff. A transient failure (refused, timeout, HTTP 5xx/429, SMTP 4xx) leaves it ``pending``
    with ``next_attempt_at`` set, and the channel is not tried again in this call (its later rows wait, so one
    dead channel costs one row's attempts). A configuration problem (HTTP 4xx, malformed URL, unset env var)
    makes it ``config_error`` at once. Notifications of one incident reach a channel in order: a resolve waits
    for its open. Never raises for a delivery problem; ``StoreError`` if the outbox itself cannot be read.
    """
    cutoff = now or _utcnow()
    per_call = max_attempts_per_call or plan.alerts.retry.attempts_per_call
    if per_call < 1:
        raise ValueError(f"deliver_pending({plan.name}): max_attempts_per_call must be >= 1, got {per_call}")
    secrets = _secret_values(plan)
    attempted, waiting = [], []
    # a resolve never goes out before its open: an open (or escalation) stuck in config_error holds back the later
    # notifications of that incident on that channel until a person fixes the channel and re-queues it
    blocked: set[tuple[str, str]] = {
        (r.incident_id, r.channel_name)
        for r in outbox.read(store, plan.name, status="config_error")
        if r.state != "resolved"
    }
    down: dict[str, str] = {}
    for row in outbox.read(store, plan.name, status="pending"):
        key = (row.incident_id, row.channel_name)
        reason = None
        if key in blocked:
            reason = "waits for an earlier notification of this incident on this channel"
        elif row.channel_name in down:
            reason = f"not tried: the channel failed earlier in this call ({down[row.channel_name]})"
        elif row.next_attempt_at is not None and row.next_attempt_at > cutoff:
            reason = f"next attempt at {row.next_attempt_at.isoformat()} (last error: {row.last_error})"
        elif not outbox.claim(store, row.id, now=_utcnow(), until=_utcnow() + _lease(plan, per_call), due=cutoff):
            reason = "being delivered by another process"
        if reason is not None:
            blocked.add(key)
            waiting.append(
                Outcome(
                    row.id, row.model, row.channel_name, row.incident_id, row.state, "pending", row.attempts, reason
                )
            )
            continue
        result = _deliver_row(store, plan, row, per_call, secrets)
        attempted.append(result)
        if result.status == "pending":
            blocked.add(key)
            down[row.channel_name] = result.error or "failed"
    stuck = len(outbox.read(store, plan.name, status="config_error"))
    return DeliveryReport(plan.name, tuple(attempted), tuple(waiting), config_errors_total=stuck)


def notify(
    store: MetricStore, plan: MonitoringPlan, alerts: Iterable[Alert], *, now: dt.datetime | None = None
) -> DeliveryReport:
    """``enqueue`` then ``deliver_pending`` (which also retries older pending notifications of the model).

    Delivery problems never raise: they are in the report, logged as warnings and kept in the outbox. The
    report's ``enqueued`` holds the outbox ids of ``alerts``.
    """
    ids = enqueue(store, plan, alerts)
    report = replace(deliver_pending(store, plan, now=now), enqueued=tuple(ids))
    if not report.ok:
        log.warning("%s", report.summary())
    return report


def requeue(store: MetricStore, model: str, *, channel: str | None = None, ids: Sequence[str] | None = None) -> int:
    """After fixing a channel: put its ``config_error`` notifications back to pending, due at once; the next
    ``deliver_pending`` (or monitoring run) sends them. Returns how many rows were re-queued."""
    count = outbox.requeue(store, model, channel=channel, ids=ids, now=_utcnow())
    log.info("model %s: re-queued %d notification(s)%s", model, count, f" of channel {channel}" if channel else "")
    return count


# -- one row ---------------------------------------------------------------------------------------------------


def _deliver_row(
    store: MetricStore, plan: MonitoringPlan, row: outbox.OutboxRow, per_call: int, secrets: list[str]
) -> Outcome:
    retry = plan.alerts.retry
    channel = plan.alerts.channel(row.channel_name)
    where = f"model {row.model}, channel {row.channel_name} ({row.channel_type})"
    count = row.attempts

    def record_retry(exc: TransientDeliveryError) -> str:
        # called by the transport for each failed attempt it retries, then for the last one: every attempt is
        # written when it happens, and the lease is kept until the call is done with the row
        nonlocal count
        count += 1
        error = _scrub(str(exc), secrets)
        # the wait before a later call retries keeps doubling over calls, up to max_backoff_seconds
        delay = max(min(retry.backoff_seconds * 2**count, retry.max_backoff_seconds), exc.retry_after or 0.0)
        outbox.record_attempt(
            store,
            row,
            attempt=count,
            outcome="retry",
            error=error,
            at=_utcnow(),
            next_attempt_at=_utcnow() + dt.timedelta(seconds=delay),
            keep_lease=True,
        )
        log.info("%s: attempt %d failed: %s", where, count, error)
        return error

    policy = RetryPolicy(
        attempts=per_call,
        backoff_seconds=retry.backoff_seconds,
        max_pause_seconds=min(retry.max_backoff_seconds, _MAX_PAUSE_IN_CALL),
    )
    try:
        if channel is None or channel.type != row.channel_type:
            raise ChannelConfigError(
                f"{where}: the plan of {row.model} has no {row.channel_type} channel "
                f"named {row.channel_name!r} any more"
            )
        note = _send(plan, channel, row, where, policy, record_retry)
    except ChannelConfigError as exc:
        count += 1
        error = _scrub(str(exc), secrets)
        outbox.record_attempt(
            store,
            row,
            attempt=count,
            outcome="config_error",
            error=error,
            at=_utcnow(),
            next_attempt_at=None,
            keep_lease=False,
        )
        log.warning(
            "%s: not delivered, configuration error (fix it, then re-queue with "
            "monitoring_pipelines.notify.requeue): %s",
            where,
            error,
        )
        return _outcome(row, "config_error", count, error)
    except TransientDeliveryError as exc:
        last_error = record_retry(exc)
        outbox.release(store, row.id)
        log.warning(
            "%s: %s of incident %s not delivered after %d attempt(s) in all; kept pending for the next delivery "
            "call: %s",
            where,
            row.state,
            row.incident_id,
            count,
            last_error,
        )
        return _outcome(row, "pending", count, last_error)
    count += 1
    note = _scrub(note, secrets) if note else None
    outbox.record_attempt(
        store,
        row,
        attempt=count,
        outcome="delivered",
        error=note,
        at=_utcnow(),
        next_attempt_at=None,
        keep_lease=False,
    )
    if note:
        log.warning("%s: delivered with a problem: %s", where, note)
    return _outcome(row, "delivered", count, note)


def _outcome(row: outbox.OutboxRow, status: str, attempts: int, error: str | None) -> Outcome:
    return Outcome(row.id, row.model, row.channel_name, row.incident_id, row.state, status, attempts, error)


def _send(
    plan: MonitoringPlan,
    channel: AlertChannel,
    row: outbox.OutboxRow,
    where: str,
    policy: RetryPolicy,
    on_retry: OnRetry,
) -> str | None:
    """The attempts of one call (``policy``; ``on_retry`` hears each failed one that is retried). Returns a note
    when delivered with a problem (some e-mail recipients refused); raises the last failure."""
    retrying = {"retry": policy, "on_retry": on_retry}
    timeout = plan.alerts.retry.timeout_seconds
    body = row.payload.encode("utf-8")
    json_headers = {"Content-Type": "application/json; charset=utf-8"}
    if channel.type == "slack":
        url = _secret(plan, channel, "url_env", where)
        check_http_url(url, f"{where}: ${channel.url_env}")
        post(url, body, json_headers, timeout, where, **retrying)
    elif channel.type == "webhook":
        retrying["retry"] = replace(policy, max_span_seconds=_SIGNATURE_FRESH_SECONDS)
        url = _secret(plan, channel, "url_env", where)
        check_http_url(url, f"{where}: ${channel.url_env}")
        key = _secret(plan, channel, "hmac_key_env", where)
        stamp = str(int(time.time()))
        post(
            url,
            body,
            {
                **json_headers,
                TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: sign(body, stamp, key),
                "X-Monitoring-Event": row.state,
                "X-Monitoring-Delivery": row.id,
            },
            timeout,
            where,
            **retrying,
        )
    elif channel.type == "pagerduty":
        event = json.loads(row.payload)
        event["routing_key"] = _secret(plan, channel, "routing_key_env", where)
        check_http_url(channel.events_url, f"{where}: alerts.channels[{_index(plan, channel)}].url")
        post(channel.events_url, json.dumps(event).encode("utf-8"), json_headers, timeout, where, **retrying)
    else:
        username = _secret(plan, channel, "username_env", where) if channel.username_env else None
        password = _secret(plan, channel, "password_env", where) if channel.password_env else None
        refused = send_email(
            channel.smtp_host,
            channel.effective_smtp_port,
            starttls=channel.effective_starttls,
            username=username,
            password=password,
            message=build_email(json.loads(row.payload)),
            timeout=timeout,
            where=where,
            **retrying,
        )
        if refused:
            return "recipients refused: " + "; ".join(f"{r}: {code}" for r, (code, _) in refused.items())
    return None


def _index(plan: MonitoringPlan, channel: AlertChannel) -> int:
    return plan.alerts.channels.index(channel)


def _secret(plan: MonitoringPlan, channel: AlertChannel, field_name: str, where: str) -> str:
    name = channel.get(field_name)
    value = os.environ.get(name)
    if not value:
        state = "is empty" if value == "" else "is not set"
        raise ChannelConfigError(
            f"{where}: environment variable {name} (alerts.channels[{_index(plan, channel)}].{field_name}) {state}"
        )
    return value


def _secret_values(plan: MonitoringPlan) -> list[str]:
    values = {os.environ.get(c.get(f)) for c in plan.alerts.channels for f in _SECRET_FIELDS if c.get(f)}
    for value in list(values):
        # a receiver's error page may echo the request path: the token part of a webhook URL is secret too
        if value and "://" in value:
            try:
                parts = urllib.parse.urlsplit(value)
            except ValueError:  # malformed: the whole value is scrubbed, and delivery reports config_error
                continue
            values.update({parts.path, parts.query, parts.path + "?" + parts.query, parts.password})
    # longest first, so a secret containing another is masked whole
    return sorted((v for v in values if v and len(v) >= _MIN_SCRUB_LENGTH), key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _lease(plan: MonitoringPlan, per_call: int) -> dt.timedelta:
    retry = plan.alerts.retry
    # an SMTP attempt may wait on several replies, each up to the timeout
    worst = per_call * (retry.timeout_seconds * 6 + _MAX_PAUSE_IN_CALL) + 60
    return dt.timedelta(seconds=worst)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
