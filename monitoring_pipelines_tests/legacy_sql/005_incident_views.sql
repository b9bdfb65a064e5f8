-- 005: dashboard views over the incidents of sql/002 (SQLite 3.25+ and PostgreSQL 15, unchanged).

-- Incidents not yet resolved (open or acknowledged), for the "open incidents" panels.
CREATE VIEW open_incidents AS
SELECT id, model, family, metric, state, severity, model_version, segments, first_day, last_breach_day, value,
       threshold, direction, opened_at, escalated_at, acknowledged_at, acknowledged_by
FROM incidents
WHERE state IN ('open', 'acknowledged');

-- Every incident state change with its incident's metric (timelines; notifications are kind 'notified').
CREATE VIEW incident_timeline AS
SELECT e.incident_id, e.model, i.family, i.metric, e.kind, e.day, e.severity, e.value, e.threshold, e.actor,
       e.note, e.run_id, e.at
FROM incident_events e
JOIN incidents i ON i.id = e.incident_id;
