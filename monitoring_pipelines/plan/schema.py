"""Monitoring plans: one YAML file per model, validated by a pydantic schema.

``load_plan(path)`` returns a ``MonitoringPlan`` or raises ``PlanError`` listing *every* mistake with its
field path (``thresholds.drift.share_of_drifted_features: warning 0.5 is beyond critical 0.4``).
``load_plans(directory)`` loads every ``*.yaml`` / ``*.yml`` file there and fails as a whole when one is
broken, so a model is never dropped silently. See docs/plans.md for the full reference.

This module knows the plan's own structure only and imports no family. What needs a family (metric names of
thresholds, drift methods, quality check names, promotable metrics) is checked by
``monitoring_pipelines.validation``, which passes those checks to these loaders: load plans for real through
``validation.load_plans`` / ``validation.load_plan``.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitoring_pipelines.errors import PlanError
from monitoring_pipelines.judge.metrics import Bounds, Family

PLANS_DIR_ENV = "MONITORING_PLANS_DIR"
BUNDLED_PLANS_DIR = Path(__file__).parents[1] / "plans"

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class _PlanLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false, so keys such as ``on:`` stay strings.

    A key given twice in one mapping is an error (as in YAML 1.2), not the last one silently winning.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_PlanLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PlanLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _timestamp_or_text(loader: _PlanLoader, node: yaml.ScalarNode) -> object:
    # A date-like scalar that is no date (2026-13-01) stays text, so the schema reports it with its field path
    # instead of PyYAML raising a bare ValueError.
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_PlanLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)


def read_yaml(text: str) -> object:
    return yaml.load(text, Loader=_PlanLoader)


class _Strict(BaseModel):
    # allow_inf_nan=False: YAML's .nan / .inf would pass as floats, and a NaN threshold never breaches (every
    # comparison with NaN is false), so a non-finite number anywhere in a plan would silently disable a rule.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelSection(_Strict):
    name: str = Field(description="MLflow registered model name; also the Dagster asset-key prefix and group name.")
    task: Literal["binary_classification"] = "binary_classification"
    positive_class: Literal[0, 1] = 1

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                f"model name {v!r} must start with a letter and hold only letters, digits and '_' "
                "(it becomes a Dagster asset-key prefix)"
            )
        return v


class Owners(_Strict):
    team: str
    on_call: str | None = None
    playbook: str | None = None


class _Source(_Strict):
    """Where a table lives: files (parquet / csv; folder, ``{date}`` template or glob; local or fsspec URL) or SQL."""

    source: Literal["parquet", "csv", "sql"]
    path: str | None = Field(
        None, description="files: a folder of <YYYY-MM-DD>.<ext> files, a path with {date}, or a glob"
    )
    table: str | None = Field(None, description="sql: table name (optionally schema.table)")
    url_env: str | None = Field(None, description="sql: name of the environment variable holding the SQLAlchemy URL")

    def location_problems(self) -> list[tuple[str, str]]:
        if self.source == "sql":
            missing = [f for f in ("table", "url_env") if getattr(self, f) is None]
            return [(f, "required when source is 'sql'") for f in missing]
        return [] if self.path else [("path", f"required when source is '{self.source}'")]


class PredictionSource(_Source):
    timestamp: str = "ts"
    id: str = "request_id"
    prediction: str = "prediction"
    score: str = "score"
    latency_ms: str | None = "latency_ms"
    status: str | None = "status"
    ok_status: str = Field("ok", description="value of the status column that means success; anything else is an error")
    model_version: str | None = "model_version"

    def mapped_columns(self) -> dict[str, str]:
        """Role -> column name for every column the plan maps (None roles are left out)."""
        roles = ("timestamp", "id", "prediction", "score", "latency_ms", "status", "model_version")
        return {r: getattr(self, r) for r in roles if getattr(self, r) is not None}


class LabelSource(_Source):
    id: str = "request_id"
    label: str = "label"
    labelled_at: str = "labelled_at"
    expected_delay_days: int = Field(3, ge=0)
    min_coverage: float = Field(0.5, ge=0, le=1, description="below this share of labelled rows a day is partial")


class ReferenceSource(_Strict):
    source: Literal["mlflow_artifact", "parquet", "csv"]
    artifact_path: str | None = Field(None, description="mlflow_artifact: path inside the champion's run artifacts")
    path: str | None = None
    label: str = "label"

    def location_problems(self) -> list[tuple[str, str]]:
        if self.source == "mlflow_artifact":
            return [] if self.artifact_path else [("artifact_path", "required when source is 'mlflow_artifact'")]
        return [] if self.path else [("path", f"required when source is '{self.source}'")]


class DataSection(_Strict):
    predictions: PredictionSource
    labels: LabelSource | None = None
    reference: ReferenceSource


class Features(_Strict):
    numerical: list[str] = []
    categorical: list[str] = []
    context: list[str] = Field([], description="logged columns the model does not read (e.g. protected attributes)")

    @property
    def model_inputs(self) -> list[str]:
        return [*self.numerical, *self.categorical]


class Schedule(_Strict):
    cron: str = "0 2 * * *"
    timezone: Literal["UTC"] = "UTC"
    start_date: dt.date

    @field_validator("cron")
    @classmethod
    def _daily(cls, v: str) -> str:
        # partitions are UTC days, so the schedule runs once a day at a fixed minute (Dagster derives the
        # partition of each tick from it); other cadences would need other partitions.
        parts = v.split()
        if (
            len(parts) != 5
            or parts[2:] != ["*", "*", "*"]
            or not parts[0].isdigit()
            or not parts[1].isdigit()
            or int(parts[0]) > 59
            or int(parts[1]) > 23
        ):
            raise ValueError(f"cron {v!r} must be a daily schedule 'MINUTE HOUR * * *', e.g. '0 2 * * *'")
        return v

    @property
    def minute(self) -> int:
        return int(self.cron.split()[0])

    @property
    def hour(self) -> int:
        return int(self.cron.split()[1])


class Levels(_Strict):
    """A warning and a critical size of deviation (a fraction of the baseline mean, or standard deviations)."""

    warning: float | None = Field(None, gt=0)
    critical: float | None = Field(None, gt=0)


class RelativeRule(_Strict):
    """Judge a figure against the model's own recent history of the same metric and segment (the baseline):
    the values of the ``baseline_days`` days before the judged day. Breaches go in the threshold's direction
    (``min``: a drop, ``max``: a rise), or both ways with ``two_sided``."""

    baseline_days: int = Field(14, ge=2, description="days before the judged day that form the baseline")
    min_days: int = Field(7, ge=1, description="fewer baseline days with a value: the relative rule cannot judge")
    ratio: Levels | None = Field(None, description="breach beyond baseline_mean -/+ level * |baseline_mean|")
    zscore: Levels | None = Field(None, description="breach beyond baseline_mean -/+ level * baseline_std")
    two_sided: bool = Field(False, description="breach on a deviation either way, not only in the direction")


class Persistence(_Strict):
    """Raise a status only when the metric breached that level on ``k`` of the last ``m`` days (today included)."""

    k: int = Field(ge=1)
    m: int = Field(ge=1)


class Threshold(_Strict):
    warning: float | None = None
    critical: float | None = None
    direction: Literal["max", "min"] = "max"
    relative: RelativeRule | None = None
    persistence: Persistence | None = None

    @property
    def bounds(self) -> Bounds:
        """The absolute levels only (relative rules depend on the history, see health.assess)."""
        return Bounds(self.warning, self.critical, self.direction)

    @property
    def history_days(self) -> int:
        """How many days before the judged day the judgement reads: the baseline of the judged day and of each
        earlier day of the persistence window."""
        baseline = self.relative.baseline_days if self.relative else 0
        earlier = self.persistence.m - 1 if self.persistence else 0
        return baseline + earlier


class RetrainAction(_Strict):
    on: list[str] = []
    cooldown_hours: float = Field(24, ge=0)
    recipe: str | None = Field(
        None, description="'module:function' receiving the labelled window, returning a fitted estimator"
    )
    window_days: int = Field(14, ge=1)


class PromoteAction(_Strict):
    """Promote the challenger when its accumulated shadow evidence holds (comparison.accumulate)."""

    metric: str = Field("roc_auc", description="compared metric; needs a significance test (DeLong: roc_auc)")
    min_uplift: float = Field(0.01, description="pooled challenger - champion delta of the metric, at least")
    min_days: int = Field(3, ge=1, description="labelled days of evidence since the challenger's training data")
    significance: float = Field(0.05, gt=0, lt=1, description="one-sided p-value of the combined daily tests, below")
    max_fairness_regression: float = Field(
        0.05,
        ge=0,
        description="largest allowed pooled widening of an "
        "equal-opportunity or demographic-parity gap (challenger - champion)",
    )
    approval: Literal["manual", "auto"] = "manual"


class RollbackAction(_Strict):
    on: list[str] = []
    within_days_of_promotion: int = Field(7, ge=1)


class Actions(_Strict):
    retrain: RetrainAction | None = None
    promote: PromoteAction | None = None
    rollback: RollbackAction | None = None


# One playbook per alert type (docs/playbooks/<type>.md); monitoring_pipelines.notify maps (family, metric) to a type.
ALERT_TYPES = (
    "data-quality-failure",
    "feature-drift",
    "prediction-drift",
    "performance-drop",
    "fairness-gap",
    "latency-error-spike",
    "failed-retrain",
)
CHANNEL_TYPES = ("slack", "webhook", "email", "pagerduty")
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class AlertChannel(_Strict):
    """One place alerts go. Secrets (webhook URLs, signing keys, passwords, routing keys) are never written in the
    plan: the ``*_env`` fields hold the **name** of the environment variable that holds them."""

    name: str = Field(description="unique within the plan; names the channel in the outbox, logs and errors")
    type: Literal["slack", "webhook", "email", "pagerduty"]
    min_severity: Literal["warning", "critical"] | None = Field(
        None, description="default: alerts.min_severity (pagerduty: critical)"
    )
    url_env: str | None = Field(None, description="slack / webhook: env var holding the URL to POST to")
    hmac_key_env: str | None = Field(None, description="webhook: env var holding the HMAC-SHA256 signing key")
    routing_key_env: str | None = Field(None, description="pagerduty: env var holding the Events API v2 routing key")
    url: str | None = Field(None, description=f"pagerduty: the Events API endpoint (default {PAGERDUTY_EVENTS_URL})")
    smtp_host: str | None = None
    smtp_port: int | None = Field(None, ge=1, le=65535, description="email: default 587 with STARTTLS, else 25")
    starttls: bool | None = Field(None, description="email: upgrade the SMTP connection with STARTTLS (default true)")
    username_env: str | None = Field(None, description="email: env var holding the SMTP user name")
    password_env: str | None = Field(None, description="email: env var holding the SMTP password")
    sender: str | None = Field(None, alias="from", description="email: the From address")
    to: list[str] | None = Field(None, description="email: the recipients")

    _REQUIRED: ClassVar[dict] = {
        "slack": ("url_env",),
        "webhook": ("url_env", "hmac_key_env"),
        "email": ("smtp_host", "from", "to"),
        "pagerduty": ("routing_key_env",),
    }
    _ALLOWED: ClassVar[dict] = {
        "slack": {"url_env"},
        "webhook": {"url_env", "hmac_key_env"},
        "email": {"smtp_host", "smtp_port", "starttls", "username_env", "password_env", "from", "to"},
        "pagerduty": {"routing_key_env", "url"},
    }
    _OPTIONAL: ClassVar[tuple] = (
        "url_env",
        "hmac_key_env",
        "routing_key_env",
        "url",
        "smtp_host",
        "smtp_port",
        "starttls",
        "username_env",
        "password_env",
        "from",
        "to",
    )

    def get(self, field: str):
        """The value of a field by its YAML name (``from`` is the attribute ``sender``)."""
        return self.sender if field == "from" else getattr(self, field)

    @property
    def severity_floor(self) -> str | None:
        """The channel's own min_severity, or pagerduty's default (critical: a page is for critical only)."""
        return self.min_severity or ("critical" if self.type == "pagerduty" else None)

    @property
    def effective_starttls(self) -> bool:
        return True if self.starttls is None else self.starttls

    @property
    def effective_smtp_port(self) -> int:
        return self.smtp_port or (587 if self.effective_starttls else 25)

    @property
    def events_url(self) -> str:
        return self.url or PAGERDUTY_EVENTS_URL

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) for what a channel of this type lacks or should not carry. Values are never echoed:
        a secret pasted where an env var name belongs must not end up in a log."""
        out = []
        for f in self._REQUIRED[self.type]:
            if self.get(f) in (None, [], ""):
                out.append((f, f"required for a {self.type} channel"))
        for f in self._OPTIONAL:
            if f not in self._ALLOWED[self.type] and self.get(f) is not None:
                out.append((f, f"not used by a {self.type} channel"))
        for f in ("url_env", "hmac_key_env", "routing_key_env", "username_env", "password_env"):
            v = self.get(f)
            if v is not None and not _ENV_NAME.match(v):
                out.append(
                    (f, "must be the NAME of an environment variable (letters, digits, '_'), not the secret itself")
                )
        if self.type == "email" and (self.username_env is None) != (self.password_env is None):
            out.append(
                (
                    "password_env" if self.password_env is None else "username_env",
                    "username_env and password_env go together (SMTP login needs both)",
                )
            )
        for i, addr in enumerate(self.to or []):
            if "@" not in addr:
                out.append((f"to[{i}]", f"{addr!r} is not an e-mail address"))
        if self.sender is not None and "@" not in self.sender:
            out.append(("from", f"{self.sender!r} is not an e-mail address"))
        if self.url is not None and not re.match(r"^https?://[^/\s]+", self.url):
            out.append(("url", "must be an http(s) URL"))
        return out


class AlertRetry(_Strict):
    """Delivery retries: inside one delivery call, then on every later call until delivered."""

    attempts_per_call: int = Field(3, ge=1, le=10, description="attempts of one notification within one call")
    backoff_seconds: float = Field(1.0, ge=0, le=60, description="wait before the 2nd attempt; doubles each attempt")
    max_backoff_seconds: float = Field(900, ge=0, description="cap of the wait before a later call retries")
    timeout_seconds: float = Field(10, gt=0, le=120, description="connect + response timeout of one attempt")


class Alerts(_Strict):
    channels: list[AlertChannel] = []
    min_severity: Literal["warning", "critical"] = "warning"
    retry: AlertRetry = AlertRetry()
    playbooks: dict[Literal[ALERT_TYPES], str] = Field(  # type: ignore[valid-type]
        {}, description="per alert type: the playbook link used instead of owners.playbook / the bundled one"
    )
    playbook_base_url: str | None = Field(
        None, description="prefix of the bundled docs/playbooks/<type>.md links, e.g. a repository browse URL"
    )
    dagster_url: str | None = Field(None, description="base URL of the Dagster UI, to link runs from alerts")

    @field_validator("channels", mode="before")
    @classmethod
    def _channel_mappings(cls, v: object) -> object:
        # the earlier schema listed bare types (channels: [slack]); say what a channel needs now
        if isinstance(v, list) and any(isinstance(c, str) for c in v):
            bare = next(c for c in v if isinstance(c, str))
            raise ValueError(
                f"each channel is a mapping with name, type and the env var names of its secrets, "
                f"e.g. {{name: team-slack, type: slack, url_env: TEAM_SLACK_WEBHOOK_URL}}; "
                f"got the bare {bare!r}"
            )
        return v

    def channel(self, name: str) -> AlertChannel | None:
        return next((c for c in self.channels if c.name == name), None)

    def problems(self) -> list[tuple[str, str]]:
        out, seen = [], {}
        for i, ch in enumerate(self.channels):
            where = f"alerts.channels[{i}]"
            out += [(f"{where}.{f}", m) for f, m in ch.problems()]
            if not _CHANNEL_NAME.match(ch.name):
                out.append(
                    (
                        f"{where}.name",
                        f"channel name {ch.name!r} must start with a letter or digit and hold "
                        "only letters, digits, '_', '.' and '-'",
                    )
                )
            if ch.name in seen:
                out.append((f"{where}.name", f"channel name {ch.name!r} is also alerts.channels[{seen[ch.name]}]"))
            seen.setdefault(ch.name, i)
        for f in ("playbook_base_url", "dagster_url"):
            v = getattr(self, f)
            if v is not None and not re.match(r"^https?://[^/\s]+", v):
                out.append((f"alerts.{f}", "must be an http(s) URL"))
        return out


# Evidently 0.7's registered drift tests (legacy/calculations/stattests); the plan may pick one per column.
DRIFT_METHODS = (
    "ks",
    "chisquare",
    "z",
    "t_test",
    "mannw",
    "es",
    "wasserstein",
    "jensenshannon",
    "psi",
    "kl_div",
    "hellinger",
    "TVD",
    "anderson",
    "cramer_von_mises",
    "ed",
    "empirical_mmd",
    "fisher_exact",
    "g_test",
)


class ColumnDriftTest(_Strict):
    method: Literal[DRIFT_METHODS]  # type: ignore[valid-type]
    threshold: float = Field(description="required: Evidently would otherwise apply the type-wide threshold")


class DriftSettings(_Strict):
    columns: dict[str, ColumnDriftTest] = Field(
        {}, description="per feature: the drift test and its threshold (default: Evidently's choice, see docs/plans.md)"
    )


class FairnessSettings(_Strict):
    min_group_size: int = Field(30, ge=1, description="smaller groups are reported but never alerted on")
    min_rate_support: int = Field(
        20, ge=0, description="TPR / FPR gaps compare only groups with at least this many actual positives / negatives"
    )


class IncidentSettings(_Strict):
    resolve_after_ok_days: int = Field(
        2, ge=1, description="an open incident resolves by itself on the n-th day judged ok after its last breach"
    )


_CHECK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXPECTATION_TYPE = re.compile(r"^expect_[a-z0-9_]+$")
# a row condition may read any column: it would defeat column-wise, chunked validation (docs/quality.md)
_UNSUPPORTED_KWARGS = ("row_condition", "condition_parser", "batch_id")


class VolumeSettings(_Strict):
    """The expected daily row count (check ``row_volume``). Fixed bounds replace the derived ones side by side."""

    min_rows: int | None = Field(None, ge=0, description="fixed lower bound; default: min_ratio x recent median")
    max_rows: int | None = Field(None, ge=0, description="fixed upper bound; default: max_ratio x recent median")
    lookback_days: int = Field(14, ge=1, description="how many days before the checked day form the recent median")
    min_history_days: int = Field(3, ge=1, description="fewer stored days than this: no derived bound yet")
    min_ratio: float = Field(0.5, ge=0)
    max_ratio: float = Field(2.0, gt=0)
    blocking: bool = False


class PlanExpectation(_Strict):
    """One Great Expectations 1.x expectation in GX's own JSON/YAML shape (``type``, ``kwargs``, ``meta``),
    plus the Dagster check it becomes (``name``, ``blocking``, ``description``)."""

    name: str = Field(description="the asset check name: letters, digits and '_'")
    type: str = Field(description="a GX expectation type, e.g. expect_column_values_to_be_between")
    kwargs: dict[str, object] = {}
    meta: dict[str, object] = {}
    blocking: bool = False
    description: str | None = None


class CheckOverride(_Strict):
    """Changes to one derived check: GX kwargs merged over the derived ones, and its blocking flag / text."""

    kwargs: dict[str, object] = {}
    blocking: bool | None = None
    description: str | None = None


class QualitySettings(_Strict):
    volume: VolumeSettings = VolumeSettings()
    expectations: list[PlanExpectation] = []
    overrides: dict[str, CheckOverride] = {}
    disable: list[str] = []

    def problems(self, derived: list[str]) -> list[tuple[str, str]]:
        """What can be checked without importing Great Expectations; ``derived`` are the derived check names.
        The expectation types and kwargs are checked by GX itself (``quality.expectation_problems``)."""
        problems: list[tuple[str, str]] = []
        v = self.volume
        if v.min_rows is not None and v.max_rows is not None and v.min_rows > v.max_rows:
            problems.append(("quality.volume.min_rows", f"{v.min_rows} is above max_rows {v.max_rows}"))
        if v.min_ratio >= v.max_ratio:
            problems.append(("quality.volume.min_ratio", f"{v.min_ratio} must be below max_ratio {v.max_ratio}"))
        names: dict[str, int] = {}
        for i, e in enumerate(self.expectations):
            where = f"quality.expectations[{i}]"
            if not _CHECK_NAME.match(e.name):
                problems.append(
                    (
                        f"{where}.name",
                        f"check name {e.name!r} must hold only letters, digits and '_' "
                        "(it becomes a Dagster asset check name)",
                    )
                )
            elif e.name in derived:
                problems.append(
                    (
                        f"{where}.name",
                        f"{e.name!r} is a derived check; change it under "
                        f"quality.overrides.{e.name} or pick another name",
                    )
                )
            elif e.name in names:
                problems.append((f"{where}.name", f"{e.name!r} is also quality.expectations[{names[e.name]}].name"))
            names.setdefault(e.name, i)
            if not _EXPECTATION_TYPE.match(e.type):
                problems.append(
                    (
                        f"{where}.type",
                        f"{e.type!r} is not a Great Expectations expectation type "
                        "(expect_..., e.g. expect_column_values_to_be_between)",
                    )
                )
            problems += [
                (f"{where}.kwargs.{k}", "not supported in a plan expectation (docs/quality.md)")
                for k in _UNSUPPORTED_KWARGS
                if k in e.kwargs
            ]
            problems += _kwargs_limits(e.kwargs, f"{where}.kwargs")
        for name, o in self.overrides.items():
            where = f"quality.overrides.{name}"
            if name not in derived:
                problems.append(
                    (where, f"unknown check {name!r}; the derived checks of this plan are {', '.join(derived)}")
                )
            elif name == "row_volume":
                problems.append(
                    (where, "set the volume range under quality.volume (min_rows, max_rows, ratios, blocking)")
                )
            elif name in self.disable:
                problems.append((where, f"{name!r} is also disabled (quality.disable)"))
            if not o.kwargs and o.blocking is None and o.description is None:
                problems.append((where, "give kwargs, blocking or description"))
            if "column" in o.kwargs:
                problems.append(
                    (
                        f"{where}.kwargs.column",
                        "a derived check keeps its column; disable it and add a plan expectation instead",
                    )
                )
            problems += [
                (f"{where}.kwargs.{k}", "not supported in an override (docs/quality.md)")
                for k in _UNSUPPORTED_KWARGS
                if k in o.kwargs
            ]
            problems += _kwargs_limits(o.kwargs, f"{where}.kwargs")
        for i, name in enumerate(self.disable):
            if name not in derived:
                problems.append(
                    (
                        f"quality.disable[{i}]",
                        f"unknown check {name!r}; only derived checks can be "
                        "disabled (remove a plan expectation from quality.expectations instead)",
                    )
                )
            elif name in self.disable[:i]:
                problems.append((f"quality.disable[{i}]", f"{name!r} is listed twice"))
        return problems


def _kwargs_limits(kwargs: dict[str, object], where: str) -> list[tuple[str, str]]:
    """GX kwargs that would make a check meaningless: a non-finite number (a bound of .inf is no bound, and a
    comparison with NaN is never true) or ``mostly`` of 0 or less (no row needs to meet the expectation)."""
    problems = non_finite(kwargs, where)
    mostly = kwargs.get("mostly")
    if isinstance(mostly, int | float) and not isinstance(mostly, bool) and math.isfinite(mostly) and mostly <= 0:
        problems.append((f"{where}.mostly", f"{mostly} lets every row fail: the check would always pass"))
    return problems


class MonitoringPlan(_Strict):
    model: ModelSection
    owners: Owners
    data: DataSection
    features: Features
    protected_attributes: list[str] = []
    schedule: Schedule
    thresholds: dict[str, Threshold] = {}
    actions: Actions = Actions()
    alerts: Alerts = Alerts()
    fairness: FairnessSettings = FairnessSettings()
    drift: DriftSettings = DriftSettings()
    incidents: IncidentSettings = IncidentSettings()
    quality: QualitySettings = QualitySettings()

    @property
    def name(self) -> str:
        return self.model.name

    def bounds(self, family: Family | str, metric: str) -> Bounds:
        fam = family.value if isinstance(family, Family) else family
        t = self.thresholds.get(f"{fam}.{metric}")
        return t.bounds if t else Bounds()

    @property
    def logged_columns(self) -> list[str]:
        """Every column a day of the prediction log must carry: without them the day cannot be monitored.
        Context columns (``features.context``, e.g. protected attributes) may be missing on a day: a non-blocking
        quality check (``<col>_present``) fails and fairness reports the attribute as missing."""
        return [*self.data.predictions.mapped_columns().values(), *self.features.model_inputs]


# --------------------------------------------------------------------------------------------------------
# semantic checks pydantic cannot express field by field; each returns (field path, message)


def _semantic_problems(plan: MonitoringPlan) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for section in ("predictions", "labels"):
        src = getattr(plan.data, section)
        if src is not None:
            problems += [(f"data.{section}.{f}", m) for f, m in src.location_problems()]
    problems += [(f"data.reference.{f}", m) for f, m in plan.data.reference.location_problems()]

    seen: dict[str, str] = {}
    named = [(f"data.predictions.{role}", col) for role, col in plan.data.predictions.mapped_columns().items()]
    for group in ("numerical", "categorical", "context"):
        named += [(f"features.{group}[{i}]", col) for i, col in enumerate(getattr(plan.features, group))]
    for where, col in named:
        if col in seen:
            problems.append((where, f"column {col!r} is listed twice (also at {seen[col]})"))
        else:
            seen[col] = where
    if not plan.features.model_inputs:
        problems.append(("features", "list at least one numerical or categorical feature"))

    columns = set(seen)
    for i, attr in enumerate(plan.protected_attributes):
        if attr in plan.protected_attributes[:i]:
            problems.append((f"protected_attributes[{i}]", f"{attr!r} is listed twice"))
        if attr not in columns:
            problems.append(
                (
                    f"protected_attributes[{i}]",
                    f"{attr!r} is not a column of the prediction log; "
                    "list it under features (numerical, categorical or context)",
                )
            )

    for key, t in plan.thresholds.items():
        where = f"thresholds.{key}"
        if t.warning is None and t.critical is None and t.relative is None:
            problems.append((where, "give a warning or a critical threshold (or both), or a relative rule"))
        if t.warning is not None and t.critical is not None:
            beyond = t.warning > t.critical if t.direction == "max" else t.warning < t.critical
            if beyond:
                problems.append(
                    (
                        where,
                        f"warning {t.warning} is beyond critical {t.critical} for direction "
                        f"'{t.direction}' (the warning must fire first)",
                    )
                )
        problems += _rule_problems(where, t)

    triggers = [("actions.retrain.on", plan.actions.retrain), ("actions.rollback.on", plan.actions.rollback)]
    for where, action in triggers:
        for i, trig in enumerate(action.on if action else []):
            family, _, severity = trig.partition(".")
            if family not in {f.value for f in Family} or severity not in ("warning", "critical"):
                problems.append(
                    (f"{where}[{i}]", f"{trig!r} must be '<family>.<warning|critical>', e.g. 'drift.critical'")
                )
    for col in plan.drift.columns:
        if col not in plan.features.model_inputs:
            problems.append((f"drift.columns.{col}", f"{col!r} is not a model input (features.numerical/categorical)"))
    problems += plan.alerts.problems()
    lab = plan.data.labels
    if lab is not None:
        named = [("id", lab.id), ("label", lab.label), ("labelled_at", lab.labelled_at)]
        for i, (role, col) in enumerate(named):
            for other_role, other in named[:i]:
                if col == other:
                    problems.append((f"data.labels.{role}", f"column {col!r} is also data.labels.{other_role}"))
    if plan.actions.retrain and plan.actions.retrain.on and not plan.actions.retrain.recipe:
        problems.append(
            (
                "actions.retrain.recipe",
                "required when actions.retrain.on lists triggers: 'module:function' that trains the model",
            )
        )
    if plan.actions.retrain and plan.actions.retrain.recipe and ":" not in plan.actions.retrain.recipe:
        problems.append(("actions.retrain.recipe", "must be 'module:function'"))
    return problems


def _rule_problems(where: str, t: Threshold) -> list[tuple[str, str]]:
    """Problems of a threshold's relative and persistence rules."""
    problems: list[tuple[str, str]] = []
    rel = t.relative
    if rel is not None:
        if rel.ratio is None and rel.zscore is None:
            problems.append(
                (
                    f"{where}.relative",
                    "give ratio or zscore (or both): the size of deviation from the "
                    "baseline that breaches, e.g. ratio: {warning: 0.05, critical: 0.10}",
                )
            )
        for name, levels in (("ratio", rel.ratio), ("zscore", rel.zscore)):
            if levels is None:
                continue
            if levels.warning is None and levels.critical is None:
                problems.append((f"{where}.relative.{name}", "give a warning or a critical level (or both)"))
            elif levels.warning is not None and levels.critical is not None and levels.warning > levels.critical:
                problems.append(
                    (
                        f"{where}.relative.{name}",
                        f"warning {levels.warning} is beyond critical "
                        f"{levels.critical} (the warning must fire first: a smaller deviation)",
                    )
                )
        if rel.min_days > rel.baseline_days:
            problems.append(
                (
                    f"{where}.relative.min_days",
                    f"{rel.min_days} is more than baseline_days {rel.baseline_days}: the rule could never judge",
                )
            )
        if rel.zscore is not None and rel.min_days < 2:
            problems.append(
                (
                    f"{where}.relative.min_days",
                    "the zscore rule needs at least 2 baseline days (a standard deviation of one value does not exist)",
                )
            )
    p = t.persistence
    if p is not None and p.k > p.m:
        problems.append(
            (
                f"{where}.persistence.k",
                f"{p.k} is more than m {p.m}: a breach on k of the last m days could never happen",
            )
        )
    return problems


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


NOT_FINITE = "is not a finite number: a NaN or infinite value would silently disable what it sets"


def _yaml_number(value: object) -> str:
    """A non-finite number as the plan wrote it (``.nan``, ``.inf``, ``-.inf``); anything else as repr."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return repr(value)
    if math.isnan(number):
        return ".nan"
    if math.isinf(number):
        return ".inf" if number > 0 else "-.inf"
    return repr(value)


def _message(error: dict) -> str:
    """pydantic's message of one error; a non-finite number is named as written and the harm said."""
    if error["type"] == "finite_number":
        return f"{_yaml_number(error['input'])} {NOT_FINITE}"
    return error["msg"]


def non_finite(value: object, where: str) -> list[tuple[str, str]]:
    """(field path, message) for every NaN / infinite number inside ``value`` (nested mappings and lists):
    for the free-form parts of a plan (GX kwargs) that pydantic does not type."""
    if isinstance(value, float) and not math.isfinite(value):
        return [(where, f"{_yaml_number(value)} {NOT_FINITE}")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, f"{where}.{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{where}[{i}]")]
    return []


def _without(raw: dict, locs: list[tuple]) -> dict:
    """A copy of ``raw`` with the entries at ``locs`` removed."""
    raw = copy.deepcopy(raw)
    for loc in locs:
        node = raw
        for part in loc[:-1]:
            node = node[part]
        del node[loc[-1]]
    return raw


PlanCheck = Callable[[MonitoringPlan], list[tuple[str, str]]]
"""A check of a schema-valid plan: (field path, message) for every problem found."""


def parse_plan(raw: object, file: str, checks: Sequence[PlanCheck] = ()) -> MonitoringPlan:
    """Validate an already-parsed YAML document: the schema, the plan's own structure, then ``checks``
    (``validation.FAMILY_CHECKS``: what needs a family). Raises PlanError with every problem found."""
    if not isinstance(raw, dict):
        raise PlanError([(file, "", "a plan must be a YAML mapping")])
    problems: list[tuple[str, str]] = []
    try:
        plan = MonitoringPlan.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [(_loc(e["loc"]), _message(e)) for e in errors]
        plan = None
        if all(e["type"] == "extra_forbidden" for e in errors):
            # unknown keys change nothing else: check the rest too, so every mistake is reported at once
            plan = MonitoringPlan.model_validate(_without(raw, [e["loc"] for e in errors]))
    if plan is not None:
        problems += _semantic_problems(plan)
        for check in checks:
            problems += check(plan)
    if problems:
        raise PlanError([(file, where, msg) for where, msg in problems])
    return plan


def load_plan(path: str | Path, checks: Sequence[PlanCheck] = ()) -> MonitoringPlan:
    path = Path(path)
    try:
        raw = read_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError([(str(path), "", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise PlanError([(str(path), "", f"cannot read: not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    except yaml.MarkedYAMLError as exc:  # one line: the problem and where it is
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PlanError([(str(path), "", f"not valid YAML: {exc.problem or exc.context}{where}")]) from None
    except yaml.YAMLError as exc:
        raise PlanError([(str(path), "", f"not valid YAML: {exc}")]) from None
    return parse_plan(raw, str(path), checks)


def already_monitored(model: str, first_file: str | Path) -> str:
    """The message for a second plan of one model: both would build the same Dagster assets."""
    return f"model {model!r} is already monitored by {first_file}"


def plans_dir() -> Path:
    """The plans directory: $MONITORING_PLANS_DIR, else the bundled demo plan."""
    return Path(os.environ.get(PLANS_DIR_ENV) or BUNDLED_PLANS_DIR)


def plan_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_plans(directory: str | Path | None = None, checks: Sequence[PlanCheck] = ()) -> list[MonitoringPlan]:
    """Load every plan in ``directory``; all problems of all files are reported together."""
    directory = Path(directory) if directory is not None else plans_dir()
    files = plan_files(directory)
    if not files:
        raise PlanError([(str(directory), "", "no *.yaml plan files found (set MONITORING_PLANS_DIR)")])
    plans, problems, names = [], [], {}
    for f in files:
        try:
            plan = load_plan(f, checks)
        except PlanError as exc:
            problems += exc.problems
            continue
        if plan.name in names:
            problems.append((str(f), "model.name", already_monitored(plan.name, names[plan.name])))
            continue
        names[plan.name] = str(f)
        plans.append(plan)
    if problems:
        raise PlanError(problems)
    return plans
