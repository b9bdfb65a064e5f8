-- 003: the notification outbox (monitoring_pipelines/notify): one row per (incident state change, channel),
-- and one row per delivery attempt. Same portability rules as 001: TEXT ids generated in Python (uuid4 hex),
-- ISO-8601 UTC timestamps bound by Python, no DB defaults for times, no BEGIN/COMMIT. IF NOT EXISTS keeps the
-- file harmless should it ever run against a database that already has the tables.

-- A notification is written here first (enqueue) and sent afterwards (deliver_pending), so nothing is lost
-- when a channel is down: the row stays 'pending' and every later delivery call retries it once due.
CREATE TABLE IF NOT EXISTS notification_outbox (
    id              TEXT PRIMARY KEY,              -- uuid4 hex
    model           TEXT NOT NULL,
    incident_id     TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('opened', 'escalated', 'resolved')),
    severity        TEXT NOT NULL CHECK (severity IN ('warning', 'critical', 'ok')),
    family          TEXT NOT NULL,
    metric          TEXT NOT NULL,
    segment         TEXT NOT NULL DEFAULT '',
    partition_date  DATE NOT NULL,
    channel_name    TEXT NOT NULL,                 -- alerts.channels[].name of the plan
    channel_type    TEXT NOT NULL CHECK (channel_type IN ('slack', 'webhook', 'email', 'pagerduty')),
    payload         TEXT NOT NULL,                 -- the rendered message as JSON, WITHOUT secrets (added at send time)
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'config_error')),
    attempts        INTEGER NOT NULL DEFAULT 0,    -- delivery attempts so far, over all calls
    last_error      TEXT,                          -- the latest failure, secrets masked; kept after delivery
    created_at      TIMESTAMP WITH TIME ZONE NOT NULL,
    last_attempt_at TIMESTAMP WITH TIME ZONE,
    next_attempt_at TIMESTAMP WITH TIME ZONE,      -- pending rows: not retried before this
    delivered_at    TIMESTAMP WITH TIME ZONE,
    locked_until    TIMESTAMP WITH TIME ZONE,      -- a delivering process's lease: two processes never send one row
    -- one notification per incident state change and channel: enqueueing it again is a no-op
    CONSTRAINT uq_notification_outbox UNIQUE (incident_id, state, channel_name)
);

CREATE INDEX IF NOT EXISTS ix_notification_outbox_due ON notification_outbox (model, status, next_attempt_at);
CREATE INDEX IF NOT EXISTS ix_notification_outbox_incident ON notification_outbox (incident_id, channel_name);

-- Every attempt, delivered or not, for the audit of "who was told what, when".
CREATE TABLE IF NOT EXISTS notification_attempts (
    outbox_id    TEXT NOT NULL REFERENCES notification_outbox (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,                 -- 1, 2, ... over all calls
    attempted_at TIMESTAMP WITH TIME ZONE NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'config_error')),
    error        TEXT,                             -- secrets masked
    PRIMARY KEY (outbox_id, attempt)
);
