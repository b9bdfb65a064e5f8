"""challenger_comparison: the challenger (and previous champion) scored in shadow on the day's served rows,
its evidence since it became challenger, and the promotion verdict (``actions.decisions``)."""

import datetime as dt

import dagster as dg
import pandas as pd

from monitoring_pipelines import shadow
from monitoring_pipelines.actions import decisions
from monitoring_pipelines.actions.registry import CHALLENGER, CHAMPION, Registry
from monitoring_pipelines.data import sources
from monitoring_pipelines.defs import names as n
from monitoring_pipelines.defs.metadata import headline, table
from monitoring_pipelines.defs.resources import MetricStoreResource, RegistryResource
from monitoring_pipelines.defs.steps import common, daily_partitions, day_of, labelled, refuse_if_blocked, traced
from monitoring_pipelines.errors import RegistryError
from monitoring_pipelines.families.comparison import calculator as cmp
from monitoring_pipelines.judge.health import judge, read_history
from monitoring_pipelines.judge.metrics import Family
from monitoring_pipelines.plan.schema import MonitoringPlan


def challenger_comparison_asset(plan: MonitoringPlan) -> dg.AssetsDefinition:
    m = plan.name

    @dg.asset(
        key=n.key(m, n.CHALLENGER_COMPARISON),
        partitions_def=daily_partitions(plan),
        ins={"scoring_batch": dg.AssetIn(n.key(m, n.SCORING_BATCH))},
        deps=[n.key(m, n.LABELS)],
        kinds={"mlflow", "scikit-learn"},
        **common(plan),
    )
    @traced(m, "comparison")
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
        refuse_if_blocked(plan, context, store)
        day, reg = day_of(context), registry.registry
        champion, aliases = reg.require(m, CHAMPION), reg.aliases(m)
        result = _compare(plan, reg, day, scoring_batch, champion, aliases)
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
        evidence = None
        if challenger is not None:
            today = pd.DataFrame([r.__dict__ for r in rows])
            ref = reg.version(m, challenger.version, alias=CHALLENGER)
            evidence = cmp.stored_evidence(store.store, plan, ref, through=day, current=today)
            result = cmp.ComparisonResult(**{**result.__dict__, "evidence": evidence})
            rows += judged({(challenger.version, CHALLENGER): evidence.values()})
        verdict = decisions.promotion_verdict(
            plan.actions.promote, challenger=challenger.version if challenger else None, evidence=evidence
        )
        store.store.replace_rows(m, day, [Family.COMPARISON.value], rows)
        records = [
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
            for c in result.candidates
            for k in cmp.METRICS
        ]
        return dg.MaterializeResult(
            metadata={
                "model": m,
                "champion_version": champion.version,
                "served_version": result.champion_version,
                "challenger_version": aliases.get(CHALLENGER, "none"),
                "previous_champion_version": aliases.get(cmp.PREVIOUS_ROLE, "none"),
                **headline(result.headline()),
                "comparison": table(records),
                "promotion": _promotion_text(m, verdict),
                "bootstrap": f"paired, {cmp.BOOTSTRAP_RESAMPLES} resamples, seed ({cmp.BOOTSTRAP_SEED}, day ordinal), "
                f"{cmp.CONFIDENCE:.0%} percentile intervals",
            }
        )

    return challenger_comparison


def _promotion_text(model: str, verdict: decisions.PromotionVerdict) -> str:
    """What the promotion sensor will do with the day's evidence, as the UI shows it."""
    if not verdict.holds:
        return "; ".join(verdict.refusals)
    sensor, job = n.scoped(model, n.PROMOTE_SENSOR), n.scoped(model, n.PROMOTE_CHALLENGER)
    if verdict.outcome is decisions.PromotionOutcome.AWAIT_APPROVAL:
        return f"the evidence holds: {sensor} records a pending promotion; launch {job} to approve"
    return f"the evidence holds: {sensor} launches {job}"


def _compare(plan, reg: Registry, day: dt.date, batch: pd.DataFrame, champion, aliases) -> cmp.ComparisonResult:
    """The served version against each candidate (challenger, previous champion) on the day's served rows."""
    m, p = plan.name, plan.data.predictions
    served = batch[batch[p.score].notna()]
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

    joined = labelled(plan, batch, day)
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
        scores = reference_scores(ref)
        candidates.append(
            cmp.compare_candidate(
                plan,
                day,
                served,
                joined,
                role=role,
                version=version,
                model=model,
                reference_scores=scores,
                peers=shadow.peers(plan),
            )
        )
    drift = cmp.score_drift(
        served_ref.alias, served_version, served[p.score], reference_scores(served_ref), shadow.peers(plan).score_test
    )
    return cmp.ComparisonResult(
        m, day, served_version, len(served), versions, drift, tuple(candidates), champion_alias=served_ref.alias
    )
