-- Incidents not yet resolved (open or acknowledged), for the "open incidents" panels.
CREATE VIEW open_incidents AS
SELECT id, model, family, metric, state, severity, model_version, segments, first_day, last_breach_day, value,
       threshold, direction, opened_at, escalated_at, acknowledged_at, acknowledged_by
FROM incidents
WHERE state IN ('open', 'acknowledged')
