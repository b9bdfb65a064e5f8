"""Monitoring plans: one YAML file per model, validated by a pydantic schema.

``load_plan(path)`` returns a ``MonitoringPlan`` or raises ``PlanError`` listing *every* mistake with its
field path (``thresholds.drift.share_of_drifted_features: warning 0.5 is beyond critical 0.4``).
``load_plans(directory)`` loads every ``*.yaml`` / ``*.yml`` file there and fails as a whole when one is
broken, so a model is never dropped silently. See docs/plans.md for the full reference.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitoring_pipelines.errors import PlanError
from monitoring_pipelines.metrics import CATALOGUE, Bounds, Family, known_metric

PLANS_DIR_ENV = "MONITORING_PLANS_DIR"
BUNDLED_PLANS_DIR = Path(__file__).parent / "plans"

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
                    raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                            f"found duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_PlanLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PlanLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))


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
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Strict):
    name: str = Field(description="MLflow registered model name; also the Dagster asset-key prefix and group name.")
    task: Literal["binary_classification"] = "binary_classification"
    positive_class: Literal[0, 1] = 1

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"model name {v!r} must start with a letter and hold only letters, digits and '_' "
                             "(it becomes a Dagster asset-key prefix)")
        return v


class Owners(_Strict):
    team: str
    on_call: str | None = None
    playbook: str | None = None


class _Source(_Strict):
    """Where a table lives: files (parquet / csv; folder, ``{date}`` template or glob; local or fsspec URL) or SQL."""

    source: Literal["parquet", "csv", "sql"]
    path: str | None = Field(None, description="files: a folder of <YYYY-MM-DD>.<ext> files, a path with {date}, or a glob")
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
        if (len(parts) != 5 or parts[2:] != ["*", "*", "*"] or not parts[0].isdigit() or not parts[1].isdigit()
                or int(parts[0]) > 59 or int(parts[1]) > 23):
            raise ValueError(f"cron {v!r} must be a daily schedule 'MINUTE HOUR * * *', e.g. '0 2 * * *'")
        return v

    @property
    def minute(self) -> int:
        return int(self.cron.split()[0])

    @property
    def hour(self) -> int:
        return int(self.cron.split()[1])


class Threshold(_Strict):
    warning: float | None = None
    critical: float | None = None
    direction: Literal["max", "min"] = "max"

    @property
    def bounds(self) -> Bounds:
        return Bounds(self.warning, self.critical, self.direction)


class RetrainAction(_Strict):
    on: list[str] = []
    cooldown_hours: float = Field(24, ge=0)
    recipe: str | None = Field(None, description="'module:function' receiving the labelled window, returning a fitted estimator")
    window_days: int = Field(14, ge=1)


class PromoteAction(_Strict):
    metric: str = "roc_auc"
    min_uplift: float = 0.01
    min_days: int = Field(3, ge=1)
    approval: Literal["manual", "auto"] = "manual"


class RollbackAction(_Strict):
    on: list[str] = []
    within_days_of_promotion: int = Field(7, ge=1)


class Actions(_Strict):
    retrain: RetrainAction | None = None
    promote: PromoteAction | None = None
    rollback: RollbackAction | None = None


class Alerts(_Strict):
    channels: list[Literal["slack", "webhook", "email", "pagerduty"]] = []
    min_severity: Literal["warning", "critical"] = "warning"


# Evidently 0.7's registered drift tests (legacy/calculations/stattests); the plan may pick one per column.
DRIFT_METHODS = ("ks", "chisquare", "z", "t_test", "mannw", "es", "wasserstein", "jensenshannon", "psi", "kl_div",
                 "hellinger", "TVD", "anderson", "cramer_von_mises", "ed", "empirical_mmd", "fisher_exact", "g_test")


class ColumnDriftTest(_Strict):
    method: Literal[DRIFT_METHODS]  # type: ignore[valid-type]
    threshold: float = Field(description="required: Evidently would otherwise apply the type-wide threshold")


class DriftSettings(_Strict):
    columns: dict[str, ColumnDriftTest] = Field({}, description="per feature: the drift test and its threshold "
                                                                "(default: Evidently's choice, see docs/plans.md)")


class FairnessSettings(_Strict):
    min_group_size: int = Field(30, ge=1, description="smaller groups are reported but never alerted on")
    min_rate_support: int = Field(20, ge=0, description="TPR / FPR gaps compare only groups with at least this many "
                                                       "actual positives / negatives")


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
            problems.append((f"protected_attributes[{i}]", f"{attr!r} is not a column of the prediction log; "
                             "list it under features (numerical, categorical or context)"))

    for key, t in plan.thresholds.items():
        where = f"thresholds.{key}"
        family, _, metric = key.partition(".")
        if not known_metric(family, metric):
            problems.append((where, f"unknown metric {key!r}; expected '<family>.<metric>' from the catalogue "
                             "in docs/plans.md"))
        if t.warning is None and t.critical is None:
            problems.append((where, "give a warning or a critical threshold (or both)"))
        if t.warning is not None and t.critical is not None:
            beyond = t.warning > t.critical if t.direction == "max" else t.warning < t.critical
            if beyond:
                problems.append((where, f"warning {t.warning} is beyond critical {t.critical} for direction "
                                 f"'{t.direction}' (the warning must fire first)"))

    triggers = [("actions.retrain.on", plan.actions.retrain), ("actions.rollback.on", plan.actions.rollback)]
    for where, action in triggers:
        for i, trig in enumerate(action.on if action else []):
            family, _, severity = trig.partition(".")
            if family not in {f.value for f in Family} or severity not in ("warning", "critical"):
                problems.append((f"{where}[{i}]", f"{trig!r} must be '<family>.<warning|critical>', e.g. 'drift.critical'"))
    for col in plan.drift.columns:
        if col not in plan.features.model_inputs:
            problems.append((f"drift.columns.{col}", f"{col!r} is not a model input (features.numerical/categorical)"))
    lab = plan.data.labels
    if lab is not None:
        named = [("id", lab.id), ("label", lab.label), ("labelled_at", lab.labelled_at)]
        for i, (role, col) in enumerate(named):
            for other_role, other in named[:i]:
                if col == other:
                    problems.append((f"data.labels.{role}", f"column {col!r} is also data.labels.{other_role}"))
    if plan.actions.retrain and plan.actions.retrain.on and not plan.actions.retrain.recipe:
        problems.append(("actions.retrain.recipe", "required when actions.retrain.on lists triggers: "
                         "'module:function' that trains the model"))
    if plan.actions.retrain and plan.actions.retrain.recipe and ":" not in plan.actions.retrain.recipe:
        problems.append(("actions.retrain.recipe", "must be 'module:function'"))
    if plan.actions.promote and not known_metric("comparison", f"{plan.actions.promote.metric}_delta"):
        # the promotion sensor reads comparison.<metric>_delta; any other metric would never promote
        compared = sorted(m.removesuffix("_delta") for m in CATALOGUE[Family.COMPARISON] if m.endswith("_delta"))
        problems.append(("actions.promote.metric", f"{plan.actions.promote.metric!r} is not compared between "
                         f"challenger and champion; use one of {compared}"))
    return problems


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _without(raw: dict, locs: list[tuple]) -> dict:
    """A copy of ``raw`` with the entries at ``locs`` removed."""
    raw = copy.deepcopy(raw)
    for loc in locs:
        node = raw
        for part in loc[:-1]:
            node = node[part]
        del node[loc[-1]]
    return raw


def parse_plan(raw: object, file: str) -> MonitoringPlan:
    """Validate an already-parsed YAML document. Raises PlanError with every problem found."""
    if not isinstance(raw, dict):
        raise PlanError([(file, "", "a plan must be a YAML mapping")])
    problems: list[tuple[str, str]] = []
    try:
        plan = MonitoringPlan.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [(_loc(e["loc"]), e["msg"]) for e in errors]
        plan = None
        if all(e["type"] == "extra_forbidden" for e in errors):
            # unknown keys change nothing else: check the rest too, so every mistake is reported at once
            plan = MonitoringPlan.model_validate(_without(raw, [e["loc"] for e in errors]))
    if plan is not None:
        problems += _semantic_problems(plan)
    if problems:
        raise PlanError([(file, where, msg) for where, msg in problems])
    return plan


def load_plan(path: str | Path) -> MonitoringPlan:
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
    return parse_plan(raw, str(path))


def plans_dir() -> Path:
    """The plans directory: $MONITORING_PLANS_DIR, else the bundled demo plan."""
    return Path(os.environ.get(PLANS_DIR_ENV) or BUNDLED_PLANS_DIR)


def plan_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_plans(directory: str | Path | None = None) -> list[MonitoringPlan]:
    """Load every plan in ``directory``; all problems of all files are reported together."""
    directory = Path(directory) if directory is not None else plans_dir()
    files = plan_files(directory)
    if not files:
        raise PlanError([(str(directory), "", "no *.yaml plan files found (set MONITORING_PLANS_DIR)")])
    plans, problems, names = [], [], {}
    for f in files:
        try:
            plan = load_plan(f)
        except PlanError as exc:
            problems += exc.problems
            continue
        if plan.name in names:
            problems.append((str(f), "model.name", f"model {plan.name!r} is already monitored by {names[plan.name]}"))
            continue
        names[plan.name] = str(f)
        plans.append(plan)
    if problems:
        raise PlanError(problems)
    return plans
