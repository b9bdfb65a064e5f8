"""The asset graph of one monitored model (DESIGN section 3), built from its plan.

Every asset is thin: load, call a plain function, judge the figures against the plan, write the day's rows to
the metric store in one transaction, and return the figures a person looks at first as metadata.
"""

import datetime as dt
import functools

import dagster as dg
import pandas as pd

from monitoring_pipelines.actions.registry import CHALLENGER, CHAMPION
from monitoring_pipelines.data import sources
from monitoring_pipelines.data.reference import ReferenceProfile
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource, ReportsResource
from monitoring_pipelines.errors import BlockedDayError, RegistryError
from monitoring_pipelines.incidents import tracker as incidents
from monitoring_pipelines.judge.health import assess_rows, figure, judge, read_history, summarise, worst_fairness_gap
from monitoring_pipelines.judge.metrics import Family, MetricValue
from monitoring_pipelines.ops import telemetry
from monitoring_pipelines.plan.schema import MonitoringPlan

_log = telemetry.get_logger("monitoring_pipelines.assets")


def _raw(value):
    """A metadata entry's plain value (MetadataValue objects carry it in .value)."""
    value = getattr(value, "value", value)
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None


def daily_partitions(plan: MonitoringPlan) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=plan.schedule.start_date.isoformat(), timezone="UTC")


def quality_blocked(store, model: str, day: dt.date) -> bool:
    """Whether the stored quality result of ``day`` has failed blocking checks."""
    rows = store.rows(model, family="quality", metric="blocking_failed_checks", start=day, end=day)
    return bool(len(rows)) and float(rows["value"].iloc[0]) > 0


def _day(context) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)


def _table(records: list[dict]) -> dg.MetadataValue:
    if not records:
        return dg.MetadataValue.md("_none_")
    cols = list(records[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in records]
    return dg.MetadataValue.md("\n".join(lines))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def _metadata(headline: dict) -> dict:
    """A result's headline as Dagster metadata: numbers as floats (plotted across partitions), text as text."""
    return {k: v if isinstance(v, str) else _num(v) for k, v in headline.items()}


def _num(v: float | None) -> dg.MetadataValue:
    """Numeric metadata Dagster can plot; a missing figure is NaN (shown empty), never a fake 0."""
    return dg.MetadataValue.float(float("nan") if v is None else float(v))


def build_model_assets(plan: MonitoringPlan) -> list:
    m = plan.name
    daily = daily_partitions(plan)
    owners = [f"team:{plan.owners.team}"]
    common = dict(group_name=m, owners=owners)

    def traced(step: str):
        """Run an asset's body as a monitoring step: a span (when OTEL_* configures an endpoint) and log lines
        tagged with model, day, run and family; the row count and version come from the result's metadata."""

        def wrap(fn):
            @functools.wraps(fn)  # Dagster reads the parameters and docstring through __wrapped__
            def body(context, *args, **kwargs):
                day = context.partition_key if context.has_partition_key else None
                with telemetry.step(step, model=m, day=day, run_id=context.run_id) as span:
                    result = fn(context, *args, **kwargs)
                    meta = getattr(result, "metadata", None) or {}
                    rows = _raw(meta.get("dagster/row_count", meta.get("evaluated_rows")))
                    span.set(rows=rows, model_version=_raw(meta.get("model_version")))
                    _log.info(
                        "model %s: %s of %s done%s",
                        m,
                        step,
                        day or "all days",
                        f" ({rows} rows)" if rows is not None else "",
                    )
                    return result

            return body

        return wrap

    def store_day(
        context,
        store: MetricStoreResource,
        families: list[Family],
        values: list[MetricValue],
        version: str,
        alias: str = CHAMPION,
        unjudged: frozenset[str] = frozenset(),
    ):
        day = _day(context)
        history = read_history(store.store, plan, day, [f.value for f in families])
        rows = judge(
            plan,
            day,
            values,
            model_version=version,
            alias=alias,
            run_id=context.run_id,
            history=history,
            unjudged_segments=unjudged,
        )
        store.store.replace_rows(m, day, [f.value for f in families], rows)
        return rows

    def update_incidents(
        context, store: MetricStoreResource, reports: ReportsResource, day: dt.date, rows: pd.DataFrame
    ):
        """Judge the day's stored rows against the plan (with history), open / escalate / resolve incidents and
        send each change to the plan's channels. Returns (assessments, changes, delivery report)."""
        from monitoring_pipelines.incidents.alerting import dispatch

        assessments = assess_rows(plan, day, rows, read_history(store.store, plan, day))
        changes = incidents.update(store.store, plan, day, rows, run_id=context.run_id, assessments=assessments)
        delivery = dispatch(
            store.store,
            plan,
            changes,
            run_id=context.run_id,
            report_url=lambda c: reports.url_for(m, "drift", c.day) if c.family == "drift" else None,
        )
        if not delivery.ok:
            context.log.warning(delivery.summary())
        return assessments, changes, delivery

    def refuse_if_blocked(context, store: MetricStoreResource) -> None:
        """Blocking quality checks stop every decision-feeding figure of the day, also on later re-runs
        (late labels, manual launches), not only inside the nightly run where Dagster skips the steps."""
        day = _day(context)
        if quality_blocked(store.store, m, day):
            raise BlockedDayError(
                f"model {m} day {day}: blocking quality checks of {m}/{n.SCORING_BATCH} failed; "
                f"{context.asset_key.to_user_string()} is not computed on a broken batch"
            )

    prediction_log = dg.AssetSpec(
        n.key(m, n.PREDICTION_LOG),
        partitions_def=daily,
        kinds={plan.data.predictions.source},
        description=f"The day's prediction log of {m}, written by the serving system "
        f"({plan.data.predictions.source}: {plan.data.predictions.path or plan.data.predictions.table}).",
        **common,
    )
    labels = dg.AssetSpec(
        n.key(m, n.LABELS),
        kinds={plan.data.labels.source} if plan.data.labels else set(),
        description=f"Delayed ground-truth labels of {m} (expected about "
        f"{plan.data.labels.expected_delay_days if plan.data.labels else '?'} days after the prediction).",
        **common,
    )
    champion_model = dg.AssetSpec(
        n.key(m, n.CHAMPION_MODEL),
        kinds={"mlflow"},
        description=f"The MLflow registered model {m}; aliases champion, challenger and previous_champion name versions.",
        **common,
    )

    @dg.asset(key=n.key(m, n.REFERENCE_PROFILE), deps=[champion_model], kinds={"pandas", "mlflow"}, **common)
    @traced("reference")
    def reference_profile(context, registry: RegistryResource) -> dg.MaterializeResult[ReferenceProfile]:
        """Reference statistics of the current champion version, computed once per version from all of its
        reference rows and reused every night: null shares, ranges and categories for the quality checks, the
        drift statistics of every model input, the score and the protected attributes, and a bounded sample
        for the illustrative HTML drift report. A reference of at most 1000 rows is flagged here: its drift
        figures are measured but not alerted on (docs/drift.md)."""
        ref = registry.registry.require(m, CHAMPION)
        if plan.data.reference.source == "mlflow_artifact":
            frame = registry.registry.read_reference(ref, plan.data.reference.artifact_path)
        else:
            frame = sources.read_reference(plan)
        from monitoring_pipelines.families.drift import calculator as drift
        from monitoring_pipelines.profiling import build_profile

        profile = build_profile(frame, plan, ref.version)
        small = drift.small_reference_columns(plan, profile.drift_reference)
        untested = [
            c
            for c in plan.protected_attributes
            if c not in plan.features.model_inputs and c not in profile.drift_reference
        ]
        warning = "none"
        if small:
            limit = drift.drift_stats.SMALL_REFERENCE_ROWS
            warning = (
                f"{len(small)} column(s) have at most {limit} reference values: {', '.join(small)}. "
                "Evidently's p-value tests apply there (chi-square flags any category the reference lacks), "
                "so their drift figures are stored with status unknown and never alerted on; provide a "
                "larger reference or choose their test in drift.columns (docs/drift.md)."
            )
            context.log.warning(f"model {m} version {ref.version}: {warning}")
        return dg.MaterializeResult(
            value=profile,
            metadata={
                "model_version": ref.version,
                "alias": CHAMPION,
                "dagster/row_count": profile.row_count,
                "sample_rows": len(profile.sample),
                "drift_columns": len(profile.drift_reference),
                "drift_small_reference": warning,
                "protected_attributes_not_drift_tested": ", ".join(untested) or "none",
            },
        )

    from monitoring_pipelines.families.quality.calculator import check_specs

    specs = check_specs(plan)
    batch_key = n.key(m, n.SCORING_BATCH)

    @dg.asset(
        key=batch_key,
        partitions_def=daily,
        deps=[prediction_log],
        ins={"reference_profile": dg.AssetIn(n.key(m, n.REFERENCE_PROFILE))},
        check_specs=[
            dg.AssetCheckSpec(s.name, asset=batch_key, blocking=s.blocking, description=s.description) for s in specs
        ],
        kinds={"pandas", "great_expectations"},
        **common,
    )
    @traced("quality")
    def scoring_batch(
        context,
        reference_profile: ReferenceProfile,
        store: MetricStoreResource,
        registry: RegistryResource,
        reports: ReportsResource,
    ):  # value: the day's DataFrame (no annotation: checks add outputs)
        """The day's predictions, checked with Great Expectations against the champion's reference profile, the
        model's recent daily volume and the plan's own expectations (docs/quality.md). Each expectation is an
        asset check; blocking ones stop drift, performance, fairness and comparison for the day, so a broken
        batch never feeds a decision."""
        from monitoring_pipelines.families.quality import calculator as quality

        day = _day(context)
        champion = registry.registry.require(m, CHAMPION)
        if champion.version != reference_profile.model_version:
            raise RegistryError(
                f"model {m} day {day}: the reference profile is for version {reference_profile.model_version} but the "
                f"champion is version {champion.version}; materialize {m}/{n.REFERENCE_PROFILE} first "
                f"(sensor {n.scoped(m, n.REFERENCE_SENSOR)} does this)"
            )
        volume = plan.quality.volume
        recent = store.store.rows(
            m,
            family=Family.QUALITY.value,
            metric="row_count",
            start=day - dt.timedelta(days=volume.lookback_days),
            end=day - dt.timedelta(days=1),
        )
        batch = sources.read_predictions(plan, day)
        result = quality.validate(batch, plan, reference_profile, recent_row_counts=recent["value"].tolist())
        # a blocked day keeps only its quality rows: figures of an earlier run of this day would otherwise
        # survive as if the batch could be trusted (and feed evidence for promotions)
        families = list(Family) if result.blocking_failed else [Family.QUALITY]
        store_day(context, store, families, result.metrics(), champion.version)
        if result.blocking_failed:
            # model_health never runs on a blocked day: the data-quality incident is raised (and sent) here
            update_incidents(context, store, reports, day, store.store.rows(m, start=day, end=day))
        checks = [
            dg.AssetCheckResult(
                check_name=o.spec.name,
                passed=o.passed,
                severity=dg.AssetCheckSeverity.ERROR if o.spec.blocking else dg.AssetCheckSeverity.WARN,
                metadata={
                    "model": m,
                    "day": day.isoformat(),
                    "column": o.spec.column or "",
                    "expectation": o.expectation,
                    "expected": dg.MetadataValue.json(o.expected),
                    "observed": _num(o.observed),
                    "unexpected_count": _num(o.unexpected_count),
                    "unexpected_share": _num(o.unexpected_share),
                    "unexpected_examples": dg.MetadataValue.json([str(x) for x in o.examples]),
                    "observed_value": o.observed_text or "",
                    "origin": o.spec.origin,
                    "error": o.error or "",
                },
                description=o.spec.description,
            )
            for o in result.outcomes
        ]
        return dg.MaterializeResult(
            value=batch,
            check_results=checks,
            metadata={
                "dagster/row_count": len(batch),
                "model_version": champion.version,
                "disabled_checks": ", ".join(plan.quality.disable) or "none",
                "failed_checks": len(result.failed),
                "blocking_failed_checks": len(result.blocking_failed),
                "failed": dg.MetadataValue.md(", ".join(o.spec.name for o in result.failed) or "_none_"),
            },
        )

    batch_in = {"scoring_batch": dg.AssetIn(batch_key)}
    profile_in = {"reference_profile": dg.AssetIn(n.key(m, n.REFERENCE_PROFILE))}

    @dg.asset(
        key=n.key(m, n.DRIFT_REPORT),
        partitions_def=daily,
        deps=[batch_key],
        ins=profile_in,
        kinds={"evidently"},
        **common,
    )
    @traced("drift")
    def drift_report(
        context, reference_profile: ReferenceProfile, store: MetricStoreResource, reports: ReportsResource
    ) -> dg.MaterializeResult:
        """Feature and prediction drift of the day against the champion's reference: Evidently's tests (or the
        plan's drift.columns choice) computed on every row of the day against statistics fitted once on the
        whole reference. These figures (metadata, metric store) are authoritative. The HTML report is
        Evidently's on a seeded sample of the day (report_sample_rows): an illustration. Metadata lists the
        drifted share and the top drifted features."""
        refuse_if_blocked(context, store)
        from monitoring_pipelines.families.drift import calculator as drift

        day = _day(context)
        fitted = getattr(reference_profile, "drift_reference", None)
        if not fitted:
            raise RegistryError(
                f"model {m} day {day}: the reference profile of version "
                f"{reference_profile.model_version} holds no drift statistics (made by an older release); re-materialize "
                f"{m}/{n.REFERENCE_PROFILE}"
            )
        result = drift.compute_day(plan, day, fitted, reference_rows=reference_profile.row_count)
        url = reports.url_for(m, "drift", day)
        report_reference_rows = drift.write_report(result, reference_profile.sample, plan, url)
        unjudged = result.unjudged_segments()
        store_day(context, store, [Family.DRIFT], result.metrics(), reference_profile.model_version, unjudged=unjudged)
        if result.small_reference:
            context.log.warning(
                f"model {m} day {day}: {', '.join(result.small_reference)} tested against at most "
                f"{drift.drift_stats.SMALL_REFERENCE_ROWS} reference values: stored as unknown"
            )
        if result.protected_missing:
            context.log.warning(
                f"model {m} day {day}: protected attribute(s) {', '.join(result.protected_missing)} "
                "absent from the prediction log: not drift-tested"
            )
        top = [
            {"feature": f.column, "method": f.method, "score": f.score, "threshold": f.threshold, "drifted": f.drifted}
            for f in result.top(5)
        ]
        return dg.MaterializeResult(
            metadata={
                "share_of_drifted_features": result.share,
                "drifted_features": len(result.drifted),
                "prediction_drift_score": result.prediction.score,
                "model_version": reference_profile.model_version,
                "top_features": _table(top),
                "report": dg.MetadataValue.path(url),
                "protected_attributes_drifted": ", ".join(f.column for f in result.protected if f.drifted) or "none",
                "protected_attributes_missing": ", ".join(result.protected_missing) or "none",
                "evaluated_rows": result.evaluated_rows,
                "report_sample_rows": result.report_rows,
                "report_reference_rows": report_reference_rows,
                "judged": "yes"
                if not unjudged
                else (
                    f"no for {', '.join(sorted(s or 'model-level figures' for s in unjudged))}: at most "
                    f"{drift.drift_stats.SMALL_REFERENCE_ROWS} reference values (docs/drift.md)"
                ),
            }
        )

    def labelled(batch: pd.DataFrame, day: dt.date, columns: list[str] | None = None) -> pd.DataFrame:
        """Served rows (those with a score; failed requests have none) joined with the labels known so far,
        under the same label rules as performance (performance.join_labels), the label in column ``__label``."""
        from monitoring_pipelines.families.performance.calculator import join_labels

        lab, p = plan.data.labels, plan.data.predictions
        served = batch[batch[p.score].notna()]
        if lab is None:
            return served.iloc[0:0].assign(**{"__label": []})
        labels = sources.read_labels(plan, day, keep_duplicates=True).rename(columns={lab.id: p.id})
        return join_labels(served, labels, id_col=p.id, label_col=lab.label, columns=columns, as_col="__label").rows

    @dg.asset(
        key=n.key(m, n.PERFORMANCE),
        partitions_def=daily,
        ins={**batch_in, **profile_in},
        deps=[labels],
        kinds={"scikit-learn"},
        **common,
    )
    @traced("performance")
    def performance(
        context,
        scoring_batch: pd.DataFrame,
        reference_profile: ReferenceProfile,
        store: MetricStoreResource,
        registry: RegistryResource,
    ) -> dg.MaterializeResult:
        """Performance of the champion on the day's rows. Realised once labels arrive: ROC AUC, PR AUC,
        accuracy, precision, recall, F1, log loss, Brier score, calibration error and the label coverage (below
        the plan's minimum coverage the day is partial and not judged). Estimated from the scores alone every
        day (family performance_estimated, confidence-based performance estimation). Re-run when labels land."""
        refuse_if_blocked(context, store)
        from monitoring_pipelines.families.performance import calculator as perf
        from monitoring_pipelines.families.performance import estimation

        day = _day(context)
        p, lab = plan.data.predictions, plan.data.labels
        served = scoring_batch[scoring_batch[p.score].notna()]
        labels = (
            sources.read_labels(plan, day, keep_duplicates=True).rename(columns={lab.id: p.id})
            if lab is not None
            else pd.DataFrame({p.id: [], "label": []})
        )
        result = perf.compute(
            served,
            labels,
            id_col=p.id,
            label_col=lab.label if lab else "label",
            score_col=p.score,
            prediction_col=p.prediction,
            positive_class=plan.model.positive_class,
            min_coverage=lab.min_coverage if lab else 1.0,
        )
        families, values = [Family.PERFORMANCE], result.metrics()
        estimated = None
        if reference_profile.calibration is not None:
            estimated = estimation.estimate(
                served[p.score].to_numpy(dtype=float),
                (served[p.prediction] == plan.model.positive_class).to_numpy(),
                reference_profile.calibration,
            )
            families, values = [*families, Family.PERFORMANCE_ESTIMATED], [*values, *estimated.metrics()]
        version = reference_profile.model_version
        store_day(context, store, families, values, version)
        head = result.headline()
        return dg.MaterializeResult(
            metadata={
                **_metadata(head),
                "estimated_roc_auc": _num(estimated.roc_auc if estimated else None),
                "estimated_accuracy": _num(estimated.accuracy if estimated else None),
                "model_version": version,
            }
        )

    @dg.asset(
        key=n.key(m, n.FAIRNESS), partitions_def=daily, ins=batch_in, deps=[labels], kinds={"fairlearn"}, **common
    )
    @traced("fairness")
    def fairness(
        context, scoring_batch: pd.DataFrame, store: MetricStoreResource, registry: RegistryResource
    ) -> dg.MaterializeResult:
        """Fairness of the champion per protected group and per intersection of the plan's protected
        attributes (fairlearn MetricFrame): per-group rates and the parity / opportunity / odds gaps. Groups
        below the plan's minimum size are reported but never alerted on."""
        refuse_if_blocked(context, store)
        from monitoring_pipelines.families.fairness import calculator as fair

        day = _day(context)
        present = [a for a in plan.protected_attributes if a in scoring_batch.columns]
        missing = [a for a in plan.protected_attributes if a not in scoring_batch.columns]
        joined = labelled(scoring_batch, day, columns=[plan.data.predictions.prediction, *present])
        result = fair.compute(
            joined,
            label_col="__label",
            prediction_col=plan.data.predictions.prediction,
            protected_attributes=present,
            min_group_size=plan.fairness.min_group_size,
            min_rate_support=plan.fairness.min_rate_support,
            positive_class=plan.model.positive_class,
        )
        # a protected attribute missing from the day's log is reported (and its quality check fails), not skipped
        gone = [MetricValue(Family.FAIRNESS, "attribute_missing", 1.0, a) for a in missing]
        version = registry.registry.require(m, CHAMPION).version
        store_day(
            context,
            store,
            [Family.FAIRNESS],
            [*result.metrics(), *gone],
            version,
            unjudged=frozenset(result.small_groups),
        )
        head = {**result.headline(), "missing_attributes": ", ".join(missing) or "none"}
        return dg.MaterializeResult(metadata={**_metadata(head), "model_version": version})

    @dg.asset(key=n.key(m, n.SERVICE_HEALTH), partitions_def=daily, ins=batch_in, kinds={"pandas"}, **common)
    @traced("service")
    def service_health(
        context, scoring_batch: pd.DataFrame, store: MetricStoreResource, registry: RegistryResource
    ) -> dg.MaterializeResult:
        """Service health from the prediction log: request count, throughput (average and busiest minute),
        latency p50/p95/p99/max, error rate, and rows served by a version other than the champion."""
        from monitoring_pipelines.families.service import calculator as service

        p = plan.data.predictions
        version = registry.registry.require(m, CHAMPION).version
        result = service.compute(
            scoring_batch,
            timestamp_col=p.timestamp,
            latency_col=p.latency_ms,
            status_col=p.status,
            ok_status=p.ok_status,
            version_col=p.model_version,
            expected_version=version,
        )
        store_day(context, store, [Family.SERVICE], result.metrics(), version)
        head = result.headline()
        return dg.MaterializeResult(metadata={**_metadata(head), "model_version": version})

    @dg.asset(
        key=n.key(m, n.CHALLENGER_COMPARISON),
        partitions_def=daily,
        ins=batch_in,
        deps=[labels],
        kinds={"mlflow", "scikit-learn"},
        **common,
    )
    @traced("comparison")
    def challenger_comparison(
        context, scoring_batch: pd.DataFrame, store: MetricStoreResource, registry: RegistryResource
    ) -> dg.MaterializeResult:
        """Shadow comparison on the day's served rows: the MLflow challenger (and, while one exists, the
        previous champion a rollback would return to) scores the rows the champion served. Per candidate:
        prediction agreement, score correlation, and on labelled rows ROC AUC, PR AUC, accuracy, F1, log loss and
        Brier deltas with paired-bootstrap 95% intervals, DeLong's test of the ROC AUC delta, fairness-gap deltas
        per protected attribute, and each model's score drift against its own reference. The challenger's
        evidence since it became challenger (labelled days, rows, pooled delta, combined p-value) and whether the
        plan's promotion rule holds are in the metadata. Without a challenger it records that and passes."""
        refuse_if_blocked(context, store)
        from monitoring_pipelines.families.comparison import calculator as cmp

        day = _day(context)
        reg, p = registry.registry, plan.data.predictions
        champion, aliases = reg.require(m, CHAMPION), reg.aliases(m)
        served = scoring_batch[scoring_batch[p.score].notna()]
        versions = cmp.served_versions(plan, served)
        # the champion side is the version that served the day (not whatever is champion when this runs)
        served_version = max(versions, key=versions.get) if versions else champion.version
        served_ref = champion if served_version == champion.version else reg.version(m, served_version, alias="served")

        def reference_scores(ref):
            if plan.data.reference.source == "mlflow_artifact":
                frame = reg.read_reference(ref, plan.data.reference.artifact_path)
            elif ref.version == champion.version:
                frame = sources.read_reference(plan)
            else:
                return None  # a path reference belongs to the champion only
            return frame[p.score].to_numpy(dtype=float) if p.score in frame.columns else None

        joined = labelled(scoring_batch, day)
        candidates = []
        for role in (cmp.CHALLENGER_ROLE, cmp.PREVIOUS_ROLE):
            version = aliases.get(role)
            if version is None or version == served_version or version in [c.version for c in candidates]:
                continue
            ref = reg.version(m, version, alias=role)
            try:
                model = reg.load_model(ref)
            except RegistryError as exc:
                raise RegistryError(f"model {m} day {day}: shadow comparison of the {role}: {exc}") from exc
            candidates.append(
                cmp.compare_candidate(
                    plan,
                    day,
                    served,
                    joined,
                    role=role,
                    version=version,
                    model=model,
                    reference_scores=reference_scores(ref),
                )
            )
        result = cmp.ComparisonResult(
            m,
            day,
            served_version,
            len(served),
            versions,
            cmp.score_drift(served_ref.alias, served_version, served[p.score], reference_scores(served_ref)),
            tuple(candidates),
            champion_alias=served_ref.alias,
        )
        history = read_history(store.store, plan, day, [Family.COMPARISON.value])

        def judged(values_by_model):
            return [
                row
                for (version, alias), values in values_by_model.items()
                for row in judge(
                    plan, day, values, model_version=version, alias=alias, run_id=context.run_id, history=history
                )
            ]

        rows = judged(result.values_by_model())
        challenger = result.candidate(cmp.CHALLENGER_ROLE)
        promotion = "no challenger"
        if challenger is not None:
            today = pd.DataFrame([r.__dict__ for r in rows])
            evidence = cmp.stored_evidence(
                store.store, plan, reg.version(m, challenger.version, alias=CHALLENGER), through=day, current=today
            )
            result = cmp.ComparisonResult(**{**result.__dict__, "evidence": evidence})
            rows += judged({(challenger.version, CHALLENGER): evidence.values()})
            rule = plan.actions.promote
            refusals = evidence.refusals(rule) if rule else ["the plan allows no promotion"]
            promotion = (
                "; ".join(refusals)
                if refusals
                else f"the evidence holds: {n.scoped(m, n.PROMOTE_SENSOR)} "
                + (
                    "records a pending promotion; launch " + n.scoped(m, n.PROMOTE_CHALLENGER) + " to approve"
                    if rule.approval == "manual"
                    else "launches " + n.scoped(m, n.PROMOTE_CHALLENGER)
                )
            )
        store.store.replace_rows(m, day, [Family.COMPARISON.value], rows)
        table = [
            {
                "role": c.role,
                "version": c.version,
                "metric": k,
                "champion": c.champion.get(k),
                "candidate": c.candidate.get(k),
                "delta": c.delta(k),
                "ci_low": c.intervals.get(k, (None, None))[0],
                "ci_high": c.intervals.get(k, (None, None))[1],
            }
            for c in candidates
            for k in cmp.METRICS
        ]
        return dg.MaterializeResult(
            metadata={
                "model": m,
                "champion_version": champion.version,
                "served_version": served_version,
                "challenger_version": aliases.get(CHALLENGER, "none"),
                "previous_champion_version": aliases.get(cmp.PREVIOUS_ROLE, "none"),
                **_metadata(result.headline()),
                "comparison": _table(table),
                "promotion": promotion,
                "bootstrap": f"paired, {cmp.BOOTSTRAP_RESAMPLES} resamples, seed ({cmp.BOOTSTRAP_SEED}, day ordinal), "
                f"{cmp.CONFIDENCE:.0%} percentile intervals",
            }
        )

    upstream = [drift_report, performance, fairness, service_health, challenger_comparison]

    @dg.asset(key=n.key(m, n.MODEL_HEALTH), partitions_def=daily, deps=upstream, kinds={"sql"}, **common)
    @traced("health")
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
        day = _day(context)
        rows = store.store.rows(m, start=day, end=day)
        assessments, changes, delivery = update_incidents(context, store, reports, day, rows)
        summary = summarise(plan, day, rows, assessments)
        live = incidents.incidents(store.store, m, states=("open", "acknowledged"))
        headline = _headline(rows)

        def breach_record(b) -> dict:
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
                "breach_list": _table([breach_record(b) for b in summary.breaches[:20]]),
                "held_back": len(summary.held_back),
                "held_back_list": _table([breach_record(b) for b in summary.held_back[:20]]),
                "incident_changes": _table(change_records),
                "incident_changes_json": dg.MetadataValue.json(change_records),
                "open_incidents": len(live),
                "open_incident_list": _table(_incident_records(live)),
                "notifications": delivery.summary(),
                "notifications_pending": len(delivery.pending),
                "notification_config_errors": delivery.config_errors_total,
                "model_version": registry.registry.require(m, CHAMPION).version,
                **{k: _num(v) for k, v in headline.items()},
            }
        )

    @dg.asset(key=n.key(m, n.INCIDENTS), deps=[model_health], kinds={"sql"}, **common)
    @traced("incidents")
    def incident_overview(context, store: MetricStoreResource) -> dg.MaterializeResult:
        """The model's incidents across all days: the ones still open (or acknowledged) with their severity,
        segments and first and last breached day; how many are open, acknowledged and resolved; and the mean time
        to detect (end of the first breached day to opening) and to resolve (opening to resolution; also in
        monitored days). Refreshed after every nightly run. Acknowledge or resolve one with
        monitoring_pipelines.incidents.acknowledge / resolve."""
        live = incidents.incidents(store.store, m, states=("open", "acknowledged"))
        st = incidents.stats(store.store, m)

        def hours(td) -> dg.MetadataValue:
            return _num(None if td is None else td.total_seconds() / 3600)

        return dg.MaterializeResult(
            metadata={
                "open": st.open,
                "acknowledged": st.acknowledged,
                "resolved": st.resolved,
                "open_critical": st.open_critical,
                "open_incident_list": _table(_incident_records(live)),
                "mean_time_to_detect_hours": hours(st.mean_time_to_detect),
                "mean_time_to_resolve_hours": hours(st.mean_time_to_resolve),
                "mean_days_to_resolve": _num(st.mean_days_to_resolve),
            }
        )

    return [
        prediction_log,
        labels,
        champion_model,
        reference_profile,
        scoring_batch,
        drift_report,
        performance,
        fairness,
        service_health,
        challenger_comparison,
        model_health,
        incident_overview,
    ]


def _incident_records(frame: pd.DataFrame) -> list[dict]:
    return [
        {
            "incident": r.id,
            "family": r.family,
            "metric": r.metric,
            "severity": r.severity,
            "state": r.state,
            "segments": ", ".join(s or "(day)" for s in r.segments),
            "first_day": r.first_day.isoformat(),
            "last_breach_day": r.last_breach_day.isoformat(),
            "value": r.value,
            "threshold": r.threshold,
        }
        for r in frame.itertuples()
    ]


HEADLINE = {  # metadata name -> (family, metric, segment)
    "share_of_drifted_features": ("drift", "share_of_drifted_features", ""),
    "roc_auc": ("performance", "roc_auc", ""),
    "estimated_roc_auc": ("performance_estimated", "roc_auc", ""),
    "label_coverage": ("performance", "label_coverage", ""),
    "latency_p99_ms": ("service", "latency_p99_ms", ""),
    "error_rate": ("service", "error_rate", ""),
}


def _headline(rows: pd.DataFrame) -> dict[str, float | None]:
    out = {name: figure(rows, *where) for name, where in HEADLINE.items()}
    out["worst_fairness_gap"] = worst_fairness_gap(rows)
    return out
