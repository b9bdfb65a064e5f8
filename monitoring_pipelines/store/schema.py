"""Migrations of the metric store by alembic, run programmatically (no alembic.ini).

The revisions live in ``monitoring_pipelines/store/migrations/versions`` (001..005 replace the ``sql/NNN_*.sql``
files the store applied itself before); the dashboard views stay SQL, one ``CREATE VIEW`` per file in
``sql/views/`` at the repository root, so the project runs from a clone or an editable install (``pip install
-e .``), not from a wheel. ``MetricStore.migrate`` calls ``upgrade`` inside its locked transaction.

A store made by the old migrator (table ``schema_migrations`` holding 001..00N, no ``alembic_version``) is
stamped with revision 00N first, so only the revisions after it run. ``schema_migrations`` is left as it is
(no longer written): an older release still running beside this one sees its files applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alembic import command, op
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, select
from sqlalchemy.sql import column, table

from monitoring_pipelines.errors import StoreError

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
# The sql/ folder sits next to the package in the source tree and is not packaged in wheels.
SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
VIEWS_DIR = SQL_DIR / "views"
LEGACY_TABLE = "schema_migrations"


def revision_ids() -> list[str]:
    """Every revision, oldest first."""
    return [s.revision for s in reversed(list(ScriptDirectory(str(SCRIPT_LOCATION)).walk_revisions()))]


def check_sources() -> None:
    """Fail before touching the database when the view files are not beside the package."""
    if not VIEWS_DIR.is_dir():
        raise StoreError(
            f"metric store schema folder {VIEWS_DIR} is missing: the project must be installed from source "
            "(pip install -e .), because sql/ is not packaged"
        )


def upgrade(conn: Connection) -> list[str]:
    """Bring the database of ``conn`` to the newest revision; return the revisions applied now, oldest first.

    ``conn`` must be in a transaction that serialises migrations (``MetricStore.migrate``): every revision runs in
    it, so a failing revision leaves the database as it was, and a second process finds the work done."""
    applied: list[str] = []

    def record(*, step, **_kw) -> None:
        if not step.is_stamp:
            applied.append(step.up_revision_id)

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes.update(connection=conn, on_version_apply=[record])
    try:
        legacy = _legacy_revision(conn)
        if legacy is not None:
            command.stamp(config, legacy)
        command.upgrade(config, "head")
    except CommandError as exc:  # e.g. the database is at a revision this release does not know
        raise StoreError(f"migrating: {exc}") from exc
    return applied


def _legacy_revision(conn: Connection) -> str | None:
    """The revision matching the versions of the old migrator's ``schema_migrations``, for a store it made and
    alembic has not seen yet; else None."""
    tables = set(inspect(conn).get_table_names())
    if LEGACY_TABLE not in tables or "alembic_version" in tables:
        return None
    legacy = table(LEGACY_TABLE, column("version"))
    versions = sorted(v for (v,) in conn.execute(select(legacy.c.version)))
    known = revision_ids()
    if versions != known[: len(versions)]:
        raise StoreError(
            f"{LEGACY_TABLE} records versions {versions}, which are not the first of the known "
            f"revisions {known}; upgrade it by hand"
        )
    return versions[-1] if versions else None


# -- helpers of the view revisions -----------------------------------------------------------------------------


def view_sql(name: str) -> str:
    """The ``CREATE VIEW`` statement of ``sql/views/<name>.sql`` (one statement per file)."""
    return (VIEWS_DIR / f"{name}.sql").read_text(encoding="utf-8")


def create_views(names: Sequence[str]) -> None:
    """Create the views of ``names`` (``NNN_<view>``) in order, inside the running migration."""
    bind = op.get_bind()
    for name in names:
        # exec_driver_sql: the statement goes to the driver verbatim (a ':' is not taken for a bind parameter)
        bind.exec_driver_sql(view_sql(name))


def drop_views(names: Sequence[str]) -> None:
    for name in reversed(names):
        op.execute(f"DROP VIEW {name.split('_', 1)[1]}")
