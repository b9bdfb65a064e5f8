"""labels_landed: re-run the label-dependent assets for exactly the days newly landed labels belong to."""

import datetime as dt
import json

import dagster as dg

from monitoring_pipelines.data import sources
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.automation.events import sensor
from monitoring_pipelines.defs.resources import MetricStoreResource
from monitoring_pipelines.defs.steps import quality_blocked
from monitoring_pipelines.plan.schema import MonitoringPlan

# Labels for a prediction day are searched in label rows labelled up to this many days after it, beyond the
# plan's expected delay (late stragglers).
LABEL_GRACE_DAYS = 7


def labels_landed_sensor(plan: MonitoringPlan, nightly) -> dg.SensorDefinition:
    m = plan.name

    @sensor(
        name=n.scoped(m, n.LABELS_SENSOR),
        job=nightly,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def labels_landed(context: dg.SensorEvaluationContext, store: MetricStoreResource):
        """When labels land for past days, re-run performance, fairness, the challenger comparison and the
        health summary for exactly the days those labels belong to; their metric rows are replaced."""
        if plan.data.labels is None:
            return dg.SkipReason(f"model {m}: the plan has no labels")
        before = json.loads(context.cursor) if context.cursor else {}
        now = sources.label_state(plan)
        if now == before:
            return dg.SkipReason("no new labels")
        new = sources.new_label_ids(plan, before, now)
        done = {p for p in context.instance.get_materialized_partitions(n.key(m, n.SCORING_BATCH))}
        days, orphans = sources.prediction_days_of(
            plan, new, candidates=sorted(done), lookback_days=plan.data.labels.expected_delay_days + LABEL_GRACE_DAYS
        )
        if orphans:
            context.log.warning(
                f"model {m}: {orphans} of {len(new)} new labels match no request of a monitored day "
                "(unknown request ids, or days not monitored yet); they are not used"
            )
        blocked = [d for d in days if quality_blocked(store.store, m, dt.date.fromisoformat(d))]
        days = [d for d in days if d not in blocked]
        token = sources.state_token(now)
        requests = [
            dg.RunRequest(
                run_key=f"labels:{m}:{d}:{token}",
                partition_key=d,
                asset_selection=[n.key(m, a) for a in n.LABEL_DEPENDENT],
                tags={n.TAG_MODEL: m, n.TAG_TRIGGER: "labels_landed"},
            )
            for d in days
        ]
        return dg.SensorResult(
            run_requests=requests,
            cursor=json.dumps(now, sort_keys=True),
            skip_reason=None
            if requests
            else f"{len(new)} new labels, none for a monitored day"
            + (f" (blocked days not re-run: {blocked})" if blocked else "")
            + (f"; {orphans} match no monitored request" if orphans else ""),
        )

    return labels_landed
