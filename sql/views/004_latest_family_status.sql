-- The latest day's worst status per model and family (reads the view family_status_by_day).
CREATE VIEW latest_family_status AS
SELECT f.model, f.partition_date, f.family, f.status, f.breaches
FROM family_status_by_day f
JOIN (SELECT model, family, MAX(partition_date) AS partition_date FROM metric_values GROUP BY model, family) l
  ON l.model = f.model AND l.family = f.family AND l.partition_date = f.partition_date
