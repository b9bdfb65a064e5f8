#!/usr/bin/env python3.11
"""Set-up and everyday commands; needs only Python 3.11 with pip (no make, no services).

    python3.11 dev.py demo [--days N]   install into .venv, then run the demo on the embedded default
    python3.11 dev.py test [pytest args] install into .venv, then run the whole test suite
    python3.11 dev.py lint               install into .venv, then ruff check and ruff format --check
    python3.11 dev.py ui                 open the Dagster UI on the demo's instance (http://127.0.0.1:3000)

Installing creates .venv and installs the project (editable) with exactly the versions in
constraints.txt; it is skipped when nothing changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"


def _run(cmd: list[str], **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def install() -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"monitoring_pipelines needs Python 3.11 (this is {sys.version.split()[0]}); run it with python3.11")
    digest = hashlib.sha256(
        b"".join((ROOT / f).read_bytes() for f in ("pyproject.toml", "constraints.txt"))
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        print(f"dependencies up to date in {VENV}")
        return
    if not (BIN / "python").exists():
        print(f"creating virtual environment {VENV}")
        venv.create(VENV, with_pip=True)
    _run(
        [
            BIN / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            ROOT / "constraints.txt",
            "-e",
            f"{ROOT}[test]",
        ]
    )
    STAMP.write_text(digest)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MONITORING_HOME", str(ROOT / ".monitoring"))
    env.setdefault("DAGSTER_HOME", str(Path(env["MONITORING_HOME"]) / "dagster_home"))
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "lint", "ui", "install"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    install()
    if command == "install":
        return 0
    if command == "demo":
        return subprocess.run([BIN / "monitoring-pipelines", "demo", *rest], cwd=ROOT, env=_env()).returncode
    if command == "lint":
        checks = (["check", "."], ["format", "--check", "."])
        return max(subprocess.run([BIN / "ruff", *args, *rest], cwd=ROOT).returncode for args in checks)
    if command == "test":
        return subprocess.run([BIN / "python", "-m", "pytest", *rest], cwd=ROOT).returncode
    env = _env()
    print(f"Dagster UI on DAGSTER_HOME={env['DAGSTER_HOME']}: http://127.0.0.1:3000 (Ctrl-C stops it)")
    return subprocess.run(
        [BIN / "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", "3000", *rest], cwd=ROOT, env=env
    ).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
