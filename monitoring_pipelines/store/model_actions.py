"""Repository of ``model_actions``: the audit trail of retrain / promote / rollback, one row per action.

Functions take an open ``Connection``; ``MetricStore`` opens the transactions around them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import Connection, delete, insert, select, update

from monitoring_pipelines.store.frames import frame
from monitoring_pipelines.store.tables import model_actions

ACTION_COLUMNS = tuple(c.name for c in model_actions.columns)


def insert_action(conn: Connection, **values: Any) -> None:
    """Insert one action (``values``: its columns, ``id`` and ``created_at`` included)."""
    conn.execute(insert(model_actions).values(**values))


def update_action(
    conn: Connection,
    action_id: str,
    *,
    status: str,
    now: dt.datetime,
    reason: str | None = None,
    run_id: str | None = None,
    to_version: str | None = None,
) -> int:
    """Set the status of an action; ``reason``, ``run_id`` and ``to_version`` only when given. Returns the number
    of rows changed (0: no such action)."""
    values: dict[str, Any] = {"status": status, "updated_at": now}
    for name, value in (("reason", reason), ("run_id", run_id), ("to_version", to_version)):
        if value is not None:
            values[name] = value
    t = model_actions
    return conn.execute(update(t).where(t.c.id == action_id).values(**values)).rowcount


def select_actions(conn: Connection, model: str) -> pd.DataFrame:
    """The audit trail of ``model``, oldest first."""
    t = model_actions
    query = select(*t.columns).where(t.c.model == model).order_by(t.c.created_at, t.c.id)
    return frame(conn.execute(query), list(t.columns))


def delete_model(conn: Connection, model: str) -> None:
    conn.execute(delete(model_actions).where(model_actions.c.model == model))
