"""Jobs, the nightly schedule and the sensors of one monitored model.

Sensors read Dagster's event log, the metric store and the MLflow registry; they never import Evidently or
Great Expectations (see test_definitions.py). Every run request carries a run key, so the daemon starts an
action once. Guard rails (cooldown, one retrain at a time, no blocked day, evidence, approval) are checked here,
before the request; the jobs check their own preconditions (a challenger to promote, a previous champion that
served, labelled data to train on) and refuse with the reason in the audit trail.
"""

import datetime as dt
import inspect
import json

import dagster as dg

from monitoring_pipelines.actions import operations as actions
from monitoring_pipelines.actions.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION
from monitoring_pipelines.data import sources
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.model_assets import quality_blocked
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource
from monitoring_pipelines.judge.metrics import Status
from monitoring_pipelines.plan.schema import MonitoringPlan

ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# Labels for a prediction day are searched in label rows labelled up to this many days after it, beyond the
# plan's expected delay (late stragglers).
LABEL_GRACE_DAYS = 7


class RetrainConfig(dg.Config):
    trigger: str = "manual"
    day: str = ""  # ISO day whose breach triggered the retrain; '' = the latest complete UTC day


class ActionConfig(dg.Config):
    reason: str = "manual"
    day: str = ""  # ISO day of the evidence / breach behind the action; '' = not tied to a day


def _alias_job(plan: MonitoringPlan, job: str, op: str, action, description: str) -> dg.JobDefinition:
    """A one-op job that moves aliases with ``action`` (actions.promote / actions.rollback), audited."""
    m = plan.name

    @dg.op(name=f"{m}__{op}", description=description)
    def alias_op(context, config: ActionConfig, store: MetricStoreResource, registry: RegistryResource) -> str:
        return action(
            plan,
            registry.registry,
            store.store,
            reason=config.reason,
            run_id=context.run_id,
            actor=context.run.tags.get("dagster/sensor_name", "user"),
            day=dt.date.fromisoformat(config.day) if config.day else None,
        )

    @dg.job(name=n.scoped(m, job), tags={n.TAG_MODEL: m}, description=description)
    def alias_job():
        alias_op()

    return alias_job


def _sensor(**kwargs):
    """``dg.sensor`` that shows the function's docstring in the UI (Dagster does not take it by itself)."""

    def decorate(fn):
        return dg.sensor(description=inspect.cleandoc(fn.__doc__), **kwargs)(fn)

    return decorate


HEALTH_PAGE = 500  # model_health records a sensor reads per tick; the cursor moves past them, the rest come next tick


def _new_health_records(context, model: str):
    """The oldest ``HEALTH_PAGE`` model_health materializations after the sensor's cursor (a storage id)."""
    return context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=n.key(model, n.MODEL_HEALTH), after_storage_id=int(context.cursor) if context.cursor else None
        ),
        limit=HEALTH_PAGE,
        ascending=True,
    ).records


def _newest_health_record(context, model: str):
    """The newest model_health materialization after the sensor's cursor, or None."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=n.key(model, n.MODEL_HEALTH), after_storage_id=int(context.cursor) if context.cursor else None
        ),
        limit=1,
        ascending=False,
    ).records
    return records[0] if records else None


def _meta(record, key: str, default=None):
    v = record.asset_materialization.metadata.get(key)
    return default if v is None else v.value


def build_model_automation(plan: MonitoringPlan, assets: list) -> dict[str, list]:
    m = plan.name
    partitioned = [a for a in assets if isinstance(a, dg.AssetsDefinition) and a.partitions_def is not None]

    nightly = dg.define_asset_job(
        n.scoped(m, n.NIGHTLY_MONITORING),
        selection=dg.AssetSelection.assets(*partitioned, n.key(m, n.INCIDENTS)),
        description=f"One UTC day of {m}: quality checks, drift, performance, fairness, service health, "
        "challenger comparison and the day's health summary.",
        tags={n.TAG_MODEL: m},
    )
    refresh = dg.define_asset_job(
        n.scoped(m, n.REFRESH_REFERENCE),
        selection=[n.key(m, n.REFERENCE_PROFILE)],
        description=f"Recompute the reference profile of {m}'s current champion version.",
        tags={n.TAG_MODEL: m},
    )

    @dg.op(name=f"{m}__retrain", pool="retrain")  # the instance's pool limit: one retrain at a time across models
    def retrain_op(context, config: RetrainConfig, store: MetricStoreResource, registry: RegistryResource) -> str:
        """Train a new version with the plan's recipe on the recent labelled window and register it as challenger."""
        day = dt.date.fromisoformat(config.day) if config.day else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        version = actions.retrain(
            plan,
            registry.registry,
            store.store,
            trigger=config.trigger,
            day=day,
            run_id=context.run_id,
            actor=context.run.tags.get("dagster/sensor_name", "user"),
        )
        context.log.info(f"model {m}: registered version {version} as challenger")
        return version

    @dg.job(name=n.scoped(m, n.RETRAIN_MODEL), tags={n.TAG_MODEL: m, "monitoring/kind": "retrain"})
    def retrain_model():
        """Retrain the model on its recent labelled window (plan: actions.retrain) and register the result as the
        MLflow challenger, tagged with the trigger, day, data window and this run's id."""
        retrain_op()

    promote_challenger = _alias_job(
        plan,
        n.PROMOTE_CHALLENGER,
        "promote",
        actions.promote,
        "Promote the MLflow challenger to champion (old champion kept as previous_champion). Refuses without a "
        "challenger. Launch it from the UI to approve a pending promotion.",
    )
    rollback_champion = _alias_job(
        plan,
        n.ROLLBACK_CHAMPION,
        "rollback",
        actions.rollback,
        "Roll the champion back to previous_champion (only a version that served as champion before).",
    )

    schedule = dg.build_schedule_from_partitioned_job(
        nightly,
        name=n.scoped(m, n.NIGHTLY_SCHEDULE),
        hour_of_day=plan.schedule.hour,
        minute_of_hour=plan.schedule.minute,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every night ({plan.schedule.cron} UTC) monitor {m}'s previous, completed UTC day.",
    )

    @_sensor(
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

    @_sensor(
        name=n.scoped(m, n.BREACH_SENSOR),
        job=retrain_model,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def breach_retrain(context: dg.SensorEvaluationContext, store: MetricStoreResource):
        """A critical breach named in the plan (actions.retrain.on, e.g. drift.critical) in a day's model_health
        starts retrain_model, once per model, day and trigger; not within the cooldown, not while a retrain
        runs, never on a day whose blocking quality checks failed."""
        retrain = plan.actions.retrain
        if retrain is None or not retrain.on:
            return dg.SkipReason(f"model {m}: the plan starts no retraining (actions.retrain.on)")
        records = _new_health_records(context, m)
        if not records:
            return dg.SkipReason("no new model_health")
        requests, skips, cursor = [], [], records[-1].storage_id
        for rec in records:
            day = rec.partition_key
            hit = _triggered(rec, retrain.on)
            if not hit:
                continue
            if quality_blocked(store.store, m, dt.date.fromisoformat(day)):
                skips.append(f"{day}: blocking quality checks failed")
                continue
            if _retrain_running(context, m):
                # look at this breach again on the next tick, once the running retrain has finished
                cursor = rec.storage_id - 1
                skips.append(f"{day}: a retrain is already running")
                break
            why = _cooldown(context, m, day, retrain.cooldown_hours, requests)
            if why:
                skips.append(f"{day}: {why}")
                continue
            requests.append(
                dg.RunRequest(
                    run_key=f"retrain:{m}:{day}:{hit[0]}",
                    run_config={"ops": {f"{m}__retrain": {"config": {"trigger": ",".join(hit), "day": day}}}},
                    tags={n.TAG_MODEL: m, n.TAG_TRIGGER: ",".join(hit), n.TAG_TRIGGER_DAY: day},
                )
            )
        for why in skips:
            context.log.info(f"model {m}: not retraining for {why}")
        return dg.SensorResult(
            run_requests=requests,
            cursor=str(cursor),
            skip_reason=None if requests else "; ".join(skips) or "no breach that retrains",
        )

    @_sensor(
        name=n.scoped(m, n.PROMOTE_SENSOR),
        job=promote_challenger,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def challenger_promotion(
        context: dg.SensorEvaluationContext, store: MetricStoreResource, registry: RegistryResource
    ):
        """Promote the challenger when its shadow evidence since it became challenger holds the plan's rule
        (actions.promote): enough labelled days, pooled ROC AUC uplift, a significant combined DeLong test, no
        fairness gap widened beyond the tolerance, no day with failed blocking checks. Days inside its training
        window, and days used up by an earlier rollback of the same version, never count. With approval: manual
        it records a pending promotion (audit trail and an observation on challenger_comparison) and nothing
        moves: a person launches promote_challenger."""
        from monitoring_pipelines.families.comparison import calculator as cmp

        rule = plan.actions.promote
        if rule is None:
            return dg.SkipReason(f"model {m}: the plan allows no promotion")
        reg = registry.registry
        challenger = reg.by_alias(m, CHALLENGER)
        if challenger is None:
            return dg.SkipReason("no challenger")
        if challenger.version == reg.require(m, CHAMPION).version:
            return dg.SkipReason(f"challenger v{challenger.version} is already the champion")
        evidence = cmp.stored_evidence(store.store, plan, challenger)
        refusals = evidence.refusals(rule)
        if refusals:
            return dg.SkipReason(f"{evidence.describe()}; not promoted: {'; '.join(refusals)}")
        reason = evidence.describe()
        day = evidence.last_day.isoformat()
        if rule.approval == "manual":
            audit = store.store.actions(m)
            already = audit[
                (audit["action"] == "promote")
                & (audit["status"] == "pending_approval")
                & (audit["to_version"] == challenger.version)
            ]
            skip = f"{reason}; awaiting approval: launch {n.scoped(m, n.PROMOTE_CHALLENGER)}"
            if not already.empty:
                return dg.SkipReason(skip)
            store.store.record_action(
                model=m,
                action="promote",
                status="pending_approval",
                trigger=reason,
                partition_date=evidence.last_day,
                to_version=challenger.version,
                actor=context.sensor_name,
            )
            pending = dg.AssetObservation(
                asset_key=n.key(m, n.CHALLENGER_COMPARISON),
                partition=day,
                metadata={
                    "pending_promotion": f"v{challenger.version}",
                    "evidence": reason,
                    "approve": f"launch job {n.scoped(m, n.PROMOTE_CHALLENGER)} with config "
                    f"ops.{m}__promote.config = {{reason: 'approved: ...', day: '{day}'}}",
                },
            )
            return dg.SensorResult(skip_reason=skip, asset_events=[pending])
        return dg.RunRequest(
            run_key=f"promote:{m}:v{challenger.version}:{day}",
            run_config={"ops": {f"{m}__promote": {"config": {"reason": reason, "day": day}}}},
            tags={n.TAG_MODEL: m, n.TAG_TRIGGER: "evidence", n.TAG_TRIGGER_DAY: day},
        )

    @_sensor(
        name=n.scoped(m, n.ROLLBACK_SENSOR),
        job=rollback_champion,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def post_promotion_rollback(
        context: dg.SensorEvaluationContext, store: MetricStoreResource, registry: RegistryResource
    ):
        """Roll back a promoted champion that breaches the plan's rollback triggers (actions.rollback.on) on one
        of the first within_days_of_promotion days it served (days attributed by the model_version of the
        prediction log, not by the alias at run time), when the previous champion, scored in shadow on the same
        days, was better. One rollback per promotion (run key)."""
        from monitoring_pipelines.families.comparison import calculator as cmp

        rule = plan.actions.rollback
        if rule is None or not rule.on:
            return dg.SkipReason(f"model {m}: the plan allows no rollback")
        newest = _newest_health_record(context, m)
        if newest is None:
            return dg.SkipReason("no new model_health")
        cursor = str(newest.storage_id)
        reg = registry.registry
        champion, previous = reg.require(m, CHAMPION), reg.by_alias(m, PREVIOUS_CHAMPION)
        if previous is None or actions.TAG_CHAMPION_SINCE not in champion.tags:
            return dg.SensorResult(cursor=cursor, skip_reason="no promotion to roll back")
        served = cmp.served_by(store.store.rows(m, family="comparison", metric="served_rows"))
        stint = []  # the days champion's version served since it last took over, newest first
        for day in sorted(served, reverse=True):
            if served[day] != champion.version:
                break
            stint.append(day)
        window = sorted(stint)[: rule.within_days_of_promotion]
        if not window:
            return dg.SensorResult(
                cursor=cursor, skip_reason=f"champion v{champion.version} has served no monitored day yet"
            )
        rows = store.store.rows(m, start=window[0], end=window[-1])
        breached = {d: hit for d in window if (hit := _day_triggers(rows[rows["partition_date"] == d], rule.on))}
        if not breached:
            return dg.SensorResult(
                cursor=cursor,
                skip_reason=f"champion v{champion.version} healthy on its first "
                f"{len(window)} served day(s) {window[0]}..{window[-1]}",
            )
        evidence = cmp.accumulate(
            rows, role=cmp.PREVIOUS_ROLE, version=previous.version, since=None, min_coverage=0.0, days=set(breached)
        )
        if not evidence.days or evidence.delta <= 0:
            why = (
                "was not scored on them"
                if not evidence.days
                else f"was not better (roc_auc delta {evidence.delta:+.4f})"
            )
            return dg.SensorResult(
                cursor=cursor,
                skip_reason=f"champion v{champion.version} breached "
                f"{sorted(d.isoformat() for d in breached)}, but previous champion "
                f"v{previous.version} {why}; not rolling back",
            )
        first = min(breached)
        reason = (
            f"champion v{champion.version} breached {', '.join(breached[first])} on {first} (served day "
            f"{window.index(first) + 1} of {rule.within_days_of_promotion}); previous champion "
            f"v{previous.version} was better on the breached days (roc_auc delta {evidence.delta:+.4f}, "
            f"{evidence.rows} rows)"
        )
        return dg.SensorResult(
            cursor=cursor,
            run_requests=[
                dg.RunRequest(
                    run_key=f"rollback:{m}:v{champion.version}:{champion.tags[actions.TAG_CHAMPION_SINCE]}",
                    run_config={"ops": {f"{m}__rollback": {"config": {"reason": reason, "day": stint[0].isoformat()}}}},
                    tags={n.TAG_MODEL: m, n.TAG_TRIGGER: breached[first][0], n.TAG_TRIGGER_DAY: first.isoformat()},
                )
            ],
        )

    @_sensor(
        name=n.scoped(m, n.REFERENCE_SENSOR),
        job=refresh,
        minimum_interval_seconds=120,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def champion_changed(context: dg.SensorEvaluationContext, registry: RegistryResource):
        """When the champion alias points to a version whose reference profile has not been computed yet,
        compute it (once per version), so the nightly run compares against the right reference."""
        champion = registry.registry.by_alias(m, CHAMPION)
        if champion is None:
            return dg.SkipReason(f"model {m}: no champion alias in the registry")
        latest = context.instance.fetch_materializations(n.key(m, n.REFERENCE_PROFILE), limit=1).records
        if latest and _meta(latest[0], "model_version") == champion.version:
            return dg.SkipReason(f"reference profile is current (v{champion.version})")
        # a failed refresh is requested again (a new key per failure), else every nightly run would stay blocked
        failed = context.instance.get_runs(
            dg.RunsFilter(
                job_name=n.scoped(m, n.REFRESH_REFERENCE),
                statuses=[dg.DagsterRunStatus.FAILURE],
                tags={n.TAG_CHAMPION_VERSION: champion.version},
            )
        )
        # one key per stint as champion (a rolled-back-to version must be profiled again: the latest profile is
        # another version's), and a new key per failure
        stint = champion.tags.get(actions.TAG_CHAMPION_SINCE, "")
        return dg.RunRequest(
            run_key=f"reference:{m}:v{champion.version}:{stint}:{len(failed)}",
            tags={n.TAG_MODEL: m, n.TAG_CHAMPION_VERSION: champion.version},
        )

    return {
        "jobs": [nightly, refresh, retrain_model, promote_challenger, rollback_champion],
        "schedules": [schedule],
        "sensors": [labels_landed, breach_retrain, challenger_promotion, post_promotion_rollback, champion_changed],
    }


def _triggered(record, rules: list[str]) -> list[str]:
    """The plan rules ('<family>.<warning|critical>') that a model_health record meets or exceeds."""
    return [
        r
        for r in rules
        if Status(_meta(record, f"status.{r.split('.')[0]}", "unknown")).rank >= Status(r.split(".")[1]).rank
    ]


def _day_triggers(rows, rules: list[str]) -> list[str]:
    """The plan rules ('<family>.<warning|critical>') that a day's stored rows meet or exceed."""
    out = []
    for r in rules:
        family, _, severity = r.partition(".")
        statuses = rows.loc[rows["family"] == family, "status"]
        if any(Status(s).rank >= Status(severity).rank for s in statuses):
            out.append(r)
    return out


def _retrain_running(context, model: str) -> bool:
    job = n.scoped(model, n.RETRAIN_MODEL)
    return bool(context.instance.get_runs(dg.RunsFilter(job_name=job, statuses=ACTIVE), limit=1))


def _cooldown(context, model: str, day: str, cooldown_hours: float, pending: list) -> str | None:
    """Why a retrain for ``day`` falls in the cooldown, or None. The cooldown is measured between trigger days
    (partition time), so backfills and the demo behave as nightly production does."""
    job = n.scoped(model, n.RETRAIN_MODEL)
    this = dt.date.fromisoformat(day)
    earlier = [r.tags.get(n.TAG_TRIGGER_DAY) for r in context.instance.get_runs(dg.RunsFilter(job_name=job))]
    earlier += [r.tags[n.TAG_TRIGGER_DAY] for r in pending]
    for d in filter(None, earlier):
        gap_hours = abs((this - dt.date.fromisoformat(d)).days) * 24
        if gap_hours < cooldown_hours:
            return f"cooldown: a retrain was triggered for {d} ({cooldown_hours:g} h cooldown)"
    return None
