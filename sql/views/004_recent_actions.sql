-- The audit trail, newest first when ordered by created_at DESC (retrain / promote / rollback).
CREATE VIEW recent_actions AS
SELECT model, action, status, trigger, partition_date, from_version, to_version, reason, actor, run_id,
       created_at, updated_at
FROM model_actions
