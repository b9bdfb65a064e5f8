-- The most recent stored row of every (model, family, metric, segment): the figure a dashboard or a Prometheus
-- scrape shows "now". value is NULL when the latest day could not compute it (e.g. labels not yet arrived:
-- status 'unknown'); latest_value_day / latest_value then give the last day that had a figure.
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
WHERE r.rn = 1
