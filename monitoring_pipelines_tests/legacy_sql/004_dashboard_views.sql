-- 004: read-only views for dashboards (Grafana) and the Prometheus exporter.
--
-- Plain SQL that runs unchanged on SQLite (3.25+, window functions) and PostgreSQL 15. Views hold no data:
-- they always reflect metric_values / model_actions as they are now. Grafana's panel SQL (deploy/grafana/)
-- reads only these views, so the tables can evolve behind them.

-- The most recent stored row of every (model, family, metric, segment): the figure a dashboard or a
-- Prometheus scrape shows "now". value is NULL when the latest day could not compute it (e.g. labels not yet
-- arrived: status 'unknown'); latest_value_day / latest_value then give the last day that had a figure.
CREATE VIEW latest_metric_values AS
SELECT r.model, r.model_version, r.alias, r.partition_date, r.family, r.metric, r.segment, r.value,
       r.warning_threshold, r.critical_threshold, r.direction, r.status, r.run_id, r.computed_at,
       k.partition_date AS latest_value_day, k.value AS latest_value
FROM (
    SELECT mv.*, ROW_NUMBER() OVER (PARTITION BY model, family, metric, segment ORDER BY partition_date DESC) AS rn
    FROM metric_values mv
) r
LEFT JOIN (
    SELECT model, family, metric, segment, partition_date, value,
           ROW_NUMBER() OVER (PARTITION BY model, family, metric, segment ORDER BY partition_date DESC) AS rn
    FROM metric_values WHERE value IS NOT NULL
) k ON k.model = r.model AND k.family = r.family AND k.metric = r.metric AND k.segment = r.segment AND k.rn = 1
WHERE r.rn = 1;

-- Worst status per model, day and family ('critical' > 'warning' > 'unknown' > 'ok', as health.py ranks them).
CREATE VIEW family_status_by_day AS
SELECT model, partition_date, family,
       CASE MAX(CASE status WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 WHEN 'unknown' THEN 1 ELSE 0 END)
            WHEN 3 THEN 'critical' WHEN 2 THEN 'warning' WHEN 1 THEN 'unknown' ELSE 'ok' END AS status,
       SUM(CASE WHEN status IN ('warning', 'critical') THEN 1 ELSE 0 END) AS breaches
FROM metric_values
GROUP BY model, partition_date, family;

-- The latest day's worst status per model and family.
CREATE VIEW latest_family_status AS
SELECT f.model, f.partition_date, f.family, f.status, f.breaches
FROM family_status_by_day f
JOIN (SELECT model, family, MAX(partition_date) AS partition_date FROM metric_values GROUP BY model, family) l
  ON l.model = f.model AND l.family = f.family AND l.partition_date = f.partition_date;

-- Metric history per model / family / metric / segment (trend panels).
CREATE VIEW metric_history AS
SELECT model, model_version, alias, partition_date, family, metric, segment, value, status,
       warning_threshold, critical_threshold, direction
FROM metric_values;

-- The audit trail, newest first when ordered by created_at DESC (retrain / promote / rollback).
CREATE VIEW recent_actions AS
SELECT model, action, status, trigger, partition_date, from_version, to_version, reason, actor, run_id,
       created_at, updated_at
FROM model_actions;
