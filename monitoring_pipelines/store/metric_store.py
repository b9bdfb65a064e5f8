"""The metric store: judged metric values, the model-action audit trail, incidents and the notification outbox,
in SQLite or PostgreSQL.

``MetricStore(url)`` owns the engine, the transactions and the migrations; the tables are the SQLAlchemy
``Table`` objects of ``store/tables.py`` and the statements live in one repository per table group
(``metric_values``, ``model_actions``, ``incidents``: incidents, their timeline and the outbox). ``migrate()``
brings the schema up to date with alembic (``store/schema.py``).

URLs: ``sqlite:///abs/path.db`` or ``postgresql+psycopg2://user:pw@host:5432/db``. A plain ``postgresql://``
(or ``postgres://``) URL is rewritten to ``postgresql+psycopg2://``, because SQLAlchemy 2.1 maps the bare
scheme to psycopg v3, which this project does not install. The password never appears in ``repr`` or in
the messages of the ``StoreError`` this module raises.

Portability: dates and timestamps are stored as ISO-8601 (UTC, fixed width) on both backends and read back
into ``datetime.date`` / tz-aware UTC timestamps (``tables.UtcTimestamp``), so both return identical frames.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, event, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from monitoring_pipelines import settings
from monitoring_pipelines.errors import StoreError
from monitoring_pipelines.store import metric_values, model_actions, schema, views
from monitoring_pipelines.store.metric_values import METRIC_COLUMNS, MetricRow, plain, version_text
from monitoring_pipelines.store.model_actions import ACTION_COLUMNS
from monitoring_pipelines.store.tables import ACTION_STATUSES, ACTIONS, DIRECTIONS, STATUSES

__all__ = [
    "ACTIONS",
    "ACTION_COLUMNS",
    "ACTION_STATUSES",
    "DIRECTIONS",
    "METRIC_COLUMNS",
    "STATUSES",
    "MetricRow",
    "MetricStore",
    "lock_key",
]

# Seconds PostgreSQL connection attempts may take (docs/reliability.md, "Timeouts and retries").
CONNECT_TIMEOUT_SECONDS = 10

# Fixed key of the PostgreSQL advisory lock that serialises migrations across processes.
MIGRATION_LOCK_KEY = 0x6D705F6D6967  # "mp_mig"


def lock_key(*parts: str) -> int:
    """A signed 64-bit PostgreSQL advisory-lock key derived from ``parts`` (e.g. ``("incidents", model)``)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class MetricStore:
    """Read and write the metric store. The engine is created on first use; call ``dispose()`` when done."""

    def __init__(self, url: str | None = None):
        raw = url if url is not None else settings.store_url()
        try:
            parsed = make_url(raw)
        except (ArgumentError, ValueError):  # the parser's message would echo the URL, password included
            raise StoreError(
                "metric store URL cannot be parsed (expected sqlite:///... or postgresql+psycopg2://...)"
            ) from None
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg2")
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise StoreError(f"metric store {_masked(parsed)}: only SQLite and PostgreSQL are supported")
        self.url: URL = parsed
        self._password = parsed.password or ""
        self._engine: Engine | None = None

    def __repr__(self) -> str:
        return f"MetricStore({_masked(self.url)!r})"

    # -- engine and transactions ------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    @property
    def _is_postgres(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    def _create_engine(self) -> Engine:
        if self._is_postgres:
            # libpq waits for a connection without limit by default (a dropped SYN: the OS's ~2 minutes); a
            # timeout given in the URL (?connect_timeout=) or PGCONNECT_TIMEOUT wins over this bound.
            bounded = "connect_timeout" not in self.url.query and "PGCONNECT_TIMEOUT" not in os.environ
            connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS} if bounded else {}
            return create_engine(self.url, pool_pre_ping=True, connect_args=connect_args)
        # A generous busy timeout: Dagster steps in several processes may write the same SQLite file.
        engine = create_engine(self.url, connect_args={"timeout": 30})

        # pysqlite's legacy mode issues no BEGIN before DDL or SELECT, so migrations would not be atomic;
        # SQLAlchemy's documented recipe: switch that off and emit BEGIN ourselves.
        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection):
            # IMMEDIATE takes the write lock up front: a read-then-write transaction cannot deadlock.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("mp_write") else "BEGIN")

        return engine

    @contextmanager
    def write(self, what: str, *, lock_key: int | None = None) -> Iterator[Connection]:
        """A write transaction, serialised per ``lock_key`` on PostgreSQL (a transaction-scoped advisory lock;
        SQLite serialises all writers with BEGIN IMMEDIATE). Database errors become a ``StoreError`` naming
        ``what``; on any error the transaction rolls back."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(mp_write=True)
                with conn.begin():
                    if lock_key is not None and self._is_postgres:
                        conn.execute(select(func.pg_advisory_xact_lock(lock_key)))
                    yield conn
        except SQLAlchemyError as exc:
            raise self._error(what, exc) from exc

    @contextmanager
    def read(self, what: str) -> Iterator[Connection]:
        """A connection for reading; database errors become a ``StoreError`` naming ``what``."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self._error(what, exc) from exc

    def latest_metric_values(self, what: str = "reading the latest metric values") -> list[tuple]:
        """The view ``latest_metric_values``: (model, model_version, family, metric, segment, partition_date,
        status, latest_value) of every metric, ordered."""
        with self.read(what) as conn:
            return views.latest_values(conn)

    def latest_family_statuses(self, what: str = "reading the latest family statuses") -> list[tuple]:
        """The view ``latest_family_status``: (model, family, status) on each model's latest day."""
        with self.read(what) as conn:
            return views.latest_family_statuses(conn)

    def query(self, what: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        """Run a read-only ``sql`` on the dashboard views (dashboards, tests); errors become a StoreError naming ``what``."""
        with self.read(what) as conn:
            return [tuple(r) for r in conn.execute(text(sql), params or {})]

    def _error(self, what: str, exc: BaseException) -> StoreError:
        # The DBAPI message (exc.orig) carries the useful part (e.g. the duplicate key) without SQLAlchemy's
        # SQL dump; the raw password is scrubbed in case a driver ever echoes its connection string.
        detail = str(getattr(exc, "orig", None) or exc).strip()
        if self._password:
            detail = detail.replace(self._password, "***")
        return StoreError(f"metric store {_masked(self.url)}: {what}: {detail}")

    def dispose(self) -> None:
        """Close every pooled connection; the store can still be used afterwards (a new pool is made)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- migrations -------------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Upgrade the schema to the newest alembic revision; return the revisions applied now (``[]``: none).

        Every revision of one call runs in one transaction, so a failing revision leaves the database as it
        was. Concurrent callers are serialised (PostgreSQL: a transaction-scoped advisory lock; SQLite: BEGIN
        IMMEDIATE) and read the schema's revision after taking the lock, so racing processes apply each
        revision exactly once. A store made by the old sql/ migrator is recognised and stamped (``schema``).
        """
        schema.check_sources()
        with self.write("migrating the schema", lock_key=MIGRATION_LOCK_KEY) as conn:
            try:
                return schema.upgrade(conn)
            except StoreError as exc:
                raise StoreError(f"metric store {_masked(self.url)}: {exc}") from exc

    # -- metric values ----------------------------------------------------------------------------------

    def replace_rows(self, model: str, partition_date: date, families: Sequence[str], rows: Sequence[MetricRow]) -> int:
        """Replace the rows of ``model`` on ``partition_date`` for ``families`` by ``rows``; return how many were written.

        Every row is validated before the database is touched (``ValueError`` naming the row). The delete and
        the inserts share one transaction: on any failure the previous rows stay as they were. Families not
        listed, other days and other models are left alone.
        """
        family_names, params = metric_values.validated(model, partition_date, families, rows)
        if not family_names:
            return 0
        day = partition_date.isoformat()
        # One lock per (model, day): two runs of the same partition must not interleave delete and insert.
        with self.write(f"replacing rows of {model} on {day}", lock_key=lock_key("metric_values", model, day)) as conn:
            metric_values.replace(conn, model, partition_date, family_names, params)
        return len(params)

    def rows(
        self,
        model: str,
        *,
        family: str | None = None,
        metric: str | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> pd.DataFrame:
        """Stored rows of ``model`` (``start``/``end`` inclusive), ordered by day, family, metric, segment.

        Columns are ``METRIC_COLUMNS``: ``partition_date`` holds ``datetime.date``, ``computed_at`` is
        ``datetime64[ns, UTC]``, the figures are float64 (NaN for NULL), everything else is object.
        """
        with self.read(f"reading rows of {model}") as conn:
            return metric_values.select_rows(conn, model, family=family, metric=metric, start=start, end=end)

    def blocked_days(self, model: str, *, start: date | None = None, end: date | None = None) -> set[date]:
        """Days of ``model`` (``start``/``end`` inclusive, open when None) whose stored blocking quality checks
        failed: their data is left out of retraining and of the challenger's evidence."""
        with self.read(f"reading the blocked days of {model}") as conn:
            return metric_values.blocked_days(conn, model, start=start, end=end)

    # -- model actions ----------------------------------------------------------------------------------

    def record_action(
        self,
        *,
        model: str,
        action: str,
        status: str,
        trigger: str | None = None,
        partition_date: date | None = None,
        from_version: str | None = None,
        to_version: str | None = None,
        reason: str | None = None,
        run_id: str | None = None,
        actor: str | None = None,
    ) -> str:
        """Append one retrain / promote / rollback to the audit trail; return its id."""
        action, status = plain(action), plain(status)
        if action not in ACTIONS:
            raise ValueError(f"model action for {model}: action {action!r} is not one of {ACTIONS}")
        if status not in ACTION_STATUSES:
            raise ValueError(f"model action for {model}: status {status!r} is not one of {ACTION_STATUSES}")
        action_id = uuid.uuid4().hex
        with self.write(f"recording {action} of {model}") as conn:
            model_actions.insert_action(
                conn,
                id=action_id,
                model=model,
                action=action,
                status=status,
                trigger=trigger,
                partition_date=partition_date,
                from_version=version_text(from_version),
                to_version=version_text(to_version),
                reason=reason,
                run_id=run_id,
                actor=actor,
                created_at=datetime.now(UTC),
            )
        return action_id

    def update_action(
        self,
        action_id: str,
        *,
        status: str,
        reason: str | None = None,
        run_id: str | None = None,
        to_version: str | None = None,
    ) -> None:
        """Set the status of an action; ``reason``, ``run_id`` and ``to_version`` are only changed when given."""
        status = plain(status)
        if status not in ACTION_STATUSES:
            raise ValueError(f"model action {action_id}: status {status!r} is not one of {ACTION_STATUSES}")
        with self.write(f"updating model action {action_id}") as conn:
            changed = model_actions.update_action(
                conn,
                action_id,
                status=status,
                now=datetime.now(UTC),
                reason=reason,
                run_id=run_id,
                to_version=version_text(to_version),
            )
            if changed != 1:
                raise StoreError(f"metric store {_masked(self.url)}: no model action with id {action_id!r}")

    def delete_model(self, model: str) -> None:
        """Remove every metric row and action of ``model`` in one transaction (used to reset the demo)."""
        with self.write(f"deleting model {model}") as conn:
            metric_values.delete_model(conn, model)
            model_actions.delete_model(conn, model)

    def actions(self, model: str) -> pd.DataFrame:
        """The audit trail of ``model``, oldest first (columns ``ACTION_COLUMNS``, same dtypes rules as ``rows``)."""
        with self.read(f"reading actions of {model}") as conn:
            return model_actions.select_actions(conn, model)


def _masked(url: URL) -> str:
    return url.render_as_string(hide_password=True)
