"""Where things live. Read at launch (inside functions), never at import time.

One folder, ``$MONITORING_HOME`` (default ``./.monitoring`` under the current directory), holds the
embedded defaults: the SQLite metric store, the SQLite MLflow registry and its artifacts, the HTML reports
and the demo's data. Each can be pointed elsewhere on its own:

| variable | default |
|---|---|
| MONITORING_HOME | ``./.monitoring`` |
| MONITORING_STORE_URL | ``sqlite:///$MONITORING_HOME/metrics.db`` |
| MLFLOW_TRACKING_URI | ``sqlite:///$MONITORING_HOME/mlflow.db`` (artifacts in ``$MONITORING_HOME/mlartifacts``) |
| MONITORING_REPORTS_URL | ``$MONITORING_HOME/reports`` (a local folder or an fsspec URL) |
| MONITORING_PLANS_DIR | the bundled demo plan |
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from monitoring_pipelines.errors import DataSourceError

HOME_ENV = "MONITORING_HOME"
STORE_URL_ENV = "MONITORING_STORE_URL"
REPORTS_URL_ENV = "MONITORING_REPORTS_URL"
MLFLOW_URI_ENV = "MLFLOW_TRACKING_URI"


def monitoring_home() -> Path:
    home = Path(os.environ.get(HOME_ENV) or ".monitoring").resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def store_url() -> str:
    return os.environ.get(STORE_URL_ENV) or f"sqlite:///{monitoring_home() / 'metrics.db'}"


def mlflow_tracking_uri() -> str:
    return os.environ.get(MLFLOW_URI_ENV) or f"sqlite:///{monitoring_home() / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    return (monitoring_home() / "mlartifacts").as_uri()


def reports_url() -> str:
    return os.environ.get(REPORTS_URL_ENV) or str(monitoring_home() / "reports")


def masked(url: str) -> str:
    """A URL fit for logs and messages: the password replaced by ***; a string that is no URL is kept."""
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url.split("://", 1)[0] + "://***"


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(value: str, *, field: str) -> str:
    """Replace ``${VAR}`` with the environment's value; an unset variable is an error naming the plan field.

    ``${MONITORING_HOME}`` falls back to the resolved default folder, so bundled plans work out of the box.
    """

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name == HOME_ENV:
            return str(monitoring_home())
        if name not in os.environ:
            raise DataSourceError(f"{field}: environment variable {name} is not set (used in {value!r})")
        return os.environ[name]

    return _VAR.sub(sub, value)
