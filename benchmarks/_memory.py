"""Peak-memory measurement shared by the benchmark scripts (Linux /proc)."""

from __future__ import annotations

import json
import statistics
import subprocess
import time


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM, ...)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> None:
    """Reset VmHWM to the current RSS, so the next peak belongs to the next step (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def timed(fn, repeat: int) -> dict:
    """Median seconds, peak RSS and peak above the starting RSS (MiB) over ``repeat`` runs; the last result."""
    seconds, peak, plus = [], [], []
    for _ in range(repeat):
        reset_peak()
        rss = status_kib("VmRSS")
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
        peak.append(status_kib("VmHWM") / 1024)
        plus.append(peak[-1] - rss / 1024)
    return {
        "seconds": statistics.median(seconds),
        "peak_mib": statistics.median(peak),
        "plus_mib": statistics.median(plus),
        "result": result,
    }


def worker_result(cmd: list[str], what: str) -> dict:
    """Run one benchmark step in a fresh process and return the JSON it prints last; exit naming ``what``."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{what} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
