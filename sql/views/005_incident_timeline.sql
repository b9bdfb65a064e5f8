-- Every incident state change with its incident's metric (timelines; notifications are kind 'notified').
CREATE VIEW incident_timeline AS
SELECT e.incident_id, e.model, i.family, i.metric, e.kind, e.day, e.severity, e.value, e.threshold, e.actor,
       e.note, e.run_id, e.at
FROM incident_events e
JOIN incidents i ON i.id = e.incident_id
