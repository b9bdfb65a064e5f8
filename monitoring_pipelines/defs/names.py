"""Asset, job and sensor names: defined once, imported wherever they are used (never retyped)."""

from __future__ import annotations

import dagster as dg

# assets (keys are [model, name])
PREDICTION_LOG = "prediction_log"
LABELS = "labels"
CHAMPION_MODEL = "champion_model"
REFERENCE_PROFILE = "reference_profile"
SCORING_BATCH = "scoring_batch"
DRIFT_REPORT = "drift_report"
PERFORMANCE = "performance"
FAIRNESS = "fairness"
SERVICE_HEALTH = "service_health"
CHALLENGER_COMPARISON = "challenger_comparison"
MODEL_HEALTH = "model_health"
INCIDENTS = "incidents"  # unpartitioned: the incidents across all days

# assets a late label changes
LABEL_DEPENDENT = (PERFORMANCE, FAIRNESS, CHALLENGER_COMPARISON, MODEL_HEALTH)

# jobs and sensors, per model: f"{model}__{name}"
NIGHTLY_MONITORING = "nightly_monitoring"
NIGHTLY_SCHEDULE = "nightly_schedule"
REFRESH_REFERENCE = "refresh_reference"
RETRAIN_MODEL = "retrain_model"
PROMOTE_CHALLENGER = "promote_challenger"
ROLLBACK_CHAMPION = "rollback_champion"
LABELS_SENSOR = "labels_landed"
BREACH_SENSOR = "breach_retrain"
PROMOTE_SENSOR = "challenger_promotion"
ROLLBACK_SENSOR = "post_promotion_rollback"
REFERENCE_SENSOR = "champion_changed"

# run tags
TAG_MODEL = "monitoring/model"
TAG_TRIGGER = "monitoring/trigger"
TAG_TRIGGER_DAY = "monitoring/trigger_day"
TAG_CHAMPION_VERSION = "monitoring/champion_version"


def key(model: str, asset: str) -> dg.AssetKey:
    return dg.AssetKey([model, asset])


def scoped(model: str, name: str) -> str:
    """Job / sensor / schedule name of one model."""
    return f"{model}__{name}"
