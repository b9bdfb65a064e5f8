-- Metric history per model / family / metric / segment (trend panels).
CREATE VIEW metric_history AS
SELECT model, model_version, alias, partition_date, family, metric, segment, value, status,
       warning_threshold, critical_threshold, direction
FROM metric_values
