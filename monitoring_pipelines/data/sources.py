"""Read a model's prediction log, its late-arriving labels and reference tables, as the plan describes them.

Pure functions over ``plan.data``; no Dagster. Every deliberate failure is a ``DataSourceError`` naming the
model, the day and the file or table involved, with the underlying exception chained as its cause.

File sources (``source: parquet|csv``) take a local path or an fsspec URL, with ``${VAR}`` expanded, in one
of three layouts:

* a folder holding one ``YYYY-MM-DD.<parquet|csv>`` file per day;
* a template containing ``{date}`` (the ISO day), e.g. ``s3://bucket/preds/{date}/part.parquet``; the
  formatted template may itself be a glob, then every match is that day's data;
* a glob (``*``, ``?`` or ``[``): every matching file is read and rows are kept by timestamp.

SQL sources (``source: sql``) take a SQLAlchemy URL from the environment variable named by ``url_env``
(PostgreSQL needs ``postgresql+psycopg2://``) and filter in the database with bound parameters.

Timestamps are returned as tz-aware UTC. Naive timestamps are taken to be UTC already: in files, and in
SQL columns without a time zone (PostgreSQL sessions are set to UTC for the query, so the database
compares them the same way). On SQLite, timestamps must be ISO-8601 text in UTC, as SQLAlchemy writes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import fsspec
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from fsspec.implementations.local import LocalFileSystem

from monitoring_pipelines import settings
from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.plan.schema import LabelSource, MonitoringPlan, PredictionSource

FORMATS = ("parquet", "csv")

_GLOB = re.compile(r"[*?\[]")
_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
# pandas and pyarrow report bad input as ValueError subclasses or ArrowException; I/O trouble is OSError.
READ_ERRORS = (OSError, ValueError, pa.ArrowException)
_SQL_TS = sa.DateTime(timezone=True)
# fsspec implementations name the modification time differently (local/memory, S3, Azure, GCS).
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created")


class MissingDayError(DataSourceError):
    """The prediction log has no file for the day (the serving system has not written it, or the path is wrong)."""


# --------------------------------------------------------------------------------------------------------
# public API


def read_predictions(plan: MonitoringPlan, day: dt.date) -> pd.DataFrame:
    """Rows of the prediction log whose timestamp lies in [day 00:00 UTC, day+1 00:00 UTC).

    All columns are returned (extra ones too), the timestamp column as tz-aware UTC; naive timestamps are
    taken as UTC. The window applies in every layout: rows of other days inside the day's file are dropped.
    A day whose file exists but holds no rows of that day gives an empty frame with the file's columns: the
    caller decides (the quality checks fail it). Raises ``DataSourceError`` when the day's file is missing
    (or a glob matches nothing), a file cannot be read, a column of ``plan.logged_columns`` is absent, a
    timestamp cannot be parsed, or the database cannot be queried.
    """
    src = plan.data.predictions
    ctx = day_context(plan, day)
    start, end = day_window(day)
    if src.source == "sql":
        where = _describe_sql(src)
        df = _sql_select(src, "data.predictions", ctx, src.timestamp, start, end)
        _require(df, plan.logged_columns, ctx, where)
        df[src.timestamp] = utc_timestamps(df[src.timestamp], ctx, where)
        return df

    frames = []
    for file in prediction_day_files(plan, day):
        where = f"file {file.shown}"
        df = _read(file.fs, file.path, src.source, ctx, file.shown)
        _require(df, plan.logged_columns, ctx, where)
        df[src.timestamp] = utc_timestamps(df[src.timestamp], ctx, where)
        frames.append(df[(df[src.timestamp] >= start) & (df[src.timestamp] < end)])
    return _concat(frames)


@dataclass(frozen=True)
class DayFile:
    """One file of a day's prediction log: its filesystem, its path there, and how messages name it."""

    fs: fsspec.AbstractFileSystem
    path: str
    shown: str


def prediction_day_files(plan: MonitoringPlan, day: dt.date) -> list[DayFile]:
    """The files of a file source (``parquet`` or ``csv``) that hold ``day``'s predictions, in read order
    (folder, ``{date}`` template or glob, as ``read_predictions`` reads them). Raises ``MissingDayError`` when
    there is none; rows of other days inside them are the caller's to drop (``day_window``)."""
    files = _locate(plan, plan.data.predictions, "data.predictions.path")
    return [DayFile(files.fs, path, files.show(path)) for path in _prediction_files(files, day, day_context(plan, day))]


def day_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the UTC day, tz-aware: the rows of ``day`` in every source."""
    return _day_start(day), _day_start(day + dt.timedelta(days=1))


def day_context(plan: MonitoringPlan, day: dt.date) -> str:
    """``model <name>, day <ISO day>``: how every message about a model-day starts."""
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise TypeError(f"day must be a datetime.date, not {type(day).__name__}")
    return f"model {plan.name}, day {day.isoformat()}"


def read_labels(plan: MonitoringPlan, day: dt.date, *, keep_duplicates: bool = False) -> pd.DataFrame:
    """Every label that can belong to a prediction of ``day``: those that arrived on ``day`` or later.

    Labels come after their prediction, so only files named by an arrival day >= ``day`` are read (folder
    and template layouts); a glob layout reads all files and keeps ``labelled_at >= day 00:00 UTC``, as does
    SQL. Returns the plan's id, label and labelled_at columns (names as in the plan, labelled_at in UTC),
    one row per id, sorted by labelled_at: when an id was labelled more than once the latest ``labelled_at``
    wins (on a tie, the later file). No labels yet (no file, or a labels folder not created yet) gives an
    empty frame with those columns; missing columns, unreadable files and a plan without ``data.labels``
    raise ``DataSourceError``.

    ``keep_duplicates=True`` keeps every row of an id labelled more than once (same order: by
    ``labelled_at``, then file), so that ``performance.compute`` / ``performance.join_labels`` can count the
    relabels (``labels_duplicate_ids``); their last-row-wins rule then picks the same label as the default
    here, except when an id's latest row has a missing label: the default keeps that empty row (no label),
    while they drop missing labels first and take the latest non-missing one.
    """
    src = _label_source(plan)
    ctx = day_context(plan, day)
    start = _day_start(day)
    columns = [src.id, src.label, src.labelled_at]
    frames = []
    if src.source == "sql":
        where = _describe_sql(src)
        df = _sql_select(src, "data.labels", ctx, src.labelled_at, start)
        _require(df, columns, ctx, where)
        frames.append(df[columns].assign(**{src.labelled_at: utc_timestamps(df[src.labelled_at], ctx, where)}))
    else:
        files = _locate(plan, src, "data.labels.path")
        if files.dated:
            paths = [p for p, arrival in _dated_files(files, ctx) if arrival >= day]
        else:
            paths = _glob_files(files.fs, files.pattern)
        for path in paths:
            where = f"file {files.show(path)}"
            df = _read(files.fs, path, src.source, ctx, files.show(path))
            _require(df, columns, ctx, where)
            df = df[columns].assign(**{src.labelled_at: utc_timestamps(df[src.labelled_at], ctx, where)})
            frames.append(df[df[src.labelled_at] >= start])
    if not frames:
        return pd.DataFrame(
            {
                src.id: pd.Series(dtype=object),
                src.label: pd.Series(dtype=object),
                src.labelled_at: pd.Series(dtype="datetime64[ns, UTC]"),
            }
        )
    labels = _concat(frames).sort_values(src.labelled_at, kind="stable")
    if not keep_duplicates:
        labels = labels.drop_duplicates(src.id, keep="last")
    return labels.reset_index(drop=True)


def label_state(plan: MonitoringPlan) -> dict[str, str]:
    """A cheap fingerprint of the labels that exist, for a sensor cursor; it changes when labels land.

    Files: ``{path: "<size>:<mtime_ns>"}`` for every label file, from a directory listing (contents are not
    read; a filesystem exposing no modification time leaves ``-1`` there). SQL: ``{"max_labelled_at": ...,
    "count": ...}`` from one aggregate query.
    """
    src = _label_source(plan)
    ctx = f"model {plan.name}"
    if src.source == "sql":
        col = sa.column(src.labelled_at)
        stmt = sa.select(sa.func.max(col), sa.func.count()).select_from(_sql_table(src.table))
        with _sql_connection(src, "data.labels", ctx) as conn:
            latest, count = conn.execute(stmt).one()
        return {"max_labelled_at": "" if latest is None else str(latest), "count": str(count)}

    files = _locate(plan, src, "data.labels.path")
    pattern = files.pattern.replace("{date}", _DATE_GLOB) if files.dated else files.pattern
    infos = _glob_infos(files.fs, pattern)
    return {path: f"{info.get('size')}:{_mtime_ns(info)}" for path, info in sorted(infos.items())}


def read_table(path: str, fmt: str) -> pd.DataFrame:
    """Read one parquet or csv file, local or fsspec URL (``${VAR}`` is not expanded here: the caller knows
    the plan field). Raises ``DataSourceError`` naming the file when it is missing or unreadable."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {FORMATS}")
    fs, fs_path = fsspec.core.url_to_fs(path)
    if not fs.exists(fs_path):
        raise DataSourceError(f"file not found: {path}")
    return _read(fs, fs_path, fmt, "", path)


def read_reference(plan: MonitoringPlan) -> pd.DataFrame:
    """The reference table of a plan whose ``data.reference`` is a parquet/csv file (not an MLflow artifact)."""
    ref = plan.data.reference
    path = settings.expand(ref.path, field="data.reference.path")
    try:
        return read_table(path, ref.source)
    except DataSourceError as exc:
        raise DataSourceError(f"model {plan.name}: data.reference: {exc}") from exc


def new_label_ids(plan: MonitoringPlan, before: dict[str, str], now: dict[str, str]) -> pd.DataFrame:
    """Ids and labelled_at of labels that landed between two ``label_state`` fingerprints.

    Files: every file that is new or changed is read (id and labelled_at only). SQL: rows labelled after the
    earlier state's latest labelled_at (all rows when there is no earlier state).
    """
    src = _label_source(plan)
    ctx = f"model {plan.name}"
    columns = [src.id, src.labelled_at]
    if src.source == "sql":
        since = before.get("max_labelled_at")
        start = pd.Timestamp(since).to_pydatetime() if since else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.UTC)
        df = _sql_select(src, "data.labels", ctx, src.labelled_at, start)
        _require(df, columns, ctx, _describe_sql(src))
        df = df[columns]
        df = df.assign(**{src.labelled_at: utc_timestamps(df[src.labelled_at], ctx, _describe_sql(src))})
        return df[df[src.labelled_at] > start] if since else df
    files = _locate(plan, src, "data.labels.path")
    frames = []
    for path in sorted(p for p, fp in now.items() if before.get(p) != fp):
        df = _read(files.fs, path, src.source, ctx, files.show(path))
        _require(df, columns, ctx, f"file {files.show(path)}")
        frames.append(
            df[columns].assign(**{src.labelled_at: utc_timestamps(df[src.labelled_at], ctx, files.show(path))})
        )
    if not frames:
        return pd.DataFrame({src.id: pd.Series(dtype=object), src.labelled_at: pd.Series(dtype="datetime64[ns, UTC]")})
    return _concat(frames)


def prediction_days_of(
    plan: MonitoringPlan, labels: pd.DataFrame, *, candidates: list[str], lookback_days: int
) -> tuple[list[str], int]:
    """Which of the ``candidates`` days (ISO) hold a prediction that one of ``labels`` belongs to, and how many
    of the labels' ids belong to none of them (labels for an unknown request, or a day not monitored yet).

    A label can only belong to a prediction made before it, at most ``lookback_days`` earlier; within that
    window each candidate day's log is read and its ids intersected with the labels' ids (exact, not a guess).
    """
    src = _label_source(plan)
    if labels.empty:
        return [], 0
    first = labels[src.labelled_at].min().date() - dt.timedelta(days=lookback_days)
    last = labels[src.labelled_at].max().date()
    ids = set(labels[src.id].astype(str))
    days, matched = [], set()
    for day in sorted(candidates):
        d = dt.date.fromisoformat(day)
        if not first <= d <= last:
            continue
        hit = ids.intersection(read_predictions(plan, d)[plan.data.predictions.id].astype(str))
        if hit:
            days.append(day)
            matched |= hit
    return days, len(ids) - len(matched)


def state_token(state: dict[str, str]) -> str:
    """A short, stable digest of a ``label_state`` (for run keys)."""
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------------------
# files


@dataclass(frozen=True)
class _Files:
    fs: fsspec.AbstractFileSystem
    pattern: str  # filesystem path: a template holding {date}, or a glob
    dated: bool  # pattern holds {date}

    def show(self, path: str) -> str:
        return path if isinstance(self.fs, LocalFileSystem) else self.fs.unstrip_protocol(path)


def _locate(plan: MonitoringPlan, src: PredictionSource | LabelSource, field: str) -> _Files:
    try:
        url = settings.expand(src.path, field=field)
    except DataSourceError as exc:
        raise DataSourceError(f"model {plan.name}: {exc}") from exc
    fs, path = fsspec.core.url_to_fs(url)
    # Remote filesystems cache listings per instance and fsspec reuses instances: a file that landed since
    # the last call would stay invisible to a long-lived process (a sensor, a retried run).
    fs.invalidate_cache()
    if "{date}" in path:
        return _Files(fs, path, True)
    if _GLOB.search(path):
        return _Files(fs, path, False)
    return _Files(fs, f"{path.rstrip('/')}/{{date}}.{src.source}", True)


def _prediction_files(files: _Files, day: dt.date, ctx: str) -> list[str]:
    target = files.pattern.replace("{date}", day.isoformat()) if files.dated else files.pattern
    if not _GLOB.search(target):
        if not files.fs.exists(target):
            raise MissingDayError(f"{ctx}: prediction file not found: {files.show(target)}")
        return [target]
    paths = _glob_files(files.fs, target)
    if not paths:
        raise MissingDayError(f"{ctx}: no prediction file matches {files.show(target)}")
    return paths


def _glob_infos(fs: fsspec.AbstractFileSystem, pattern: str) -> dict[str, dict]:
    return {p: info for p, info in fs.glob(pattern, detail=True).items() if info.get("type") == "file"}


def _glob_files(fs: fsspec.AbstractFileSystem, pattern: str) -> list[str]:
    return sorted(_glob_infos(fs, pattern))


def _dated_files(files: _Files, ctx: str) -> list[tuple[str, dt.date]]:
    """Files matching the template, with the day their name carries, oldest first."""
    rx = _template_regex(files.pattern)
    out = []
    for path in _glob_files(files.fs, files.pattern.replace("{date}", _DATE_GLOB)):
        m = rx.fullmatch(path)
        if m is None:  # the glob matched, so this is a bug in _template_regex; never drop a file quietly
            raise DataSourceError(f"{ctx}: cannot find the date of {files.show(path)} in {files.pattern}")
        try:
            out.append((path, dt.date.fromisoformat(m.group("date"))))
        except ValueError as exc:
            raise DataSourceError(f"{ctx}: file {files.show(path)} is named by an invalid date") from exc
    return sorted(out, key=lambda item: (item[1], item[0]))


def _template_regex(template: str) -> re.Pattern:
    """Regex matching what fsspec's glob of ``template`` (``{date}`` as a date glob) returns."""
    out, seen_date = [], False
    for tok in re.split(r"(\{date\}|\*\*|\*|\?|\[[^\]]*\])", template):
        if tok == "{date}":
            out.append("(?P=date)" if seen_date else r"(?P<date>\d{4}-\d{2}-\d{2})")
            seen_date = True
        elif tok == "**":
            out.append(".*")
        elif tok == "*":
            out.append("[^/]*")
        elif tok == "?":
            out.append("[^/]")
        elif tok.startswith("[") and tok.endswith("]") and len(tok) > 2:
            out.append("[^" + tok[2:] if tok[1] == "!" else tok)
        else:
            out.append(re.escape(tok))
    return re.compile("".join(out))


def _read(fs: fsspec.AbstractFileSystem, path: str, fmt: str, ctx: str, shown: str) -> pd.DataFrame:
    try:
        with fs.open(path, "rb") as f:
            return pd.read_parquet(f) if fmt == "parquet" else pd.read_csv(f)
    except READ_ERRORS as exc:
        prefix = f"{ctx}: " if ctx else ""
        raise DataSourceError(f"{prefix}cannot read {fmt} file {shown}: {type(exc).__name__}: {exc}") from exc


def _mtime_ns(info: dict) -> int:
    for key in _MTIME_KEYS:
        value = info.get(key)
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, dt.datetime):
            value = value.timestamp()
        if isinstance(value, (int, float)):
            return int(value * 1_000_000_000)
    return -1


# --------------------------------------------------------------------------------------------------------
# SQL


def _describe_sql(src: PredictionSource | LabelSource) -> str:
    return f"sql table {src.table} (URL from ${src.url_env})"


def _sql_table(name: str) -> sa.TableClause:
    schema, _, table = name.rpartition(".")
    return sa.table(table, schema=schema or None)


@contextmanager
def _sql_connection(src: PredictionSource | LabelSource, section: str, ctx: str) -> Iterator[sa.Connection]:
    """A connection on a throw-away engine; SQLAlchemy errors in the block become DataSourceError."""
    url = os.environ.get(src.url_env)
    if not url:
        raise DataSourceError(f"{ctx}: {section}.url_env: environment variable {src.url_env} is not set")
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    except ImportError as exc:
        raise DataSourceError(
            f"{ctx}: the database driver for ${src.url_env} is not installed "
            "(PostgreSQL URLs must start with postgresql+psycopg2://)"
        ) from exc
    except sa.exc.ArgumentError as exc:
        raise DataSourceError(f"{ctx}: ${src.url_env} is not a valid SQLAlchemy URL") from exc
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # Makes the database read naive timestamp columns as UTC, as the files are read.
                conn.exec_driver_sql("SET TIME ZONE 'UTC'")
            yield conn
    except sa.exc.SQLAlchemyError as exc:
        raise DataSourceError(f"{ctx}: {_describe_sql(src)}: {exc}") from exc
    finally:
        engine.dispose()


def _sql_select(
    src: PredictionSource | LabelSource,
    section: str,
    ctx: str,
    ts_column: str,
    start: dt.datetime,
    end: dt.datetime | None = None,
) -> pd.DataFrame:
    col = sa.column(ts_column)
    cond = col >= sa.bindparam("start", start, type_=_SQL_TS)
    if end is not None:
        cond = sa.and_(cond, col < sa.bindparam("end", end, type_=_SQL_TS))
    stmt = sa.select(sa.literal_column("*")).select_from(_sql_table(src.table)).where(cond)
    with _sql_connection(src, section, ctx) as conn:
        return pd.read_sql(stmt, conn)


# --------------------------------------------------------------------------------------------------------
# shared


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _label_source(plan: MonitoringPlan) -> LabelSource:
    if plan.data.labels is None:
        raise DataSourceError(f"model {plan.name}: the plan has no data.labels section")
    return plan.data.labels


def _require(df: pd.DataFrame, columns: list[str], ctx: str, where: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataSourceError(f"{ctx}: {where} lacks column(s) {', '.join(missing)}")


def utc_timestamps(values: pd.Series, ctx: str, where: str) -> pd.Series:
    """Timestamps as tz-aware UTC; naive ones are taken as UTC. Numbers, and text that is not ISO-8601, raise
    ``DataSourceError`` naming ``ctx``, ``where`` and the column."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)):
        # numbers would silently become nanoseconds since 1970
        raise DataSourceError(
            f"{ctx}: {where}: timestamp column {values.name!r} has dtype {values.dtype}; "
            "expected timestamps or ISO-8601 text"
        )
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataSourceError(f"{ctx}: {where}: timestamp column {values.name!r} is not ISO-8601: {exc}") from exc


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    # concatenating empty frames is deprecated in pandas (dtype inference); keep one for the columns
    kept = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(kept, ignore_index=True)
