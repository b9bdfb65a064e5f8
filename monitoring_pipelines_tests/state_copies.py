"""Copies of a test's SQLite-backed state: a demo's MONITORING_HOME or parts of it, an MLflow registry.

Session fixtures build expensive state once (the trained champion, the 30-day demo); a test that changes such
state works on a copy made here, so no test's writes reach another test's reads.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path


def copy_state(src: Path, dst: Path) -> None:
    """Copy a file or a folder; SQLite databases go through SQLite's backup API, so the copy is consistent even
    while the process that wrote them still holds connections (the demo's store, registry and Dagster instance)."""
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            if not child.name.endswith(("-wal", "-shm", "-journal")):  # the backup already holds their content
                copy_state(child, dst / child.name)
        return
    with src.open("rb") as f:
        is_sqlite = f.read(16) == b"SQLite format 3\x00"
    if not is_sqlite:
        shutil.copy2(src, dst)
        return
    with closing(sqlite3.connect(src)) as source, closing(sqlite3.connect(dst)) as target:
        source.backup(target)


def copy_registry(src_home: Path, dst_home: Path) -> None:
    """Copy the SQLite MLflow registry of one MONITORING_HOME (mlflow.db and mlartifacts/) into another, and point
    the artifact locations MLflow recorded (absolute file URIs, in the database and in MLmodel files) at the copy."""
    src_home, dst_home = src_home.resolve(), dst_home.resolve()
    old, new = f"{src_home}/mlartifacts", f"{dst_home}/mlartifacts"
    dst_home.mkdir(parents=True, exist_ok=True)
    copy_state(src_home / "mlflow.db", dst_home / "mlflow.db")
    shutil.copytree(src_home / "mlartifacts", dst_home / "mlartifacts")
    left = []
    with closing(sqlite3.connect(dst_home / "mlflow.db")) as con, con:
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for _, column, declared, *_ in con.execute(f'PRAGMA table_info("{table}")').fetchall():
                if "CHAR" in declared.upper() or "TEXT" in declared.upper():
                    con.execute(
                        f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) WHERE instr("{column}", ?) > 0',
                        (old, new, old),
                    )
                if con.execute(f'SELECT count(*) FROM "{table}" WHERE instr("{column}", ?) > 0', (old,)).fetchone()[0]:
                    left.append(f"{table}.{column}")
    assert not left, f"the copied MLflow registry still points at {old} in {left}"
    for mlmodel in (dst_home / "mlartifacts").rglob("MLmodel"):
        text = mlmodel.read_text()
        if old in text:
            mlmodel.write_text(text.replace(old, new))
