"""Retrain, promote and roll back, with their preconditions and an audit row for every attempt.

Each function records a ``model_actions`` row (who/what/why/when, Dagster run id), refuses with
``ActionRefused`` when a precondition does not hold (recorded as 'refused'), and records 'failed' with the
cause when something breaks, before re-raising.
"""

from __future__ import annotations

import datetime as dt
import importlib
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitoring_pipelines import settings
from monitoring_pipelines.actions.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    TAG_EVIDENCE_AFTER,
    TAG_TRIGGER_DAY,
    Registry,
)
from monitoring_pipelines.data import sources
from monitoring_pipelines.errors import ActionRefused, MonitoringError, RegistryError
from monitoring_pipelines.families.performance import sklearn as performance_sklearn
from monitoring_pipelines.plan.schema import MonitoringPlan
from monitoring_pipelines.store.metric_store import MetricStore

TAG_CHAMPION_SINCE = "monitoring.champion_since"
TAG_TRIGGER = "monitoring.trigger"
TAG_VALIDATION = "monitoring.validation"
TAG_ROLLED_BACK = "monitoring.rolled_back"
__all__ = ["TAG_EVIDENCE_AFTER", "TAG_TRIGGER_DAY"]  # re-exported: the tags live with the registry adapter
TAG_RUN_ID = "monitoring.dagster_run_id"
TAG_WINDOW = "monitoring.data_window"
HOLDOUT_SHARE = 0.2


@contextmanager
def _audited(store: MetricStore, **fields):
    action_id = store.record_action(status="requested", **fields)
    outcome = {}
    try:
        yield outcome
    except ActionRefused as exc:
        store.update_action(action_id, status="refused", reason=str(exc))
        raise
    except BaseException as exc:
        store.update_action(action_id, status="failed", reason=f"{type(exc).__name__}: {exc}")
        raise
    store.update_action(
        action_id, status="succeeded", reason=outcome.get("reason"), to_version=outcome.get("to_version")
    )


@dataclass(frozen=True)
class TrainingWindow:
    frame: pd.DataFrame
    days: list[dt.date]
    skipped: dict[str, str]  # day -> why it was left out


def training_window(plan: MonitoringPlan, store: MetricStore, end: dt.date) -> TrainingWindow:
    """Labelled rows of the ``window_days`` days up to ``end``. Days without a log or whose blocking quality
    checks failed are left out, and listed with the reason (never silently)."""
    window = plan.actions.retrain.window_days
    lab = plan.data.labels
    if lab is None:
        raise ActionRefused(f"model {plan.name}: retraining needs labels, and the plan has no data.labels")
    blocked = store.blocked_days(plan.name, start=end - dt.timedelta(days=window - 1), end=end)
    frames, days, skipped = [], [], {}
    for i in range(window - 1, -1, -1):
        day = end - dt.timedelta(days=i)
        if day < plan.schedule.start_date:
            continue
        if day in blocked:
            skipped[day.isoformat()] = "blocking quality checks failed"
            continue
        try:
            batch = sources.read_predictions(plan, day)
        except sources.MissingDayError as exc:
            skipped[day.isoformat()] = str(exc)
            continue
        labels = sources.read_labels(plan, day)
        labels = labels[labels[lab.label].notna()]
        joined = batch.merge(
            labels[[lab.id, lab.label]].rename(columns={lab.id: plan.data.predictions.id}),
            on=plan.data.predictions.id,
            how="inner",
        )
        if joined.empty:
            skipped[day.isoformat()] = "no labels yet"
            continue
        frames.append(joined.rename(columns={lab.label: plan.data.reference.label}))
        days.append(day)
    if not frames:
        raise ActionRefused(f"model {plan.name}: no labelled rows in the {window} days up to {end} ({skipped})")
    return TrainingWindow(pd.concat(frames, ignore_index=True), days, skipped)


def _recipe(plan: MonitoringPlan):
    """The plan's training callable and the skops types its module trusts (``SKOPS_TRUSTED_TYPES``, optional)."""
    spec = plan.actions.retrain.recipe if plan.actions.retrain else None
    if not spec:
        raise ActionRefused(f"model {plan.name}: actions.retrain.recipe is not set in the plan")
    module_name, _, fn = spec.partition(":")
    module = importlib.import_module(module_name)
    if not hasattr(module, fn):
        raise ActionRefused(f"model {plan.name}: actions.retrain.recipe {spec!r}: {module_name} has no {fn}")
    return getattr(module, fn), list(getattr(module, "SKOPS_TRUSTED_TYPES", []))


def retrain(
    plan: MonitoringPlan,
    registry: Registry,
    store: MetricStore,
    *,
    trigger: str,
    day: dt.date,
    run_id: str,
    actor: str = "sensor",
) -> str:
    """Train with the plan's recipe on the recent labelled window, register the new version as challenger."""
    with _audited(
        store, model=plan.name, action="retrain", trigger=trigger, partition_date=day, run_id=run_id, actor=actor
    ) as outcome:
        if plan.actions.retrain is None:
            raise ActionRefused(f"model {plan.name}: the plan allows no retraining (actions.retrain)")
        window = training_window(plan, store, day)
        frame = window.frame.sort_values(plan.data.predictions.timestamp)
        cut = int(len(frame) * (1 - HOLDOUT_SHARE))
        train, holdout = frame.iloc[:cut], frame.iloc[cut:]
        recipe, trusted = _recipe(plan)
        estimator = recipe(train, plan)
        problem = _score_problem(plan, estimator, holdout)
        if problem:
            raise MonitoringError(f"model {plan.name} (retrained for {day}): {problem}; nothing was registered")
        version = _register(
            plan,
            registry,
            estimator,
            train,
            holdout,
            trusted,
            tags={
                TAG_TRIGGER: trigger,
                TAG_TRIGGER_DAY: day.isoformat(),
                TAG_RUN_ID: run_id,
                TAG_WINDOW: f"{window.days[0]}..{window.days[-1]} ({len(window.days)} days, {len(frame)} rows)",
            },
        )
        # the alias only goes to a version that loads back from the registry and scores its holdout sanely
        problem = _validate(plan, registry, version, holdout)
        registry.set_tags(plan.name, version, {TAG_VALIDATION: problem or "passed"})
        if problem:
            raise RegistryError(
                f"model {plan.name} version {version} (retrained for {day}): {problem}; "
                "the challenger alias was not moved"
            )
        registry.set_alias(plan.name, CHALLENGER, version)
        outcome["to_version"] = version
        outcome["reason"] = (
            f"trained on {len(train)} rows of {len(window.days)} days; skipped {window.skipped or 'none'}"
        )
        return version


def _register(
    plan: MonitoringPlan,
    registry: Registry,
    estimator,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    trusted_types: list[str],
    tags: dict[str, str],
) -> str:
    p, ref = plan.data.predictions, plan.data.reference
    inputs = plan.features.model_inputs
    pos = list(estimator.classes_).index(plan.model.positive_class)
    holdout_scores = estimator.predict_proba(holdout[inputs])[:, pos]
    y = (holdout[ref.label] == plan.model.positive_class).astype(int)
    reference = None
    if ref.source == "mlflow_artifact":
        reference = holdout[[*inputs, *plan.features.context, ref.label]].copy()
        reference[p.score] = holdout_scores
        reference[p.prediction] = (holdout_scores >= 0.5).astype(int)
    version, run_id = registry.log_version(
        plan.name,
        estimator,
        experiment_id=_experiment_id(registry, plan.name),
        run_name=f"retrain {tags[TAG_TRIGGER_DAY]}",
        params={"train_rows": len(train), "holdout_rows": len(holdout), **tags},
        metrics={"holdout_roc_auc": performance_sklearn.roc_auc(y, holdout_scores)} if y.nunique() == 2 else {},
        signature_example=(holdout[inputs].head(5), holdout_scores[:5]),
        trusted_types=trusted_types or None,
        reference=reference,
        reference_path=ref.artifact_path,
    )
    registry.set_tags(plan.name, version, {**tags, "monitoring.run_id": run_id})
    return version


def _experiment_id(registry: Registry, name: str) -> str:
    """The model's experiment; created with artifacts under MONITORING_HOME when the registry is a local file
    (a tracking server keeps its own artifact root)."""
    local = registry.tracking_uri.startswith(("sqlite:", "file:")) or "://" not in registry.tracking_uri
    return registry.experiment_id(name, settings.mlflow_artifact_root() if local else None)


def _validate(plan: MonitoringPlan, registry: Registry, version: str, holdout: pd.DataFrame) -> str | None:
    """Why the registered ``version`` must not serve, or None: it has to load back from the registry and give a
    finite probability in [0, 1] for every holdout row."""
    ref = registry.version(plan.name, version)
    try:
        model = registry.load_model(ref)
    except RegistryError as exc:
        return f"validation failed: {exc}"
    problem = _score_problem(plan, model, holdout)
    return f"validation failed after loading it back: {problem}" if problem else None


def _score_problem(plan: MonitoringPlan, model, holdout: pd.DataFrame) -> str | None:
    """Why ``model`` cannot serve: no positive class, or holdout scores that are not probabilities."""
    classes = list(getattr(model, "classes_", []))
    if plan.model.positive_class not in classes:
        return f"classes {classes} lack the positive class {plan.model.positive_class}"
    scores = model.predict_proba(holdout[plan.features.model_inputs])[:, classes.index(plan.model.positive_class)]
    bad = int(np.count_nonzero(~np.isfinite(scores) | (scores < 0) | (scores > 1)))
    if bad:
        return f"{bad} of {len(scores)} holdout scores are not probabilities (NaN or outside [0, 1])"
    return None


def mark_champion(registry: Registry, model: str, version: str, reason: str) -> None:
    """Point ``champion`` at ``version`` and remember that it served (rollback may only return to such versions)."""
    registry.set_alias(model, CHAMPION, version)
    _champion_tags(registry, model, version, reason)


def _champion_tags(registry: Registry, model: str, version: str, reason: str) -> None:
    now = dt.datetime.now(dt.UTC).isoformat()
    registry.set_tags(model, version, {TAG_CHAMPION_SINCE: now, "monitoring.last_alias_reason": reason})


def _move_then_tag(registry: Registry, model: str, moves: list, version: str, reason: str) -> None:
    """Move the aliases (all or nothing), then tag the new champion; if tagging fails, the aliases go back."""
    before = registry.move_aliases(model, moves)
    try:
        _champion_tags(registry, model, version, reason)
    except RegistryError as exc:
        touched = [a for a, _ in moves]
        registry.move_aliases(model, [(a, before.get(a)) for a in touched])
        raise RegistryError(f"{exc}; the aliases were moved back to {before}") from exc


def promote(
    plan: MonitoringPlan,
    registry: Registry,
    store: MetricStore,
    *,
    reason: str,
    run_id: str,
    actor: str,
    day: dt.date | None = None,
) -> str:
    """champion -> challenger's version; old champion -> previous_champion; challenger alias removed.

    The challenger is loaded from the registry first: a version that does not load is never promoted. The
    three alias moves are all or nothing (``Registry.move_aliases``)."""
    with _audited(
        store, model=plan.name, action="promote", trigger=reason, run_id=run_id, actor=actor, partition_date=day
    ) as outcome:
        challenger = registry.by_alias(plan.name, CHALLENGER)
        if challenger is None:
            raise ActionRefused(f"model {plan.name}: no challenger to promote")
        champion = registry.require(plan.name, CHAMPION)
        if challenger.version == champion.version:
            raise ActionRefused(f"model {plan.name}: challenger is already the champion (version {champion.version})")
        registry.load_model(challenger)
        _move_then_tag(
            registry,
            plan.name,
            [(CHAMPION, challenger.version), (PREVIOUS_CHAMPION, champion.version), (CHALLENGER, None)],
            challenger.version,
            f"promoted: {reason}",
        )
        outcome["to_version"] = challenger.version
        outcome["reason"] = f"version {champion.version} -> {challenger.version}: {reason}"
        audit = store.actions(plan.name)
        waiting = audit[
            (audit["action"] == "promote")
            & (audit["status"] == "pending_approval")
            & (audit["to_version"] == challenger.version)
        ]
        for action_id in waiting["id"]:  # the request a person approved by launching this job
            store.update_action(action_id, status="succeeded", reason=f"approved: promoted by run {run_id}")
        return challenger.version


def rollback(
    plan: MonitoringPlan,
    registry: Registry,
    store: MetricStore,
    *,
    reason: str,
    run_id: str,
    actor: str,
    day: dt.date | None = None,
) -> str:
    """champion -> previous_champion, only to a version that served as champion before and that loads.

    The rolled-back version is tagged ``monitoring.evidence_after = day`` (default: the latest day with stored
    figures): if it becomes challenger again, only days after that count as evidence, so the evidence that
    promoted it cannot promote it a second time."""
    with _audited(
        store, model=plan.name, action="rollback", trigger=reason, run_id=run_id, actor=actor, partition_date=day
    ) as outcome:
        previous = registry.by_alias(plan.name, PREVIOUS_CHAMPION)
        if previous is None:
            raise ActionRefused(f"model {plan.name}: no previous_champion to roll back to")
        if TAG_CHAMPION_SINCE not in previous.tags:
            raise ActionRefused(f"model {plan.name}: version {previous.version} never served as champion; refusing")
        current = registry.require(plan.name, CHAMPION)
        registry.load_model(previous)
        if day is None:
            rows = store.rows(plan.name)
            day = max(rows["partition_date"]) if len(rows) else dt.datetime.now(dt.UTC).date()
        # the rolled-back version is marked first: if the alias move then fails, the marks only make it harder to
        # promote again (what a rollback wants anyway); the reverse order could move the aliases without them
        registry.set_tags(
            plan.name, current.version, {TAG_EVIDENCE_AFTER: day.isoformat(), TAG_ROLLED_BACK: f"{run_id}: {reason}"}
        )
        _move_then_tag(
            registry,
            plan.name,
            [(CHAMPION, previous.version), (PREVIOUS_CHAMPION, None)],
            previous.version,
            f"rollback: {reason}",
        )
        outcome["to_version"] = previous.version
        outcome["reason"] = f"version {current.version} -> {previous.version}: {reason}"
        return previous.version
