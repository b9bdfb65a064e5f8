"""The session's 30-day demo, run in a process of its own while the other tests run (conftest ``demo_month``).

``python -m monitoring_pipelines_tests.session_demo HOME SNAPSHOTS OUT`` runs ``run_demo(days=30)`` with
MONITORING_HOME=HOME (the caller clears every other location variable: SQLite everything under HOME), copies
``metrics.db`` and ``dagster_home`` to SNAPSHOTS/day-NN when day NN of SNAPSHOT_DAYS is done, and pickles what
the tests read (the DemoResult, DAGSTER_HOME as the demo left it, the snapshot folders) to OUT. It runs at a
lower CPU priority than the tests.
"""

from __future__ import annotations

import os
import pickle
import re
import sys
from pathlib import Path

from monitoring_pipelines.demo.runner import run_demo
from monitoring_pipelines_tests.state_copies import copy_state

# The days other tests read the demo at: the browser test (10), the Grafana panels (14), the end-to-end checks (16).
SNAPSHOT_DAYS = (10, 14, 16)
NICENESS = 10
DAY_LINE = re.compile(r"day\s+(\d+) ")  # run_demo says "day NN YYYY-MM-DD: ..." once a day is fully processed


def main(home: Path, shots: Path, out: Path) -> None:
    snapshots: dict[int, Path] = {}

    def say(line: str) -> None:
        print(line, flush=True)
        match = DAY_LINE.match(line)
        if match and int(match.group(1)) in SNAPSHOT_DAYS:
            day = int(match.group(1))
            snapshots[day] = shots / f"day-{day:02d}"
            snapshots[day].mkdir(parents=True)
            copy_state(home / "metrics.db", snapshots[day] / "metrics.db")
            copy_state(home / "dagster_home", snapshots[day] / "dagster_home")

    if os.environ.get("MONITORING_HOME") != str(home):
        raise SystemExit(f"MONITORING_HOME must be {home}, not {os.environ.get('MONITORING_HOME')}")
    # The tests running meanwhile come first: they are the session's critical path, while the demo has minutes
    # to spare before its readers (run last) need it. At equal priority the two fight for the second core.
    os.nice(NICENESS)
    result = run_demo(days=30, say=say)
    if sorted(snapshots) != list(SNAPSHOT_DAYS):
        raise SystemExit(f"run_demo no longer says 'day NN ...' once a day is done: snapshots {sorted(snapshots)}")
    out.write_bytes(
        pickle.dumps({"result": result, "dagster_home_env": os.environ.get("DAGSTER_HOME"), "snapshots": snapshots})
    )


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:4]))
