"""model_health: the model's day in one place (worst status per family, breaches) and its incidents."""

import dagster as dg
import pandas as pd

from monitoring_pipelines.actions.registry import CHAMPION
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.metadata import incident_records, num, table
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource, ReportsResource
from monitoring_pipelines.defs.steps import common, daily_partitions, day_of, traced, update_incidents
from monitoring_pipelines.incidents import tracker as incidents
from monitoring_pipelines.judge.health import figure, summarise, worst_fairness_gap
from monitoring_pipelines.plan.schema import MonitoringPlan

UPSTREAM = (n.DRIFT_REPORT, n.PERFORMANCE, n.FAIRNESS, n.SERVICE_HEALTH, n.CHALLENGER_COMPARISON)

HEADLINE = {  # metadata name -> (family, metric, segment)
    "share_of_drifted_features": ("drift", "share_of_drifted_features", ""),
    "roc_auc": ("performance", "roc_auc", ""),
    "estimated_roc_auc": ("performance_estimated", "roc_auc", ""),
    "label_coverage": ("performance", "label_coverage", ""),
    "latency_p99_ms": ("service", "latency_p99_ms", ""),
    "error_rate": ("service", "error_rate", ""),
}


def model_health_asset(plan: MonitoringPlan) -> dg.AssetsDefinition:
    m = plan.name

    @dg.asset(
        key=n.key(m, n.MODEL_HEALTH),
        partitions_def=daily_partitions(plan),
        deps=[n.key(m, a) for a in UPSTREAM],
        kinds={"sql"},
        **common(plan),
    )
    @traced(m, "health")
    def model_health(
        context, store: MetricStoreResource, registry: RegistryResource, reports: ReportsResource
    ) -> dg.MaterializeResult:
        """The model's day in one place: worst status per family (quality, drift, performance, fairness,
        service, comparison), the breaches behind it (which rule: absolute, ratio or z-score against the model's
        own baseline; on how many of the persistence window's days), the breaches held back by a persistence
        rule, and the incidents: the changes this evaluation made (opened, escalated, resolved) and the incidents
        still open. Re-running a day never opens or escalates an incident twice. Each change is sent to the plan's
        alert channels (through the outbox: a channel that is down delays, never drops, a notification).
        Sensors act on it."""
        day = day_of(context)
        rows = store.store.rows(m, start=day, end=day)
        assessments, changes, delivery = update_incidents(plan, context, store, reports, day, rows)
        summary = summarise(plan, day, rows, assessments)
        live = incidents.incidents(store.store, m, states=("open", "acknowledged"))
        figures = _headline(rows)
        change_records = [
            {
                "change": c.kind,
                "incident": c.incident_id,
                "family": c.family,
                "metric": c.metric,
                "segments": ", ".join(s or "(day)" for s in c.segments),
                "severity": c.severity,
                "day": c.day.isoformat(),
                "value": c.value,
                "threshold": c.threshold,
            }
            for c in changes
        ]
        return dg.MaterializeResult(
            metadata={
                "status": summary.status.value,
                **{f"status.{fam}": st.value for fam, st in summary.family_status.items()},
                "breaches": len(summary.breaches),
                "breach_list": table([_breach_record(b) for b in summary.breaches[:20]]),
                "held_back": len(summary.held_back),
                "held_back_list": table([_breach_record(b) for b in summary.held_back[:20]]),
                "incident_changes": table(change_records),
                "incident_changes_json": dg.MetadataValue.json(change_records),
                "open_incidents": len(live),
                "open_incident_list": table(incident_records(live)),
                "notifications": delivery.summary(),
                "notifications_pending": len(delivery.pending),
                "notification_config_errors": delivery.config_errors_total,
                "model_version": registry.registry.require(m, CHAMPION).version,
                **{k: num(v) for k, v in figures.items()},
            }
        )

    return model_health


def _breach_record(b) -> dict:
    return {
        "family": b.family,
        "metric": b.metric,
        "segment": b.segment,
        "value": b.value,
        "status": b.status.value,
        "threshold": b.threshold,
        "rule": "+".join(b.rules),
        "baseline": b.baseline_mean,
        "days": b.persistence,
        "note": b.note,
    }


def _headline(rows: pd.DataFrame) -> dict[str, float | None]:
    out = {name: figure(rows, *where) for name, where in HEADLINE.items()}
    out["worst_fairness_gap"] = worst_fairness_gap(rows)
    return out
