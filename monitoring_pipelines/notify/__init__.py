"""Notifications: one message per incident state change, to the channels of the model's plan.

An ``Alert`` (an incident opened, escalated or resolved) is written to the outbox (``enqueue``) and sent from
there (``deliver_pending``), so a channel that is down loses nothing: the notification stays pending and the
next call retries it. ``notify`` does both and never raises for a delivery problem. Channels: Slack (Block
Kit), a signed JSON webhook, e-mail (SMTP) and PagerDuty (Events API v2). Secrets come only from the
environment variables the plan names. See docs/alerts.md.

Modules: ``alert`` (the Alert, alert types and playbooks), ``messages`` (what each channel type sends),
``transport`` (HTTP through requests with urllib3's Retry, SMTP, how failures are classified, webhook
signatures), ``outbox`` (the tables of revision 003, store/tables.py), ``delivery`` (routing, retries, the report).
"""

from monitoring_pipelines.notify.alert import ALERT_TYPES, Alert, alert_type, dagster_run_url, playbook_for
from monitoring_pipelines.notify.delivery import DeliveryReport, Outcome, deliver_pending, enqueue, notify, requeue
from monitoring_pipelines.notify.messages import WEBHOOK_SCHEMA
from monitoring_pipelines.notify.outbox import OutboxRow
from monitoring_pipelines.notify.outbox import attempts as outbox_attempts
from monitoring_pipelines.notify.outbox import read as outbox_rows
from monitoring_pipelines.notify.transport import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ChannelConfigError,
    DeliveryError,
    TransientDeliveryError,
    sign,
    verify_signature,
)

__all__ = [
    "ALERT_TYPES",
    "Alert",
    "alert_type",
    "dagster_run_url",
    "playbook_for",
    "DeliveryReport",
    "Outcome",
    "deliver_pending",
    "enqueue",
    "notify",
    "requeue",
    "WEBHOOK_SCHEMA",
    "OutboxRow",
    "outbox_attempts",
    "outbox_rows",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ChannelConfigError",
    "DeliveryError",
    "TransientDeliveryError",
    "sign",
    "verify_signature",
]
