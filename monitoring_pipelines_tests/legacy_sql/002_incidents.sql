-- 002: incidents (monitoring_pipelines/incidents.py): one incident per breached (model, family, metric)
-- episode, and its timeline. Same portability rules as 001: TEXT ids generated in Python (uuid4 hex), dates and
-- ISO-8601 UTC timestamps bound by Python, no DB defaults for times, no BEGIN/COMMIT. IF NOT EXISTS keeps the
-- file harmless should it ever run against a database that already has the tables.

-- An incident owns the days from its first breached day (first_day) on; once resolved, up to closed_day. A
-- breach on an owned day attaches to it; a breach on a later day opens a new incident (docs/alerts-statuses.md).
CREATE TABLE IF NOT EXISTS incidents (
    id              TEXT PRIMARY KEY,              -- uuid4 hex
    model           TEXT NOT NULL,
    family          TEXT NOT NULL,
    metric          TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    severity        TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),   -- the highest reached
    model_version   TEXT,                          -- the version that served the latest breached day
    segments        TEXT NOT NULL DEFAULT '[]',    -- JSON list of every segment that breached ('' = the whole day)
    first_day       DATE NOT NULL,                 -- the earliest breached day attached
    last_breach_day DATE NOT NULL,                 -- the latest breached day attached
    closed_day      DATE,                          -- resolved: the day it resolved on (auto) or its last breach (manual)
    value           DOUBLE PRECISION,              -- the worst segment's value on last_breach_day
    threshold       DOUBLE PRECISION,              -- the level it breached (the effective level of that day)
    direction       TEXT CHECK (direction IN ('max', 'min')),
    opened_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    escalated_at    TIMESTAMP WITH TIME ZONE,
    acknowledged_at TIMESTAMP WITH TIME ZONE,
    acknowledged_by TEXT,
    resolved_at     TIMESTAMP WITH TIME ZONE,
    resolved_by     TEXT,                          -- a person, or 'auto'
    resolution      TEXT CHECK (resolution IN ('auto', 'manual')),
    updated_at      TIMESTAMP WITH TIME ZONE NOT NULL
);

-- At most one incident per metric is not resolved: two evaluations can never open duplicates.
CREATE UNIQUE INDEX IF NOT EXISTS uq_incidents_one_open ON incidents (model, family, metric) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS ix_incidents_model ON incidents (model, family, metric, first_day);

-- The timeline: what happened to an incident, when (at: wall clock), about which monitored day (day).
CREATE TABLE IF NOT EXISTS incident_events (
    id          TEXT PRIMARY KEY,                  -- uuid4 hex
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,                  -- 1, 2, ... per incident: the timeline order
    model       TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('opened', 'attached', 'escalated', 'notified', 'acknowledged', 'resolved')),
    day         DATE,                              -- the monitored day the event is about (NULL: none, e.g. notified)
    severity    TEXT CHECK (severity IN ('ok', 'warning', 'critical')),
    value       DOUBLE PRECISION,
    threshold   DOUBLE PRECISION,
    segments    TEXT,                              -- JSON list: the segments that breached on that day
    actor       TEXT,                              -- who: 'auto', a person, a channel
    note        TEXT,
    run_id      TEXT,                              -- the Dagster run that evaluated the day
    at          TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT uq_incident_events_seq UNIQUE (incident_id, seq)
);

-- A day is attached to an incident once: re-running the day cannot add it twice.
CREATE UNIQUE INDEX IF NOT EXISTS uq_incident_events_day ON incident_events (incident_id, day)
    WHERE kind IN ('opened', 'attached');
CREATE INDEX IF NOT EXISTS ix_incident_events_model ON incident_events (model, at);
