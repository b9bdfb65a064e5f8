"""Turn an alert into what each channel type sends. Pure functions; nothing here knows a secret.

Each renderer returns a JSON-serialisable payload that is stored in the outbox as it is and sent unchanged on
every attempt (the webhook body byte for byte), so a retry sends exactly what was first meant. Secrets are
added only at send time (``transport``): the Slack URL, the webhook signature, the SMTP login and the
PagerDuty routing key.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from monitoring_pipelines.notify.alert import Alert, fmt, playbook_for
from monitoring_pipelines.plan.schema import AlertChannel, MonitoringPlan

WEBHOOK_SCHEMA = "monitoring_pipelines.alert/v1"
SOURCE = "monitoring_pipelines"

_LINK_LABELS = {"report": "Report", "dagster_run": "Dagster run", "playbook": "Playbook"}
_SEVERITY_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "ok": ":large_green_circle:"}


def render(channel: AlertChannel, plan: MonitoringPlan, alert: Alert, outbox_id: str) -> dict[str, Any]:
    """The payload of ``alert`` for ``channel`` (without secrets)."""
    links = resolved_links(plan, alert)
    if channel.type == "slack":
        return slack_message(alert, links)
    if channel.type == "webhook":
        return webhook_payload(alert, links, outbox_id)
    if channel.type == "email":
        return email_message(channel, alert, links)
    return pagerduty_event(alert, links)


def resolved_links(plan: MonitoringPlan, alert: Alert) -> dict[str, str]:
    links = {k: str(v) for k, v in alert.links.items() if v}
    links.setdefault("playbook", playbook_for(plan, alert.family, alert.metric))
    return links


def canonical_json(payload: Any) -> str:
    """The exact text stored and sent: sorted keys, no NaN (invalid JSON), UTF-8 kept readable."""
    return json.dumps(jsonable(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def jsonable(value: Any) -> Any:
    """Plain JSON values from what monitoring code produces (numpy scalars, dates, NaN -> None, tuples)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item())
    return str(value)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat() if moment else None


def _is_url(link: str) -> bool:
    return bool(re.match(r"^https?://", link))


def _context_lines(alert: Alert) -> list[tuple[str, list[str]]]:
    """(title, lines) sections from the alert context, the known keys first and readable."""
    ctx = dict(alert.context)
    out = []
    feats = ctx.pop("top_drifted_features", None)
    if feats:
        lines = []
        for f in list(feats)[:10]:
            if isinstance(f, Mapping):
                score = f.get("score")
                lines.append(f"{f.get('feature')}" + (f" (score {fmt(float(score))})" if score is not None else ""))
            else:
                lines.append(str(f))
        out.append(("Top drifted features", lines))
    worst = ctx.pop("worst_group", None)
    if worst:
        if isinstance(worst, Mapping):
            value, metric = worst.get("value"), worst.get("metric")
            shown = " ".join(x for x in (metric, fmt(float(value)) if value is not None else None) if x)
            text = f"{worst.get('group')}" + (f" ({shown})" if shown else "")
        else:
            text = str(worst)
        out.append(("Worst group", [text]))
    breaches = ctx.pop("breaches", None)
    if breaches:
        out.append(("Breaches", [str(b) for b in list(breaches)[:10]]))
    if ctx:
        out.append(("Context", [f"{k}: {jsonable(v)}" for k, v in ctx.items()]))
    return out


def _facts(alert: Alert) -> list[tuple[str, str]]:
    return [
        ("Metric", alert.metric_path),
        ("Value vs threshold", alert.comparison),
        ("Day", alert.day.isoformat()),
        ("Model version", alert.model_version or "unknown"),
        ("Incident", f"{alert.incident_id} ({alert.state})"),
    ]


# -- slack -----------------------------------------------------------------------------------------------------


def _mrkdwn(text: str) -> str:
    # Slack's mrkdwn only needs these three escaped; anything else would show literally
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(alert: Alert, links: Mapping[str, str]) -> dict[str, Any]:
    """A Block Kit message: header (severity + model), the facts as fields, the context, then the links."""
    label = "RESOLVED" if alert.state == "resolved" else alert.severity.upper()
    header = f"{_SEVERITY_ICON[alert.severity]} {label}: {alert.model} {alert.metric_path}"
    if alert.state == "escalated":
        header = f"{_SEVERITY_ICON[alert.severity]} ESCALATED to {label}: {alert.model} {alert.metric_path}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(header, 150), "emoji": True}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": _cut(f"*{k}*\n{_mrkdwn(v)}", 2000)} for k, v in _facts(alert)],
        },
    ]
    for title, lines in _context_lines(alert):
        body = "\n".join(f"• {_mrkdwn(line)}" for line in lines)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"*{title}*\n{body}", 3000)}})
    parts = []
    for key, link in links.items():
        label_text = _LINK_LABELS.get(key, key.replace("_", " ").capitalize())
        parts.append(f"<{link}|{label_text}>" if _is_url(link) else f"{label_text}: `{_mrkdwn(link)}`")
    if parts:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut("  |  ".join(parts), 3000)}]})
    return {"text": _cut(alert.headline, 3000), "blocks": blocks}


# -- webhook ---------------------------------------------------------------------------------------------------


def webhook_payload(alert: Alert, links: Mapping[str, str], outbox_id: str) -> dict[str, Any]:
    """The versioned JSON body (schema documented in docs/alerts.md)."""
    return {
        "schema": WEBHOOK_SCHEMA,
        "event_id": f"{alert.incident_id}:{alert.state}",
        "delivery_id": outbox_id,
        "summary": alert.headline,
        "model": {"name": alert.model, "version": alert.model_version},
        "incident": {
            "id": alert.incident_id,
            "state": alert.state,
            "severity": alert.severity,
            "opened_at": _iso(alert.opened_at),
            "at": _iso(alert.at),
        },
        "metric": {
            "family": alert.family,
            "name": alert.metric,
            "segment": alert.segment,
            "value": alert.value,
            "threshold": alert.threshold,
            "direction": alert.direction,
        },
        "day": alert.day.isoformat(),
        "context": dict(alert.context),
        "links": dict(links),
    }


# -- email -----------------------------------------------------------------------------------------------------


def _msgid_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)


def email_message(channel: AlertChannel, alert: Alert, links: Mapping[str, str]) -> dict[str, Any]:
    """Subject, plain text and HTML. Message-IDs derive from the incident, so a client threads its state
    changes and a re-sent copy carries the same id."""
    facts = _facts(alert)
    sections = _context_lines(alert)
    text_lines = [alert.headline, ""] + [f"{k}: {v}" for k, v in facts]
    for title, lines in sections:
        text_lines += ["", f"{title}:"] + [f"  - {line}" for line in lines]
    text_lines += ["", "Links:"] + [f"  {_LINK_LABELS.get(k, k)}: {v}" for k, v in links.items()]
    text_lines += ["", f"-- sent by {SOURCE} for model {alert.model}"]

    e = html.escape
    rows = "".join(f'<tr><th align="left">{e(k)}</th><td>{e(v)}</td></tr>' for k, v in facts)
    parts = [f"<h2>{e(alert.headline)}</h2>", f"<table>{rows}</table>"]
    for title, lines in sections:
        parts.append(f"<h3>{e(title)}</h3><ul>" + "".join(f"<li>{e(line)}</li>" for line in lines) + "</ul>")
    link_items = "".join(
        f'<li><a href="{e(v)}">{e(_LINK_LABELS.get(k, k))}</a></li>'
        if _is_url(v)
        else f"<li>{e(_LINK_LABELS.get(k, k))}: <code>{e(v)}</code></li>"
        for k, v in links.items()
    )
    parts.append(f"<h3>Links</h3><ul>{link_items}</ul>")
    root = f"<{_msgid_part(alert.incident_id)}.opened@{SOURCE}>"
    headers = {
        "Message-ID": f"<{_msgid_part(alert.incident_id)}.{alert.state}@{SOURCE}>",
        "X-Monitoring-Incident": alert.incident_id,
        "X-Monitoring-State": alert.state,
        "X-Monitoring-Severity": alert.severity,
    }
    if alert.state != "opened":
        headers.update({"In-Reply-To": root, "References": root})
    return {
        "from": channel.sender,
        "to": list(channel.to or []),
        "subject": alert.headline,
        "text": "\n".join(text_lines) + "\n",
        "html": "<html><body>" + "".join(parts) + "</body></html>",
        "headers": headers,
    }


# -- pagerduty -------------------------------------------------------------------------------------------------


def pagerduty_event(alert: Alert, links: Mapping[str, str]) -> dict[str, Any]:
    """An Events API v2 event without ``routing_key`` (added at send time). ``dedup_key`` is the incident id,
    so an escalation updates the page opened for it and the recovery resolves it."""
    if alert.state == "resolved":
        return {"event_action": "resolve", "dedup_key": alert.incident_id}
    details = {
        "model": alert.model,
        "model_version": alert.model_version,
        "day": alert.day.isoformat(),
        "metric": alert.metric_path,
        "value": alert.value,
        "threshold": alert.threshold,
        "direction": alert.direction,
        "state": alert.state,
        **dict(alert.context),
        "links": dict(links),
    }
    event: dict[str, Any] = {
        "event_action": "trigger",
        "dedup_key": alert.incident_id,
        "payload": {
            "summary": _cut(alert.headline, 1024),
            "source": f"{SOURCE}/{alert.model}",
            "severity": alert.severity,
            "timestamp": _iso(alert.at),
            "component": alert.model,
            "group": alert.family,
            "class": f"{alert.family}.{alert.metric}",
            "custom_details": details,
        },
        "client": SOURCE,
        "links": [{"href": v, "text": _LINK_LABELS.get(k, k)} for k, v in links.items() if _is_url(v)],
    }
    if _is_url(links.get("dagster_run", "")):
        event["client_url"] = links["dagster_run"]
    if event["payload"]["timestamp"] is None:
        del event["payload"]["timestamp"]
    return event
