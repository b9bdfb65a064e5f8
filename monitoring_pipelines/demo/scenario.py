"""The demo scenario: 30 days of served traffic for ``adult_income``, with documented incidents.

``split`` cuts UCI Adult into a training set, a labelled reference (validation) slice and a traffic pool;
``register_champion`` trains and registers the first champion with its reference data in MLflow;
``simulate_day`` serves one day of requests drawn from the pool (with that day's incidents applied) and
``write_day`` files them the way a serving system would. ``run_scenario`` chains the last two for every day.
docs/demo-scenario.md tells the story day by day and what the monitor should find.

Traffic is drawn from the pool of real rows **with replacement** (every request is an independent draw, so
a pool row can be served several times, even on one day: 30 days ~ 88k requests from a pool of ~14.5k).
~3,000 requests a day keeps sampling noise of the drift scores well under Evidently's 0.1 thresholds on
clean days. Drift is made by re-sampling with weights, never by editing values, so served rows stay real
people whose labels fit their features.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from monitoring_pipelines import settings
from monitoring_pipelines.actions.operations import HOLDOUT_SHARE, mark_champion, training_window
from monitoring_pipelines.actions.registry import Registry
from monitoring_pipelines.demo.training import SKOPS_TRUSTED_TYPES, reference_metrics, train, train_mislabelled
from monitoring_pipelines.plan.schema import MonitoringPlan

SEED = 20260101
SPLIT_SEED = 42
TRAIN_SHARE = 0.6
REFERENCE_ROWS = 5000
DAYS = 30

DAILY_ROWS = (2400, 3600)  # requests per day, uniform in this range (inclusive); see docs/demo-scenario.md
LATENCY_MEDIAN_MS = 40.0
LATENCY_SIGMA = 0.45  # lognormal shape: p99 ~ 2.85 x median ~ 115 ms on a normal day
TILT_CLIP = 2.0  # gradual drift re-weights on z-scores clipped at +-2 (see _tilted_weights)
ERROR_RATE = 0.002  # background share of requests with status 'error' (no prediction)
LABEL_DELAY = dt.timedelta(days=3)
LABEL_JITTER_HOURS = 6.0  # labelled_at = ts + 3 days + U(0, 6) hours
# Share of the day's requests per UTC hour: quiet at night, peak in the early afternoon.
HOURLY_PROFILE = np.array([1, 1, 1, 1, 1, 2, 3, 5, 7, 9, 10, 10, 10, 10, 10, 9, 8, 7, 5, 4, 3, 2, 2, 1], float)

EventKind = Literal["null_column", "gradual_drift", "latency_spike", "group_shift"]


@dataclass(frozen=True)
class Event:
    """One incident of the scenario, active from ``first_day`` to ``last_day`` (1 = plan.schedule.start_date)."""

    name: str
    kind: EventKind
    first_day: int
    last_day: int
    params: dict = field(default_factory=dict, hash=False)
    description: str = ""
    expected: str = ""

    def active(self, day_index: int) -> bool:
        return self.first_day <= day_index <= self.last_day

    def intensity(self, day_index: int) -> float:
        """0 outside the event; for gradual events a linear ramp reaching 1 on ``last_day``, else 1."""
        if not self.active(day_index):
            return 0.0
        if self.kind != "gradual_drift":
            return 1.0
        return (day_index - self.first_day + 1) / (self.last_day - self.first_day + 1)


EVENTS: tuple[Event, ...] = (
    Event(
        "feature_pipeline_break",
        "null_column",
        8,
        8,
        {"column": "occupation"},
        "An upstream feature job breaks: every request arrives with occupation = null.",
        "Quality: the not-null check on occupation fails (blocking). The model imputes '<missing>', so "
        "scores fall (positive rate ~0.20 -> ~0.11, recall drops; ROC AUC barely moves).",
    ),
    Event(
        "older_longer_hours",
        "gradual_drift",
        12,
        30,
        {"shift": {"age": 8.0, "hours_per_week": 10.0}},
        "The applicant mix ages and works longer hours: traffic is re-sampled with weights so that the mean "
        "age rises linearly by up to 8 years and mean hours_per_week by up to 10 h on day 30.",
        "Drift on hours_per_week from about day 13-14 and age from about day 15 (none before day 13), "
        "growing; correlated columns (capital_gain, education_num, relationship, ...) follow from ~day 24.",
    ),
    Event(
        "latency_spike",
        "latency_spike",
        17,
        17,
        {"factor": 8.0, "from_hour": 9, "to_hour": 15},
        "A slow dependency: requests served 09:00-15:00 UTC take 8x longer.",
        "Service: latency_p99_ms several times normal (critical, > 500 ms); error rate unchanged.",
    ),
    Event(
        "fewer_women",
        "group_shift",
        20,
        23,
        {"column": "sex", "value": "Female", "share": 0.10},
        "A marketing channel that reached women stops: the share of sex = Female falls from ~33% to ~10%.",
        "Drift on sex and the columns tied to it (relationship, marital_status, occupation); Female rows "
        "fall to ~290 a day (~45 positives), so per-group rates get noisier.",
    ),
)


# A person's step in the scenario (not traffic): at the end of this day an engineer registers a model they
# trained by hand on a labelled extract whose labels were joined to the wrong rows (training.train_mislabelled)
# and promotes it by launching promote_challenger, skipping the shadow comparison. It serves from the next day;
# its labels arrive three days later, and the rollback sensor returns to the previous champion.
HAND_PROMOTION_DAY = 26
HAND_PROMOTION = (
    "an engineer promotes a hand-trained version (labels joined to the wrong rows) by launching "
    "promote_challenger, skipping the shadow comparison"
)


def register_hand_trained(plan: MonitoringPlan, store, day: dt.date, tracking_uri: str, artifact_root: str) -> str:
    """The scenario's hand-made version: ``training.train_mislabelled`` on the labelled rows of the plan's
    retraining window up to ``day`` (80 % to fit, the last 20 % as its reference data); no alias is moved."""
    window = training_window(plan, store, day).frame.sort_values(plan.data.predictions.timestamp)
    cut = int(len(window) * (1 - HOLDOUT_SHARE))
    model = train_mislabelled(window.iloc[:cut], plan, label=plan.data.reference.label)
    return register_version(
        plan,
        model,
        window.iloc[cut:],
        tracking_uri,
        artifact_root,
        run_name=f"{plan.name}-hand-trained-{day}",
        estimator="HistGradientBoosting",
        train_rows=cut,
        tags={"monitoring.role": "hand_trained", "monitoring.trigger_day": day.isoformat()},
    )


# ----------------------------------------------------------------------------------------------------------
# data split and champion


def split(adult: pd.DataFrame, *, seed: int = SPLIT_SEED) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Deterministic, disjoint split: (train 60%, reference 5,000 rows, traffic pool = the rest, ~14.5k).

    Rows are shuffled once (the original train/test files are ignored; ``source`` keeps that provenance);
    the original index is kept, so disjointness is visible.
    """
    order = np.random.default_rng(seed).permutation(len(adult))
    n_train = round(TRAIN_SHARE * len(adult))
    parts = np.split(order, [n_train, n_train + REFERENCE_ROWS])
    return tuple(adult.iloc[p].copy() for p in parts)  # type: ignore[return-value]


def register_champion(
    plan: MonitoringPlan, train_df: pd.DataFrame, reference_df: pd.DataFrame, tracking_uri: str, artifact_root: str
) -> str:
    """Train the first champion, log and register it in MLflow, and return its version.

    The run (in experiment ``plan.name``, artifacts under ``artifact_root``) holds metrics on the reference
    slice, the model and, at ``plan.data.reference.artifact_path``, the reference parquet: model inputs,
    context columns, ``label``, and the champion's ``score`` / ``predicted_label``. The new version gets the
    alias ``champion`` and the tag ``monitoring.role=initial_champion``. The registry is the ``tracking_uri`` store
    itself, as for ``actions.registry.Registry``; MLflow's global tracking and registry URIs are left as they
    were.
    """
    model = train(train_df, plan, label=plan.data.reference.label)
    version = register_version(
        plan,
        model,
        reference_df,
        tracking_uri,
        artifact_root,
        run_name=f"{plan.name}-initial-champion",
        estimator="LogisticRegression",
        train_rows=len(train_df),
        tags={"monitoring.role": "initial_champion"},
    )
    # through the one alias mover, so the version is known to have served (rollback may return to it)
    mark_champion(Registry(tracking_uri), plan.name, version, "initial champion (demo)")
    return version


def register_version(
    plan: MonitoringPlan,
    model,
    reference_df: pd.DataFrame,
    tracking_uri: str,
    artifact_root: str,
    *,
    run_name: str,
    estimator: str,
    train_rows: int,
    tags: dict[str, str] | None = None,
) -> str:
    """Log ``model`` (a fitted pipeline) with its reference data (``reference_df`` scored by ``model``) as a
    new version of ``plan.name``, tag it with ``tags``, and return the version. No alias is moved."""
    if plan.data.reference.source != "mlflow_artifact":
        raise ValueError(f"{plan.name}: registering a demo version needs data.reference.source = mlflow_artifact")
    registry = Registry(tracking_uri)
    inputs = plan.features.model_inputs
    label = plan.data.reference.label
    score = model.predict_proba(reference_df[inputs])[:, 1]
    y = reference_df[label].astype(int)
    reference = reference_df[[*inputs, *plan.features.context]].copy()
    reference[label] = y.to_numpy()
    reference[plan.data.predictions.score] = score
    reference[plan.data.predictions.prediction] = (score >= 0.5).astype("int64")
    reference = reference.reset_index(drop=True)
    # Numerical inputs declared as double: the pipeline imputes them, so a null must not fail the schema.
    example = reference_df[inputs].head(5).astype({c: "float64" for c in plan.features.numerical})
    version, _ = registry.log_version(
        plan.name,
        model,
        experiment_id=registry.experiment_id(plan.name, artifact_root),
        run_name=run_name,
        params={
            "estimator": estimator,
            "train_rows": train_rows,
            "reference_rows": len(reference_df),
            "features": ",".join(inputs),
        },
        metrics=reference_metrics(y, score),
        signature_example=(example, model.predict(example)),  # pyfunc predict = class labels
        trusted_types=SKOPS_TRUSTED_TYPES,
        reference=reference,
        reference_path=plan.data.reference.artifact_path,
        run_tags={"monitoring.reference_artifact": plan.data.reference.artifact_path},
    )
    registry.set_tags(plan.name, version, tags or {})
    return version


# ----------------------------------------------------------------------------------------------------------
# one day of traffic


def _tilted_weights(x: np.ndarray, target: np.ndarray, clip: float = TILT_CLIP, iterations: int = 50) -> np.ndarray:
    """Weights w ~ exp(g(x) @ theta) whose weighted column means of ``x`` are ``target`` (Newton on theta).

    Exponential tilting is the gentlest re-weighting (least KL divergence) that moves the means of g.
    g is the z-score clipped at +-``clip``: tilting on the raw values would give the few 90-year-olds working
    99 h a week ~80x the average weight, so one person would be served a dozen times on the same day.
    """
    mu, sd = x.mean(axis=0), x.std(axis=0)
    g = np.clip((x - mu) / sd, -clip, clip)
    theta = np.zeros(x.shape[1])
    w = np.full(len(x), 1 / len(x))
    for _ in range(iterations):
        logits = g @ theta
        w = np.exp(logits - logits.max())
        w /= w.sum()
        mean = w @ x
        gap = target - mean
        if np.abs(gap).max() < 1e-9:
            break
        jacobian = ((x - mean) * w[:, None]).T @ (g - w @ g)  # d(weighted mean of x) / d(theta)
        theta += np.linalg.solve(jacobian, gap)
    return w


def _sampling_weights(pool: pd.DataFrame, day_index: int, events: tuple[Event, ...]) -> np.ndarray:
    w = np.ones(len(pool))
    for ev in events:
        strength = ev.intensity(day_index)
        if strength == 0:
            continue
        if ev.kind == "gradual_drift":
            cols = list(ev.params["shift"])
            x = pool[cols].to_numpy(float)
            target = x.mean(axis=0) + strength * np.array([ev.params["shift"][c] for c in cols])
            w = w * _tilted_weights(x, target) * len(pool)
    for ev in events:  # group shares last, so they hold whatever the other weights did
        if ev.kind == "group_shift" and ev.active(day_index):
            in_group = (pool[ev.params["column"]] == ev.params["value"]).to_numpy()
            share = ev.params["share"]
            w_in, w_out = w[in_group].sum(), w[~in_group].sum()
            w[in_group] *= share * w_out / ((1 - share) * w_in)
    return w / w.sum()


def _timestamps(day: dt.date, n: int, rng: np.random.Generator) -> pd.Series:
    hours = rng.choice(24, size=n, p=HOURLY_PROFILE / HOURLY_PROFILE.sum())
    ms = (hours * 3_600_000 + rng.integers(0, 3_600_000, size=n)).astype("int64")
    midnight = pd.Timestamp(day, tz="UTC")
    return pd.Series(np.sort(midnight + pd.to_timedelta(ms, unit="ms")))


def simulate_day(
    plan: MonitoringPlan,
    day_index: int,
    day: dt.date,
    pool: pd.DataFrame,
    model,
    version: str,
    rng: np.random.Generator,
    *,
    events: tuple[Event, ...] = EVENTS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Serve one day: returns (predictions, labels) for scenario day ``day_index`` (1 = start_date) at ``day``.

    predictions: request_id (``<date>-<nnnnn>``, unique over the scenario), ts (UTC, sorted), model_version,
    the model inputs and context columns *as served* (after the day's events), predicted_label and score
    (``model.predict_proba`` of a fitted sklearn estimator on the served rows; null when status is 'error'),
    latency_ms and status ('ok' / 'error'). Column names follow ``plan.data.predictions``.
    labels: request_id, label, labelled_at (ts + 3 days + U(0, 6) h), for the 'ok' requests only (an
    errored request got no decision, so no outcome is recorded).
    """
    p, label_col = plan.data.predictions, (plan.data.labels.label if plan.data.labels else "label")
    n = int(rng.integers(DAILY_ROWS[0], DAILY_ROWS[1] + 1))
    rows = rng.choice(len(pool), size=n, replace=True, p=_sampling_weights(pool, day_index, events))
    served = pool.iloc[rows].reset_index(drop=True)
    columns = [*plan.features.model_inputs, *plan.features.context]
    for ev in events:
        if ev.kind == "null_column" and ev.active(day_index):
            served[ev.params["column"]] = pd.Series([None] * n, dtype="object")

    out = pd.DataFrame({p.timestamp: _timestamps(day, n, rng)})
    out.insert(0, p.id, [f"{day.isoformat()}-{i:05d}" for i in range(n)])
    if p.model_version:
        out[p.model_version] = str(version)
    out[columns] = served[columns]

    ok = rng.random(n) >= ERROR_RATE
    if not p.status:  # a log without a status column cannot record errors
        ok[:] = True
    score = model.predict_proba(served[plan.features.model_inputs])[:, 1]
    # An errored request returned no prediction: score and label are null there (hence nullable Int64).
    out[p.prediction] = pd.Series((score >= 0.5).astype("int64"), dtype="Int64").mask(~ok)
    out[p.score] = np.where(ok, score, np.nan)

    latency = rng.lognormal(np.log(LATENCY_MEDIAN_MS), LATENCY_SIGMA, size=n)
    hour = out[p.timestamp].dt.hour.to_numpy()
    for ev in events:
        if ev.kind == "latency_spike" and ev.active(day_index):
            slow = (hour >= ev.params["from_hour"]) & (hour < ev.params["to_hour"])
            latency[slow] *= ev.params["factor"]
    if p.latency_ms:
        out[p.latency_ms] = latency.round(1)
    if p.status:
        out[p.status] = np.where(ok, p.ok_status, "error")

    jitter = pd.to_timedelta(rng.uniform(0, LABEL_JITTER_HOURS * 3600, size=n).round(), unit="s")
    labels = pd.DataFrame(
        {
            p.id: out[p.id],
            label_col: served["label"].astype("int64"),
            "labelled_at": out[p.timestamp] + LABEL_DELAY + jitter,
        }
    )
    if plan.data.labels:
        labels = labels.rename(columns={"labelled_at": plan.data.labels.labelled_at})
    return out, labels[ok].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------------
# files


def _folder(path: str, field: str) -> Path:
    folder = Path(settings.expand(path, field=field))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write_atomically(df: pd.DataFrame, target: Path) -> None:
    """Write ``df`` as parquet; a column that is all null keeps a string type (not Arrow's null type).

    A serving log has a fixed schema: the broken-pipeline day must not change occupation's type, or readers
    that unify the schema of several days would trip over it.
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):
            table = table.set_column(i, pa.field(f.name, pa.string()), table.column(i).cast(pa.string()))
    # A reader (the monitor) must never see a half-written day: write beside, then rename.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_day(plan: MonitoringPlan, predictions_df: pd.DataFrame, labels_by_arrival: pd.DataFrame) -> list[Path]:
    """File one day as a serving system would; returns the files written.

    Predictions go to ``<data.predictions.path>/<YYYY-MM-DD>.parquet`` (the day of their ``ts``; replaced if
    present). Labels (a DataFrame, any request days) are filed by the UTC day of ``labelled_at`` into
    ``<data.labels.path>/<arrival YYYY-MM-DD>.parquet``, merged with labels already filed there (one arrival
    day collects several request days; a request_id seen again replaces the earlier row).
    """
    p = plan.data.predictions
    if p.source != "parquet" or (plan.data.labels is not None and plan.data.labels.source != "parquet"):
        raise ValueError(f"{plan.name}: the demo writes parquet folders only")
    written = []
    days = predictions_df[p.timestamp].dt.strftime("%Y-%m-%d").unique()
    if len(days) != 1:
        raise ValueError(f"{plan.name}: write_day takes one day of predictions, got {list(days)}")
    target = _folder(p.path, "data.predictions.path") / f"{days[0]}.parquet"
    _write_atomically(predictions_df.reset_index(drop=True), target)
    written.append(target)

    src = plan.data.labels
    if src is None or labels_by_arrival.empty:
        return written
    folder = _folder(src.path, "data.labels.path")
    arrival = labels_by_arrival[src.labelled_at].dt.strftime("%Y-%m-%d")
    for day, batch in labels_by_arrival.groupby(arrival, sort=True):
        target = folder / f"{day}.parquet"
        if target.exists():
            batch = pd.concat([pd.read_parquet(target), batch], ignore_index=True)
        batch = (
            batch.drop_duplicates(src.id, keep="last")
            .sort_values([src.labelled_at, src.id], kind="stable")
            .reset_index(drop=True)
        )
        _write_atomically(batch, target)
        written.append(target)
    return written


def scenario_days(plan: MonitoringPlan, days: int = DAYS) -> list[tuple[int, dt.date]]:
    """(day_index, date) for every scenario day, day 1 being plan.schedule.start_date."""
    start = plan.schedule.start_date
    return [(i, start + dt.timedelta(days=i - 1)) for i in range(1, days + 1)]


def run_scenario(
    plan: MonitoringPlan,
    pool: pd.DataFrame,
    model,
    version: str,
    *,
    days: int = DAYS,
    seed: int = SEED,
    events: tuple[Event, ...] = EVENTS,
) -> dict[str, int]:
    """Simulate and write every day; labels arriving after the last scenario day are not written.

    Each day has its own generator seeded by (seed, day_index), so a day is reproducible on its own.
    Returns {"days", "predictions", "labels"} counts.
    """
    horizon = pd.Timestamp(scenario_days(plan, days)[-1][1] + dt.timedelta(days=1), tz="UTC")
    labelled_at = plan.data.labels.labelled_at if plan.data.labels else "labelled_at"
    counts = {"days": 0, "predictions": 0, "labels": 0}
    for day_index, day in scenario_days(plan, days):
        preds, labels = simulate_day(
            plan, day_index, day, pool, model, version, np.random.default_rng([seed, day_index]), events=events
        )
        labels = labels[labels[labelled_at] < horizon]
        write_day(plan, preds, labels)
        counts["days"] += 1
        counts["predictions"] += len(preds)
        counts["labels"] += len(labels)
    return counts
