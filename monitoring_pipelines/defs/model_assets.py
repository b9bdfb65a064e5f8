"""The asset graph of one monitored model (DESIGN section 3), built from its plan.

Every asset is thin: load, call a plain function, judge the figures against the plan, write the day's rows to
the metric store in one transaction, and return the figures a person looks at first as metadata.
"""


import datetime as dt

import dagster as dg
import pandas as pd

from monitoring_pipelines import sources
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource, ReportsResource
from monitoring_pipelines.errors import BlockedDayError, RegistryError
from monitoring_pipelines.health import figure, judge, summarise, worst_fairness_gap
from monitoring_pipelines.metrics import Family, MetricValue
from monitoring_pipelines.plan import MonitoringPlan
from monitoring_pipelines.reference import ReferenceProfile
from monitoring_pipelines.registry import CHALLENGER, CHAMPION


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

    def store_day(context, store: MetricStoreResource, families: list[Family], values: list[MetricValue],
                  version: str, alias: str = CHAMPION, unjudged: frozenset[str] = frozenset()):
        day = _day(context)
        rows = judge(plan, day, values, model_version=version, alias=alias, run_id=context.run_id,
                     unjudged_segments=unjudged)
        store.store.replace_rows(m, day, [f.value for f in families], rows)
        return rows

    def refuse_if_blocked(context, store: MetricStoreResource) -> None:
        """Blocking quality checks stop every decision-feeding figure of the day, also on later re-runs
        (late labels, manual launches), not only inside the nightly run where Dagster skips the steps."""
        day = _day(context)
        if quality_blocked(store.store, m, day):
            raise BlockedDayError(f"model {m} day {day}: blocking quality checks of {m}/{n.SCORING_BATCH} failed; "
                                  f"{context.asset_key.to_user_string()} is not computed on a broken batch")

    prediction_log = dg.AssetSpec(
        n.key(m, n.PREDICTION_LOG), partitions_def=daily, kinds={plan.data.predictions.source},
        description=f"The day's prediction log of {m}, written by the serving system "
                    f"({plan.data.predictions.source}: {plan.data.predictions.path or plan.data.predictions.table}).",
        **common)
    labels = dg.AssetSpec(
        n.key(m, n.LABELS), kinds={plan.data.labels.source} if plan.data.labels else set(),
        description=f"Delayed ground-truth labels of {m} (expected about "
                    f"{plan.data.labels.expected_delay_days if plan.data.labels else '?'} days after the prediction).",
        **common)
    champion_model = dg.AssetSpec(
        n.key(m, n.CHAMPION_MODEL), kinds={"mlflow"},
        description=f"The MLflow registered model {m}; aliases champion, challenger and previous_champion name versions.",
        **common)

    @dg.asset(key=n.key(m, n.REFERENCE_PROFILE), deps=[champion_model], kinds={"pandas", "mlflow"}, **common)
    def reference_profile(context, registry: RegistryResource) -> dg.MaterializeResult[ReferenceProfile]:
        """Reference statistics of the current champion version (null shares, ranges, categories, a bounded
        sample for drift), computed once per version from its reference data and reused every night."""
        ref = registry.registry.require(m, CHAMPION)
        if plan.data.reference.source == "mlflow_artifact":
            frame = registry.registry.read_reference(ref, plan.data.reference.artifact_path)
        else:
            frame = sources.read_reference(plan)
        from monitoring_pipelines.reference import build_profile

        profile = build_profile(frame, plan, ref.version)
        return dg.MaterializeResult(value=profile, metadata={
            "model_version": ref.version, "alias": CHAMPION, "dagster/row_count": profile.row_count,
            "sample_rows": len(profile.sample)})

    from monitoring_pipelines.quality import check_specs

    specs = check_specs(plan)
    batch_key = n.key(m, n.SCORING_BATCH)

    @dg.asset(key=batch_key, partitions_def=daily, deps=[prediction_log],
              ins={"reference_profile": dg.AssetIn(n.key(m, n.REFERENCE_PROFILE))},
              check_specs=[dg.AssetCheckSpec(s.name, asset=batch_key, blocking=s.blocking, description=s.description)
                           for s in specs],
              kinds={"pandas", "great_expectations"}, **common)
    def scoring_batch(context, reference_profile: ReferenceProfile, store: MetricStoreResource,
                      registry: RegistryResource):  # value: the day's DataFrame (no annotation: checks add outputs)
        """The day's predictions, checked with Great Expectations against the champion's reference profile.
        Each expectation is an asset check; blocking ones stop drift, performance, fairness and comparison
        for the day, so a broken batch never feeds a decision."""
        from monitoring_pipelines import quality

        day = _day(context)
        champion = registry.registry.require(m, CHAMPION)
        if champion.version != reference_profile.model_version:
            raise RegistryError(
                f"model {m} day {day}: the reference profile is for version {reference_profile.model_version} but the "
                f"champion is version {champion.version}; materialize {m}/{n.REFERENCE_PROFILE} first "
                f"(sensor {n.scoped(m, n.REFERENCE_SENSOR)} does this)")
        batch = sources.read_predictions(plan, day)
        result = quality.validate(batch, plan, reference_profile)
        # a blocked day keeps only its quality rows: figures of an earlier run of this day would otherwise
        # survive as if the batch could be trusted (and feed evidence for promotions)
        families = list(Family) if result.blocking_failed else [Family.QUALITY]
        store_day(context, store, families, result.metrics(), champion.version)
        checks = [
            dg.AssetCheckResult(
                check_name=o.spec.name, passed=o.passed, severity=dg.AssetCheckSeverity.ERROR if o.spec.blocking
                else dg.AssetCheckSeverity.WARN,
                metadata={"model": m, "day": day.isoformat(), "column": o.spec.column or "", "expectation": o.expectation,
                          "expected": dg.MetadataValue.json(o.expected), "observed": _num(o.observed),
                          "unexpected_count": _num(o.unexpected_count), "unexpected_share": _num(o.unexpected_share),
                          "unexpected_examples": dg.MetadataValue.json([str(x) for x in o.examples]),
                          "error": o.error or ""},
                description=o.spec.description)
            for o in result.outcomes]
        return dg.MaterializeResult(value=batch, check_results=checks, metadata={
            "dagster/row_count": len(batch), "model_version": champion.version,
            "failed_checks": len(result.failed), "blocking_failed_checks": len(result.blocking_failed),
            "failed": dg.MetadataValue.md(", ".join(o.spec.name for o in result.failed) or "_none_")})

    batch_in = {"scoring_batch": dg.AssetIn(batch_key)}
    profile_in = {"reference_profile": dg.AssetIn(n.key(m, n.REFERENCE_PROFILE))}

    @dg.asset(key=n.key(m, n.DRIFT_REPORT), partitions_def=daily, ins={**batch_in, **profile_in},
              kinds={"evidently"}, **common)
    def drift_report(context, scoring_batch: pd.DataFrame, reference_profile: ReferenceProfile,
                     store: MetricStoreResource, reports: ReportsResource) -> dg.MaterializeResult:
        """Feature and prediction drift of the day against the champion's reference (Evidently's default tests),
        with an HTML report per day. Metadata lists the drifted share and the top drifted features."""
        refuse_if_blocked(context, store)
        from monitoring_pipelines import drift

        day = _day(context)
        url = reports.url_for(m, "drift", day)
        result = drift.compute(reference_profile.sample, scoring_batch, plan, html_path=url)
        store_day(context, store, [Family.DRIFT], result.metrics(), reference_profile.model_version)
        top = [{"feature": f.column, "method": f.method, "score": f.score, "threshold": f.threshold,
                "drifted": f.drifted} for f in result.top(5)]
        return dg.MaterializeResult(metadata={
            "share_of_drifted_features": result.share, "drifted_features": len(result.drifted),
            "prediction_drift_score": result.prediction.score, "model_version": reference_profile.model_version,
            "top_features": _table(top), "report": dg.MetadataValue.path(url),
            "protected_attributes_drifted": ", ".join(f.column for f in result.protected if f.drifted) or "none",
            "evaluated_rows": result.evaluated_rows})

    def labelled(batch: pd.DataFrame, day: dt.date, columns: list[str] | None = None) -> pd.DataFrame:
        """Served rows (those with a score; failed requests have none) joined with the labels known so far,
        under the same label rules as performance (performance.join_labels), the label in column ``__label``."""
        from monitoring_pipelines.performance import join_labels

        lab, p = plan.data.labels, plan.data.predictions
        served = batch[batch[p.score].notna()]
        if lab is None:
            return served.iloc[0:0].assign(**{"__label": []})
        labels = sources.read_labels(plan, day, keep_duplicates=True).rename(columns={lab.id: p.id})
        return join_labels(served, labels, id_col=p.id, label_col=lab.label, columns=columns, as_col="__label").rows

    @dg.asset(key=n.key(m, n.PERFORMANCE), partitions_def=daily, ins={**batch_in, **profile_in}, deps=[labels],
              kinds={"scikit-learn"}, **common)
    def performance(context, scoring_batch: pd.DataFrame, reference_profile: ReferenceProfile,
                    store: MetricStoreResource, registry: RegistryResource) -> dg.MaterializeResult:
        """Performance of the champion on the day's rows. Realised once labels arrive: ROC AUC, PR AUC,
        accuracy, precision, recall, F1, log loss, Brier score, calibration error and the label coverage (below
        the plan's minimum coverage the day is partial and not judged). Estimated from the scores alone every
        day (family performance_estimated, confidence-based performance estimation). Re-run when labels land."""
        refuse_if_blocked(context, store)
        from monitoring_pipelines import estimation
        from monitoring_pipelines import performance as perf

        day = _day(context)
        p, lab = plan.data.predictions, plan.data.labels
        served = scoring_batch[scoring_batch[p.score].notna()]
        labels = (sources.read_labels(plan, day, keep_duplicates=True).rename(columns={lab.id: p.id}) if lab is not None
                  else pd.DataFrame({p.id: [], "label": []}))
        result = perf.compute(served, labels, id_col=p.id, label_col=lab.label if lab else "label", score_col=p.score,
                              prediction_col=p.prediction, positive_class=plan.model.positive_class,
                              min_coverage=lab.min_coverage if lab else 1.0)
        families, values = [Family.PERFORMANCE], result.metrics()
        estimated = None
        if reference_profile.calibration is not None:
            estimated = estimation.estimate(served[p.score].to_numpy(dtype=float),
                                            (served[p.prediction] == plan.model.positive_class).to_numpy(),
                                            reference_profile.calibration)
            families, values = [*families, Family.PERFORMANCE_ESTIMATED], [*values, *estimated.metrics()]
        version = reference_profile.model_version
        store_day(context, store, families, values, version)
        head = result.headline()
        return dg.MaterializeResult(metadata={
            **_metadata(head),
            "estimated_roc_auc": _num(estimated.roc_auc if estimated else None),
            "estimated_accuracy": _num(estimated.accuracy if estimated else None),
            "model_version": version})

    @dg.asset(key=n.key(m, n.FAIRNESS), partitions_def=daily, ins=batch_in, deps=[labels], kinds={"fairlearn"},
              **common)
    def fairness(context, scoring_batch: pd.DataFrame, store: MetricStoreResource,
                 registry: RegistryResource) -> dg.MaterializeResult:
        """Fairness of the champion per protected group and per intersection of the plan's protected
        attributes (fairlearn MetricFrame): per-group rates and the parity / opportunity / odds gaps. Groups
        below the plan's minimum size are reported but never alerted on."""
        refuse_if_blocked(context, store)
        from monitoring_pipelines import fairness as fair

        day = _day(context)
        present = [a for a in plan.protected_attributes if a in scoring_batch.columns]
        missing = [a for a in plan.protected_attributes if a not in scoring_batch.columns]
        joined = labelled(scoring_batch, day, columns=[plan.data.predictions.prediction, *present])
        result = fair.compute(joined, label_col="__label", prediction_col=plan.data.predictions.prediction,
                              protected_attributes=present, min_group_size=plan.fairness.min_group_size,
                              min_rate_support=plan.fairness.min_rate_support, positive_class=plan.model.positive_class)
        # a protected attribute missing from the day's log is reported (and its quality check fails), not skipped
        gone = [MetricValue(Family.FAIRNESS, "attribute_missing", 1.0, a) for a in missing]
        version = registry.registry.require(m, CHAMPION).version
        store_day(context, store, [Family.FAIRNESS], [*result.metrics(), *gone], version,
                  unjudged=frozenset(result.small_groups))
        head = {**result.headline(), "missing_attributes": ", ".join(missing) or "none"}
        return dg.MaterializeResult(metadata={**_metadata(head), "model_version": version})

    @dg.asset(key=n.key(m, n.SERVICE_HEALTH), partitions_def=daily, ins=batch_in, kinds={"pandas"}, **common)
    def service_health(context, scoring_batch: pd.DataFrame, store: MetricStoreResource,
                       registry: RegistryResource) -> dg.MaterializeResult:
        """Service health from the prediction log: request count, throughput (average and busiest minute),
        latency p50/p95/p99/max, error rate, and rows served by a version other than the champion."""
        from monitoring_pipelines import service

        p = plan.data.predictions
        version = registry.registry.require(m, CHAMPION).version
        result = service.compute(scoring_batch, timestamp_col=p.timestamp, latency_col=p.latency_ms,
                                 status_col=p.status, ok_status=p.ok_status, version_col=p.model_version,
                                 expected_version=version)
        store_day(context, store, [Family.SERVICE], result.metrics(), version)
        head = result.headline()
        return dg.MaterializeResult(metadata={**_metadata(head), "model_version": version})

    @dg.asset(key=n.key(m, n.CHALLENGER_COMPARISON), partitions_def=daily, ins=batch_in, deps=[labels],
              kinds={"mlflow", "scikit-learn"}, **common)
    def challenger_comparison(context, scoring_batch: pd.DataFrame, store: MetricStoreResource,
                              registry: RegistryResource) -> dg.MaterializeResult:
        """Shadow comparison: the MLflow challenger scores the same rows as the champion; prediction agreement,
        score correlation and ROC AUC delta on labelled rows. Without a challenger it records that and passes."""
        refuse_if_blocked(context, store)
        from monitoring_pipelines import comparison

        day = _day(context)
        reg = registry.registry
        champion, challenger = reg.require(m, CHAMPION), reg.by_alias(m, CHALLENGER)
        joined = labelled(scoring_batch, day)
        result = comparison.compare(plan, scoring_batch, joined, champion, challenger, reg)
        store_day(context, store, [Family.COMPARISON], result.metrics(), champion.version)
        return dg.MaterializeResult(metadata={
            "champion_version": champion.version, "challenger_version": result.challenger_version or "none",
            **{k: _num(v) for k, v in result.headline().items()}})

    upstream = [drift_report, performance, fairness, service_health, challenger_comparison]

    @dg.asset(key=n.key(m, n.MODEL_HEALTH), partitions_def=daily, deps=upstream, kinds={"sql"}, **common)
    def model_health(context, store: MetricStoreResource, registry: RegistryResource) -> dg.MaterializeResult:
        """The model's day in one place: worst status per family (quality, drift, performance, fairness,
        service, comparison) and the breaches behind it, read from the metric store. Sensors act on it."""
        day = _day(context)
        rows = store.store.rows(m, start=day, end=day)
        summary = summarise(plan, day, rows)
        headline = _headline(rows)
        breaches = [{"family": b.family, "metric": b.metric, "segment": b.segment, "value": b.value,
                     "status": b.status.value, "threshold": b.threshold} for b in summary.breaches]
        return dg.MaterializeResult(metadata={
            "status": summary.status.value,
            **{f"status.{fam}": st.value for fam, st in summary.family_status.items()},
            "breaches": len(summary.breaches), "breach_list": _table(breaches[:20]),
            "model_version": registry.registry.require(m, CHAMPION).version,
            **{k: _num(v) for k, v in headline.items()}})

    return [prediction_log, labels, champion_model, reference_profile, scoring_batch, drift_report, performance,
            fairness, service_health, challenger_comparison, model_health]


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
