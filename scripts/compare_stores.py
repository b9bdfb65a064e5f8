#!/usr/bin/env python3.11
"""Compare two metric stores row by row (SQLite files or SQLAlchemy URLs) and print every difference.

    python3.11 scripts/compare_stores.py BEFORE AFTER [--tolerance 1e-12]

Used to show that a refactoring left behaviour unchanged: run the 30-day demo before and after
(``MONITORING_HOME=... monitoring-pipelines demo``) and compare the two ``metrics.db`` files. Columns that
differ between any two runs by construction are left out: generated ids, Dagster run ids, wall-clock
timestamps, and the outbox payload's links (they carry run ids). Everything else -- every figure, threshold,
status, model version, incident, event, notification and action -- must be equal. Rows are matched on the
table's natural key; incidents and notifications by (model, family, metric, first day) so generated ids do not
matter. Exit status 0 when equal, 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import sqlalchemy as sa

# table -> (natural key columns, compared columns); ids, run ids and wall-clock times are left out
TABLES = {
    "metric_values": (
        ("model", "partition_date", "family", "metric", "segment"),
        ("model_version", "alias", "value", "warning_threshold", "critical_threshold", "direction", "status"),
    ),
    "model_actions": (
        ("model", "action", "partition_date", "trigger", "from_version", "to_version"),
        ("status", "reason", "actor"),
    ),
    "incidents": (
        ("model", "family", "metric", "first_day"),
        (
            "state",
            "severity",
            "model_version",
            "segments",
            "last_breach_day",
            "closed_day",
            "value",
            "threshold",
            "direction",
            "resolved_by",
            "resolution",
        ),
    ),
}
# child tables, keyed through their incident's natural key
INCIDENT_KEY = "i.model, i.family, i.metric, i.first_day"
CHILDREN = {
    "incident_events": (
        f"SELECT {INCIDENT_KEY}, e.seq, e.kind, e.day, e.severity, e.value, e.threshold, e.segments, e.actor, e.note "
        "FROM incident_events e JOIN incidents i ON i.id = e.incident_id",
        6,
    ),
    "notification_outbox": (
        f"SELECT {INCIDENT_KEY}, o.state, o.channel_name, o.severity, o.segment, o.partition_date, o.channel_type, "
        "o.status, o.attempts, o.payload FROM notification_outbox o JOIN incidents i ON i.id = o.incident_id",
        7,
    ),
}
VOLATILE_PAYLOAD_KEYS = {
    "id",
    "delivery_id",
    "event_id",
    "at",
    "outbox_id",
    "run_id",
    "links",
    "sent_at",
    "opened_at",
    "created_at",
    "dagster_run",
    "dedup_key",
    "blocks",
    "text",
    "body",
    "message_id",
    "headers",
    "event_action",
    "payload",
}


def _engine(where: str) -> sa.Engine:
    return sa.create_engine(where if "://" in where else f"sqlite:///{where}")


def _same(a, b, tol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is None and b is None
        if math.isnan(a) and math.isnan(b):
            return True
        return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(a)), abs(float(b)))
    return a == b


def _payload(text: str) -> str:
    """The outbox payload without the parts that carry ids, run ids or times."""

    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in sorted(v.items()) if k not in VOLATILE_PAYLOAD_KEYS}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return json.dumps(strip(json.loads(text)), sort_keys=True)


def _rows(conn: sa.Connection, sql: str, nkey: int) -> dict[tuple, tuple]:
    out: dict[tuple, tuple] = {}
    for r in conn.execute(sa.text(sql)):
        r = tuple(str(x) if hasattr(x, "isoformat") else x for x in r)
        key, rest = r[:nkey], r[nkey:]
        if key in out:
            raise SystemExit(f"{sql.split()[-1]}: two rows with key {key}; the comparison needs a unique key")
        out[key] = rest
    return out


def compare(before: str, after: str, tol: float) -> list[str]:
    diffs: list[str] = []
    queries = {t: (f"SELECT {', '.join(k + v)} FROM {t}", len(k), v) for t, (k, v) in TABLES.items()}
    for t, (sql, n) in CHILDREN.items():
        cols = [c.split(".")[-1] for c in sql.split("FROM")[0].replace("SELECT", "").split(",")][n:]
        queries[t] = (sql, n, tuple(c.strip() for c in cols))
    with _engine(before).connect() as a, _engine(after).connect() as b:
        for table, (sql, nkey, cols) in queries.items():
            ra, rb = _rows(a, sql, nkey), _rows(b, sql, nkey)
            print(f"{table}: {len(ra)} rows before, {len(rb)} after")
            for key in sorted(set(ra) | set(rb), key=str):
                if key not in rb:
                    diffs.append(f"{table} {key}: only before")
                elif key not in ra:
                    diffs.append(f"{table} {key}: only after")
                else:
                    for col, x, y in zip(cols, ra[key], rb[key]):
                        if col == "payload":
                            x, y = _payload(x), _payload(y)
                        if not _same(x, y, tol):
                            diffs.append(f"{table} {key} {col}: {x!r} before, {y!r} after")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--tolerance", type=float, default=1e-12, help="relative tolerance for floats")
    args = parser.parse_args(argv)
    diffs = compare(args.before, args.after, args.tolerance)
    for d in diffs:
        print(d)
    print("every row equal" if not diffs else f"{len(diffs)} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
