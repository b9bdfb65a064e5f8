"""The metric store: judged metric values and the model-action audit trail, in SQLite or PostgreSQL.

``MetricStore(url)`` talks SQLAlchemy 2 Core with ``text()`` SQL and bound parameters; the schema lives in
``sql/NNN_*.sql`` at the repository root (the single source of truth) and is applied by ``migrate()``.

URLs: ``sqlite:///abs/path.db`` or ``postgresql+psycopg2://user:pw@host:5432/db``. A plain ``postgresql://``
(or ``postgres://``) URL is rewritten to ``postgresql+psycopg2://``, because SQLAlchemy 2.1 maps the bare
scheme to psycopg v3, which this project does not install. The password never appears in ``repr`` or in
the messages of the ``StoreError`` this module raises.

Portability: dates and timestamps are bound as ISO-8601 strings (UTC, fixed width) on both backends, and
read back into ``datetime.date`` / tz-aware UTC pandas timestamps, so both backends return identical frames.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from monitoring_pipelines import settings
from monitoring_pipelines.errors import StoreError

# The sql/ folder sits next to the package in the source tree and is not packaged in wheels.
SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_MIGRATION_FILE = re.compile(r"^(\d{3})_\w+\.sql$")

STATUSES = ("ok", "warning", "critical", "unknown")
DIRECTIONS = ("max", "min")
ACTIONS = ("retrain", "promote", "rollback")
ACTION_STATUSES = ("requested", "pending_approval", "succeeded", "refused", "failed")

METRIC_COLUMNS = (
    "model",
    "model_version",
    "alias",
    "partition_date",
    "family",
    "metric",
    "segment",
    "value",
    "warning_threshold",
    "critical_threshold",
    "direction",
    "status",
    "run_id",
    "computed_at",
)
ACTION_COLUMNS = (
    "id",
    "model",
    "action",
    "status",
    "trigger",
    "partition_date",
    "from_version",
    "to_version",
    "reason",
    "run_id",
    "actor",
    "created_at",
    "updated_at",
)
_FLOAT_COLUMNS = ("value", "warning_threshold", "critical_threshold")
_DATE_COLUMNS = ("partition_date",)
_TIMESTAMP_COLUMNS = ("computed_at", "created_at", "updated_at")

# Fixed key of the PostgreSQL advisory lock that serialises migrations across processes.
_MIGRATION_LOCK_KEY = 0x6D705F6D6967  # "mp_mig"


@dataclass(frozen=True)
class MetricRow:
    """One judged metric value of one model and day, as stored in ``metric_values``."""

    model: str
    model_version: str | None
    alias: str | None
    partition_date: date
    family: str
    metric: str
    segment: str
    value: float | None
    warning_threshold: float | None
    critical_threshold: float | None
    direction: str | None
    status: str
    run_id: str
    computed_at: datetime  # tz-aware; stored in UTC


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
            return create_engine(self.url, pool_pre_ping=True)
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
    def _write(self, what: str, lock_key: int | None = None) -> Iterator[Connection]:
        """A write transaction, serialised per ``lock_key`` on PostgreSQL (SQLite serialises all writers)."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(mp_write=True)
                with conn.begin():
                    if lock_key is not None and self._is_postgres:
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
                    yield conn
        except SQLAlchemyError as exc:
            raise self._error(what, exc) from exc

    def _read(self, what: str, sql: str, params: dict[str, Any]) -> list[tuple]:
        try:
            with self.engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(sql), params)]
        except SQLAlchemyError as exc:
            raise self._error(what, exc) from exc

    def query(self, what: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        """Run a read-only ``sql`` (e.g. on the dashboard views); errors become a StoreError naming ``what``."""
        return self._read(what, sql, params or {})

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
        """Apply every ``sql/NNN_*.sql`` not yet recorded in ``schema_migrations``; return the versions applied now.

        Each file runs in its own transaction together with its ``schema_migrations`` row, so a failing file
        leaves nothing behind. Concurrent callers are serialised (PostgreSQL: a transaction-scoped advisory
        lock; SQLite: BEGIN IMMEDIATE) and re-read the applied versions after taking the lock, so racing
        processes apply each file exactly once.
        """
        applied_now: list[str] = []
        for version, path in _migration_files():
            statements = _split_statements(path.read_text(encoding="utf-8"))
            with self._write(f"applying {path.name}", lock_key=_MIGRATION_LOCK_KEY) as conn:
                if version in _applied_versions(conn):
                    continue
                for statement in statements:
                    # exec_driver_sql: DDL is passed verbatim, so a ':' in it is not taken for a bind parameter.
                    conn.exec_driver_sql(statement)
                conn.execute(
                    text("INSERT INTO schema_migrations (version, applied_at) VALUES (:v, :at)"),
                    {"v": version, "at": _iso_ts(datetime.now(UTC))},
                )
            applied_now.append(version)
        return applied_now

    # -- metric values ----------------------------------------------------------------------------------

    def replace_rows(self, model: str, partition_date: date, families: Sequence[str], rows: Sequence[MetricRow]) -> int:
        """Replace the rows of ``model`` on ``partition_date`` for ``families`` by ``rows``; return how many were written.

        Every row is validated before the database is touched (``ValueError`` naming the row). The delete and
        the inserts share one transaction: on any failure the previous rows stay as they were. Families not
        listed, other days and other models are left alone.
        """
        if isinstance(partition_date, datetime) or not isinstance(partition_date, date):
            raise ValueError(f"replace_rows({model!r}): partition_date must be a datetime.date, got {partition_date!r}")
        family_names = [_plain(f) for f in families]
        params = [_row_params(i, row, model, partition_date, family_names) for i, row in enumerate(rows)]
        if not family_names:
            return 0
        day = partition_date.isoformat()
        marks = ", ".join(f":f{i}" for i in range(len(family_names)))
        # One lock per (model, day): two runs of the same partition must not interleave delete and insert.
        with self._write(
            f"replacing rows of {model} on {day}", lock_key=_lock_key("metric_values", model, day)
        ) as conn:
            conn.execute(
                text(
                    f"DELETE FROM metric_values WHERE model = :model AND partition_date = :day AND family IN ({marks})"
                ),
                {"model": model, "day": day, **{f"f{i}": f for i, f in enumerate(family_names)}},
            )
            if params:
                conn.execute(text(_INSERT_METRIC), params)
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
        clauses, params = ["model = :model"], {"model": model}
        for column, op, value in (
            ("family", "=", family),
            ("metric", "=", metric),
            ("partition_date", ">=", start),
            ("partition_date", "<=", end),
        ):
            if value is not None:
                key = f"p{len(params)}"
                clauses.append(f"{column} {op} :{key}")
                params[key] = value.isoformat() if isinstance(value, date) else _plain(value)
        sql = (
            f"SELECT {', '.join(METRIC_COLUMNS)} FROM metric_values WHERE {' AND '.join(clauses)} "
            "ORDER BY partition_date, family, metric, segment"
        )
        return _frame(self._read(f"reading rows of {model}", sql, params), METRIC_COLUMNS)

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
        action, status = _plain(action), _plain(status)
        if action not in ACTIONS:
            raise ValueError(f"model action for {model}: action {action!r} is not one of {ACTIONS}")
        if status not in ACTION_STATUSES:
            raise ValueError(f"model action for {model}: status {status!r} is not one of {ACTION_STATUSES}")
        action_id = uuid.uuid4().hex
        with self._write(f"recording {action} of {model}") as conn:
            conn.execute(
                text(
                    "INSERT INTO model_actions (id, model, action, status, trigger, partition_date, from_version, "
                    "to_version, reason, run_id, actor, created_at) VALUES (:id, :model, :action, :status, :trigger, "
                    ":partition_date, :from_version, :to_version, :reason, :run_id, :actor, :created_at)"
                ),
                {
                    "id": action_id,
                    "model": model,
                    "action": action,
                    "status": status,
                    "trigger": trigger,
                    "partition_date": partition_date.isoformat() if partition_date else None,
                    "from_version": _version(from_version),
                    "to_version": _version(to_version),
                    "reason": reason,
                    "run_id": run_id,
                    "actor": actor,
                    "created_at": _iso_ts(datetime.now(UTC)),
                },
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
        status = _plain(status)
        if status not in ACTION_STATUSES:
            raise ValueError(f"model action {action_id}: status {status!r} is not one of {ACTION_STATUSES}")
        with self._write(f"updating model action {action_id}") as conn:
            result = conn.execute(
                text(
                    "UPDATE model_actions SET status = :status, reason = COALESCE(:reason, reason), "
                    "run_id = COALESCE(:run_id, run_id), to_version = COALESCE(:to_version, to_version), "
                    "updated_at = :now WHERE id = :id"
                ),
                {
                    "status": status,
                    "reason": reason,
                    "run_id": run_id,
                    "to_version": _version(to_version),
                    "now": _iso_ts(datetime.now(UTC)),
                    "id": action_id,
                },
            )
            if result.rowcount != 1:
                raise StoreError(f"metric store {_masked(self.url)}: no model action with id {action_id!r}")

    def delete_model(self, model: str) -> None:
        """Remove every metric row and action of ``model`` in one transaction (used to reset the demo)."""
        with self._write(f"deleting model {model}") as conn:
            conn.execute(text("DELETE FROM metric_values WHERE model = :m"), {"m": model})
            conn.execute(text("DELETE FROM model_actions WHERE model = :m"), {"m": model})

    def actions(self, model: str) -> pd.DataFrame:
        """The audit trail of ``model``, oldest first (columns ``ACTION_COLUMNS``, same dtypes rules as ``rows``)."""
        sql = f"SELECT {', '.join(ACTION_COLUMNS)} FROM model_actions WHERE model = :model ORDER BY created_at, id"
        return _frame(self._read(f"reading actions of {model}", sql, {"model": model}), ACTION_COLUMNS)


_INSERT_METRIC = (
    f"INSERT INTO metric_values ({', '.join(METRIC_COLUMNS)}) VALUES ({', '.join(':' + c for c in METRIC_COLUMNS)})"
)


# -- helpers ------------------------------------------------------------------------------------------------


def _masked(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _plain(value: Any) -> Any:
    """``Family.DRIFT`` -> ``'drift'``: drivers and f-strings must see the value, not the enum."""
    return value.value if isinstance(value, Enum) else value


def _version(value: Any) -> str | None:
    # MLflow versions come as int from a direct store and as str over REST; store text either way.
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _iso_ts(moment: datetime) -> str:
    # Fixed-width UTC ISO text: sorts correctly as SQLite text and parses as timestamptz on PostgreSQL.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _lock_key(*parts: str) -> int:
    """A signed 64-bit advisory-lock key derived from ``parts``."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _row_params(index: int, row: MetricRow, model: str, day: date, families: list[str]) -> dict[str, Any]:
    """Validate one row against the call and turn it into bind parameters."""
    family, status, direction = _plain(row.family), _plain(row.status), _plain(row.direction)
    where = f"row {index} ({family}.{row.metric} segment={row.segment!r} of {row.model} on {row.partition_date})"
    if row.model != model:
        raise ValueError(f"replace_rows: {where} belongs to model {row.model!r}, not {model!r}")
    if isinstance(row.partition_date, datetime) or row.partition_date != day:
        raise ValueError(f"replace_rows: {where} is not for day {day.isoformat()}")
    if family not in families:
        raise ValueError(f"replace_rows: {where} has family {family!r}, not one of the families replaced {families}")
    if status not in STATUSES:
        raise ValueError(f"replace_rows: {where} has status {status!r}, not one of {STATUSES}")
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"replace_rows: {where} has direction {direction!r}, not one of {DIRECTIONS}")
    if row.segment is None:
        raise ValueError(f"replace_rows: {where} has segment None; use '' when there is no segment")
    if not isinstance(row.computed_at, datetime) or row.computed_at.utcoffset() is None:
        raise ValueError(f"replace_rows: {where} needs a timezone-aware computed_at, got {row.computed_at!r}")
    return {
        "model": model,
        "model_version": _version(row.model_version),
        "alias": row.alias,
        "partition_date": day.isoformat(),
        "family": family,
        "metric": row.metric,
        "segment": row.segment,
        "value": _number(row.value),
        "warning_threshold": _number(row.warning_threshold),
        "critical_threshold": _number(row.critical_threshold),
        "direction": direction,
        "status": status,
        "run_id": row.run_id,
        "computed_at": _iso_ts(row.computed_at),
    }


def _frame(records: list[tuple], columns: Sequence[str]) -> pd.DataFrame:
    """Build a frame with the same dtypes whatever the backend returned (SQLite gives ISO text for dates)."""
    df = pd.DataFrame.from_records(records, columns=list(columns)).astype(object)
    for column in df.columns:
        if column in _FLOAT_COLUMNS:
            df[column] = pd.to_numeric(df[column]).astype("float64")
        elif column in _DATE_COLUMNS:
            df[column] = df[column].map(_as_date).astype(object)
        elif column in _TIMESTAMP_COLUMNS:
            df[column] = pd.to_datetime(df[column], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
    return df


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    return value if isinstance(value, date) else date.fromisoformat(value)


def _migration_files() -> list[tuple[str, Path]]:
    if not SQL_DIR.is_dir():
        raise StoreError(
            f"metric store schema folder {SQL_DIR} is missing: the project must be installed from source "
            "(pip install -e .), because sql/ is not packaged"
        )
    files: dict[str, Path] = {}
    for path in sorted(SQL_DIR.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise StoreError(f"{path}: migration files must be named NNN_name.sql")
        if match.group(1) in files:
            raise StoreError(f"{path}: version {match.group(1)} is also used by {files[match.group(1)].name}")
        files[match.group(1)] = path
    return sorted(files.items())


def _applied_versions(conn: Connection) -> set[str]:
    # Before 001 runs there is no schema_migrations table; querying it would abort a PostgreSQL transaction.
    if not inspect(conn).has_table("schema_migrations"):
        return set()
    return {v for (v,) in conn.execute(text("SELECT version FROM schema_migrations"))}


def _split_statements(sql: str) -> list[str]:
    """Split a SQL script on the semicolons that end statements, skipping comments and quoted text.

    pysqlite executes one statement per call, and ``executescript`` would commit outside our transaction.
    """
    statements, current, i, n = [], [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):  # comment to end of line: dropped
            i = sql.find("\n", i)
            i = n if i < 0 else i
            continue
        if sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if ch in "'\"":  # quoted literal or identifier, '' / "" escapes included
            end = i + 1
            while end < n and not (sql[end] == ch and not sql.startswith(ch * 2, end)):
                end += 2 if sql.startswith(ch * 2, end) else 1
            current.append(sql[i : end + 1])
            i = end + 1
            continue
        if ch == ";":
            statements.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current).strip())
    return [s for s in statements if s]
