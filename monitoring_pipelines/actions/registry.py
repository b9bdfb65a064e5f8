"""The MLflow model registry, by alias: the only module that imports MLflow.

It logs and loads models in MLflow's scikit-learn flavour, so scikit-learn's version and the holdout ROC AUC
logged with a retrained version are taken here too. MLflow is imported inside the functions that use it
(``import mlflow`` costs seconds and must not slow down a code-location load or ``plan validate``).

Aliases ``champion``, ``challenger`` and ``previous_champion`` name versions; registry stages are deprecated
and never used. Every lookup returns the version explicitly, so results record what they were computed for.
Every MLflow failure (registry unreachable, version or artifact missing, model that does not load) becomes a
``RegistryError`` naming the model, the version and the registry (its URI with the password masked). MLflow's
exception is not chained to it: MLflow quotes the tracking URI, password included, and Dagster stores the
chained causes of a failure in its event log; its type and (masked) message are in the RegistryError's text.

MLflow's HTTP client retries a failed request 7 times with a growing backoff and waits up to 120 s for an
answer, so an unreachable tracking server failed a run after about 4.5 minutes. ``MLFLOW_HTTP_DEFAULTS``
bounds that (docs/reliability.md, "Timeouts and retries"); a value set in the environment wins.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from monitoring_pipelines.data.sources import read_table
from monitoring_pipelines.errors import RegistryError
from monitoring_pipelines.settings import masked

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"

# MLflow's own environment variables (mlflow/environment_variables.py), with bounds for a nightly batch job:
# 3 attempts, 0 s then 2-3 s apart, each waiting at most 10 s. A refused connection fails a call in about 3 s, a
# server that never answers in about 33 s (MLflow's defaults: 7 retries, backoff factor 2, 120 s timeout).
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def bound_mlflow_http() -> dict[str, str]:
    """Set ``MLFLOW_HTTP_DEFAULTS`` in this process's environment where the user set nothing (MLflow reads
    them on every request); return the values in force."""
    for name, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in MLFLOW_HTTP_DEFAULTS}


# version tags (set by actions/operations.py)
TAG_TRIGGER_DAY = "monitoring.trigger_day"  # last day of a retrained version's training data
TAG_EVIDENCE_AFTER = "monitoring.evidence_after"  # set on rollback: evidence up to this day was used up


@dataclass(frozen=True)
class ModelVersionRef:
    model: str
    version: str
    alias: str | None
    run_id: str | None
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"

    @property
    def evidence_since(self) -> dt.date | None:
        """The first day whose shadow comparison may count as evidence for this version: the day after its
        training data ends and after the last day used up by a rollback; None when neither is known."""
        days = [dt.date.fromisoformat(self.tags[t]) for t in (TAG_TRIGGER_DAY, TAG_EVIDENCE_AFTER) if self.tags.get(t)]
        return max(days) + dt.timedelta(days=1) if days else None


class Registry:
    """Thin adapter over ``mlflow.MlflowClient`` for one tracking/registry URI (an absolute one)."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        bound_mlflow_http()
        self._client = None
        self._models: dict[tuple[str, str], object] = {}  # versions are immutable: load each once
        self._references: dict[tuple[str, str], object] = {}

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def _failure(self, what: str, exc: BaseException) -> RegistryError:
        """A RegistryError for ``exc``, to be raised *outside* the ``except`` block (see the module docstring)."""
        message = self._scrub(getattr(exc, "message", None) or str(exc))
        return RegistryError(f"{what}: MLflow registry at {self._where()} failed: {type(exc).__name__}: {message}")

    def _scrub(self, text: str) -> str:
        """MLflow's own messages quote the full tracking URI (password included): mask it as ``_where`` does,
        and the password itself wherever it appears, as written in the URI and decoded."""
        text = text.replace(self.tracking_uri, self._where())
        passwords = set()
        try:
            passwords.add(make_url(self.tracking_uri).password)
        except (ArgumentError, ValueError):
            pass
        try:
            passwords.add(urlsplit(self.tracking_uri).password)  # percent-encoded, as MLflow echoes it
        except ValueError:
            pass
        for password in sorted((p for p in passwords if p and len(p) >= 3), key=len, reverse=True):
            text = text.replace(password, "***")
        return text

    def _not_found(self, model: str) -> RegistryError:
        return RegistryError(f"registered model {model} not found in the MLflow registry at {self._where()}")

    def aliases(self, model: str) -> dict[str, str]:
        """alias -> version (as str: the sqlite store gives ints, the REST server strings)."""
        from mlflow.exceptions import MlflowException

        try:
            rm = self.client.get_registered_model(model)
        except MlflowException as exc:
            missing = exc.error_code == "RESOURCE_DOES_NOT_EXIST"
            failure = self._not_found(model) if missing else self._failure(f"model {model}: reading its aliases", exc)
        else:
            return {a: str(v) for a, v in rm.aliases.items()}
        raise failure

    def by_alias(self, model: str, alias: str) -> ModelVersionRef | None:
        """The version ``alias`` points to, or None when the alias is not set."""
        version = self.aliases(model).get(alias)
        return None if version is None else self.version(model, version, alias=alias)

    def require(self, model: str, alias: str) -> ModelVersionRef:
        ref = self.by_alias(model, alias)
        if ref is None:
            raise RegistryError(f"model {model}: alias {alias!r} is not set in the MLflow registry at {self._where()}")
        return ref

    def version(self, model: str, version: str, alias: str | None = None) -> ModelVersionRef:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(model, str(version))
        except MlflowException as exc:
            failure = self._failure(f"model {model} version {version}: reading the version", exc)
        else:
            return ModelVersionRef(model, str(mv.version), alias, mv.run_id, dict(mv.tags or {}))
        raise failure

    def load_model(self, ref: ModelVersionRef):
        """Load the version's scikit-learn model (from its artifact location; no global MLflow state). A model
        that cannot be downloaded or deserialised raises ``RegistryError`` naming model and version."""
        key = (ref.model, ref.version)
        if key not in self._models:
            import mlflow.sklearn

            failure = None
            try:
                uri = self.client.get_model_version_download_uri(ref.model, ref.version)
                model = mlflow.sklearn.load_model(uri)
            except Exception as exc:  # noqa: BLE001 -- any load failure is re-raised with the version named
                failure = RegistryError(
                    f"model {ref.model} version {ref.version}"
                    f"{f' ({ref.alias})' if ref.alias else ''}: cannot be loaded from the MLflow "
                    f"registry at {self._where()}: {type(exc).__name__}: {self._scrub(str(exc))}"
                )
            if failure is not None:
                raise failure
            if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
                raise RegistryError(
                    f"model {ref.model} version {ref.version}: {type(model).__name__} has no "
                    "predict_proba / classes_ (a fitted scikit-learn classifier is expected)"
                )
            self._models[key] = model
        return self._models[key]

    def read_reference(self, ref: ModelVersionRef, artifact_path: str):
        """The reference DataFrame logged with the version's run at ``artifact_path`` (parquet or csv); a copy."""
        key = (f"{ref.model}/{ref.version}", artifact_path)
        if key not in self._references:
            import mlflow.artifacts
            from mlflow.exceptions import MlflowException

            if not ref.run_id:
                raise RegistryError(f"model {ref.model} version {ref.version}: has no run, so no reference artifact")
            with tempfile.TemporaryDirectory() as tmp:
                failure = None
                try:
                    local = mlflow.artifacts.download_artifacts(
                        run_id=ref.run_id, artifact_path=artifact_path, dst_path=tmp, tracking_uri=self.tracking_uri
                    )
                except (MlflowException, OSError) as exc:
                    failure = self._failure(
                        f"model {ref.model} version {ref.version}: reference artifact "
                        f"{artifact_path!r} of run {ref.run_id} cannot be read",
                        exc,
                    )
                if failure is not None:
                    raise failure
                self._references[key] = read_table(local, "csv" if artifact_path.endswith(".csv") else "parquet")
        return self._references[key].copy()

    def model_tags(self, model: str) -> dict[str, str] | None:
        """The registered model's tags, or None when the registry holds no model of that name."""
        from mlflow.exceptions import MlflowException

        try:
            rm = self.client.get_registered_model(model)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            failure = self._failure(f"model {model}: reading its tags", exc)
        else:
            return dict(rm.tags or {})
        raise failure

    def _call(self, what: str, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``; an MLflow or connection failure becomes a RegistryError naming ``what``
        and the registry, with no chained exception (see the module docstring)."""
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except (MlflowException, OSError) as exc:
            failure = self._failure(what, exc)
        raise failure

    def delete_model(self, model: str) -> None:
        """Delete the registered model with every version (the demo's clean start; nothing else deletes)."""
        self._call(f"model {model}: deleting it", self.client.delete_registered_model, model)

    def experiment_id(self, name: str, artifact_location: str | None) -> str:
        """The experiment ``name``, created with its artifacts at ``artifact_location`` (None: the tracking
        server's own artifact root) when it does not exist yet."""
        what = f"experiment {name}"
        found = self._call(f"{what}: looking it up", self.client.get_experiment_by_name, name)
        if found is not None:
            return found.experiment_id
        return self._call(
            f"{what}: creating it", self.client.create_experiment, name, artifact_location=artifact_location
        )

    def log_version(
        self,
        model: str,
        estimator,
        *,
        experiment_id: str,
        run_name: str,
        params: dict,
        metrics: dict[str, float],
        signature_example: tuple[pd.DataFrame, object],
        trusted_types: list[str] | None,
        reference: pd.DataFrame | None = None,
        reference_path: str | None = None,
        run_tags: dict[str, str] | None = None,
    ) -> tuple[str, str]:
        """Log ``estimator`` (a fitted scikit-learn model) in a new run of ``experiment_id`` with ``params``,
        ``metrics``, ``run_tags`` and, at ``reference_path``, the ``reference`` frame as parquet; register it as
        a new version of ``model``. Returns (version, run id). No alias is moved.

        ``signature_example`` is (model input rows, model output for them), from which MLflow infers the
        signature; ``trusted_types`` are the skops types the model's pickle needs beyond skops' defaults.
        """
        return self._call(
            f"model {model}: logging a new version (run {run_name})",
            self._log_version,
            model,
            estimator,
            experiment_id=experiment_id,
            run_name=run_name,
            params=params,
            metrics=metrics,
            signature_example=signature_example,
            trusted_types=trusted_types,
            reference=reference,
            reference_path=reference_path,
            run_tags=run_tags,
        )

    def _log_version(
        self,
        model: str,
        estimator,
        *,
        experiment_id: str,
        run_name: str,
        params: dict,
        metrics: dict[str, float],
        signature_example: tuple[pd.DataFrame, object],
        trusted_types: list[str] | None,
        reference: pd.DataFrame | None,
        reference_path: str | None,
        run_tags: dict[str, str] | None,
    ) -> tuple[str, str]:
        import mlflow
        import mlflow.sklearn
        from mlflow.models import infer_signature

        with _fluent_api_at(self.tracking_uri), mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            mlflow.log_params(params)
            if metrics:
                mlflow.log_metrics(metrics)
            info = mlflow.sklearn.log_model(
                estimator,
                name="model",
                registered_model_name=model,
                pip_requirements=[f"scikit-learn=={importlib.metadata.version('scikit-learn')}"],
                signature=infer_signature(*signature_example),
                skops_trusted_types=trusted_types,
            )
            if reference is not None:
                with tempfile.TemporaryDirectory() as tmp:
                    local = Path(tmp) / Path(reference_path).name
                    reference.to_parquet(local, index=False)
                    parent = str(Path(reference_path).parent)
                    mlflow.log_artifact(str(local), artifact_path=None if parent == "." else parent)
            for key, value in (run_tags or {}).items():
                mlflow.set_tag(key, value)
        return str(info.registered_model_version), run.info.run_id

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._call(
            f"model {model}: setting alias {alias!r} to version {version}",
            self.client.set_registered_model_alias,
            model,
            alias,
            str(version),
        )

    def delete_alias(self, model: str, alias: str) -> None:
        self._call(f"model {model}: removing alias {alias!r}", self.client.delete_registered_model_alias, model, alias)

    def set_tags(self, model: str, version: str, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self._call(
                f"model {model} version {version}: tagging {sorted(tags)}",
                self.client.set_model_version_tag,
                model,
                str(version),
                k,
                str(v),
            )

    def move_aliases(self, model: str, moves: list[tuple[str, str | None]]) -> dict[str, str]:
        """Apply ``moves`` ((alias, version), or (alias, None) to remove it) in order, all or nothing.

        MLflow moves one alias per call. When a call fails midway, the aliases already moved are put back as
        they were before the first move and ``RegistryError`` says what failed, and whether the restore worked
        (if it did not, the message lists the aliases as they were, for a person to restore). Returns the
        aliases before the move.
        """
        before = self.aliases(model)
        done: list[str] = []
        try:
            for alias, version in moves:
                if version is None:
                    if alias in before or alias in done:
                        self.delete_alias(model, alias)
                else:
                    self.set_alias(model, alias, version)
                done.append(alias)
        except RegistryError as exc:
            failed, cause = alias, exc
        else:
            return before
        plan = ", ".join(f"{a}->{v or 'removed'}" for a, v in moves)
        restore_problem = self._restore(model, before, done + [failed])
        state = (
            "the aliases were restored"
            if restore_problem is None
            else f"restoring them failed too ({restore_problem}); set them back by hand to {before}"
        )
        raise RegistryError(f"model {model}: moving aliases ({plan}) failed at {failed!r}: {cause}; {state}")

    def _restore(self, model: str, before: dict[str, str], touched: list[str]) -> str | None:
        try:
            now = self.aliases(model)
            for alias in dict.fromkeys(touched):
                if alias in before and now.get(alias) != before[alias]:
                    self.set_alias(model, alias, before[alias])
                elif alias not in before and alias in now:
                    self.delete_alias(model, alias)
        except RegistryError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def _where(self) -> str:
        return masked(self.tracking_uri)


@contextmanager
def _fluent_api_at(uri: str) -> Iterator[None]:
    """MLflow's fluent API uses process-wide URIs (and sets MLFLOW_TRACKING_URI); restore them afterwards."""
    import mlflow

    # Restore what was *set*, not what the getters resolve: get_registry_uri() falls back to the tracking URI
    # of the moment, and setting that back would pin later registrations (e.g. a relative sqlite:///mlflow.db).
    # (mlflow.set_tracking_uri / set_registry_uri export the environment variables, so those say what was set)
    saved_env, saved_registry_env = os.environ.get("MLFLOW_TRACKING_URI"), os.environ.get("MLFLOW_REGISTRY_URI")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved_env)  # None unsets it
        mlflow.set_registry_uri(saved_registry_env)
        for var, saved in (("MLFLOW_TRACKING_URI", saved_env), ("MLFLOW_REGISTRY_URI", saved_registry_env)):
            if saved is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = saved
