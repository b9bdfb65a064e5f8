-- Worst status per model, day and family ('critical' > 'warning' > 'unknown' > 'ok', as health.py ranks them).
CREATE VIEW family_status_by_day AS
SELECT model, partition_date, family,
       CASE MAX(CASE status WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 WHEN 'unknown' THEN 1 ELSE 0 END)
            WHEN 3 THEN 'critical' WHEN 2 THEN 'warning' WHEN 1 THEN 'unknown' ELSE 'ok' END AS status,
       SUM(CASE WHEN status IN ('warning', 'critical') THEN 1 ELSE 0 END) AS breaches
FROM metric_values
GROUP BY model, partition_date, family
