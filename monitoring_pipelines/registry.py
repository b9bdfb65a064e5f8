"""The MLflow model registry, by alias (the only module that talks to MLflow's client).

Aliases ``champion``, ``challenger`` and ``previous_champion`` name versions; registry stages are deprecated
and never used. Every lookup returns the version explicitly, so results record what they were computed for.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitoring_pipelines.errors import RegistryError

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"


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


class Registry:
    """Thin adapter over ``mlflow.MlflowClient`` for one tracking/registry URI (an absolute one)."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def aliases(self, model: str) -> dict[str, str]:
        """alias -> version (as str: the sqlite store gives ints, the REST server strings)."""
        from mlflow.exceptions import MlflowException

        try:
            rm = self.client.get_registered_model(model)
        except MlflowException as exc:
            raise RegistryError(f"model {model}: not found in the MLflow registry at {self._where()}: {exc.message}") from exc
        return {a: str(v) for a, v in rm.aliases.items()}

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
        mv = self.client.get_model_version(model, str(version))
        return ModelVersionRef(model, str(mv.version), alias, mv.run_id, dict(mv.tags or {}))

    def load_model(self, ref: ModelVersionRef):
        """Load the version's scikit-learn model (from its artifact location; no global MLflow state)."""
        import mlflow.sklearn

        return mlflow.sklearn.load_model(self.client.get_model_version_download_uri(ref.model, ref.version))

    def read_reference(self, ref: ModelVersionRef, artifact_path: str):
        """The reference DataFrame logged with the version's run at ``artifact_path`` (parquet or csv)."""
        import tempfile

        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        from monitoring_pipelines.sources import read_table

        if not ref.run_id:
            raise RegistryError(f"model {ref.model} version {ref.version}: has no run, so no reference artifact")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path=artifact_path,
                                                            dst_path=tmp, tracking_uri=self.tracking_uri)
            except (MlflowException, OSError) as exc:
                raise RegistryError(f"model {ref.model} version {ref.version}: reference artifact {artifact_path!r} "
                                    f"of run {ref.run_id} cannot be read: {exc}") from exc
            return read_table(local, "csv" if artifact_path.endswith(".csv") else "parquet")

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(model, alias, str(version))

    def delete_alias(self, model: str, alias: str) -> None:
        self.client.delete_registered_model_alias(model, alias)

    def _where(self) -> str:
        from monitoring_pipelines.settings import masked

        return masked(self.tracking_uri)
