"""Code-location load time, measured in fresh interpreters, against the anchor of a bare `import dagster`.

    .venv/bin/python benchmarks/code_location_load.py [--repeat 5]

Prints one row per task: median and min wall time over the repetitions (each a new process, as a code server,
the daemon or a run worker would start), and the ratio to the anchor measured in the same run. The goal
(issue: foundation) is a load under 3 s with no heavy library imported; notes/baselines.md puts
`import dagster` at about 0.7 s and `import evidently` at 4.1-4.6 s on this kind of machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TASKS = {
    "anchor: import dagster": "import dagster",
    "load monitoring_pipelines (bundled plan, validated)": "import dagster as dg; from monitoring_pipelines.definitions import defs; dg.Definitions.validate_loadable(defs())",
    "contrast: import evidently + great_expectations": "import evidently, great_expectations",
}


def measure(code: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    measure(TASKS["anchor: import dagster"], 1)  # warm the page cache
    rows = [(name, measure(code, args.repeat)) for name, code in TASKS.items()]
    anchor = statistics.median(rows[0][1])
    print(f"{'task':55} {'median s':>9} {'min s':>7} {'x anchor':>9}")
    for name, times in rows:
        med = statistics.median(times)
        print(f"{name:55} {med:9.2f} {min(times):7.2f} {med / anchor:9.1f}")


if __name__ == "__main__":
    main()
