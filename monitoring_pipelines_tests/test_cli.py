"""Tests of the installed `monitoring-pipelines` console script, run as a user runs it (a subprocess)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR, read_yaml

BUNDLED = BUNDLED_PLANS_DIR / "adult_income.yaml"
_NEXT_TO_PYTHON = Path(sys.executable).parent / "monitoring-pipelines"
CLI = str(_NEXT_TO_PYTHON) if _NEXT_TO_PYTHON.exists() else shutil.which("monitoring-pipelines")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert CLI, "the monitoring-pipelines console script is not installed (pip install -e .)"
    env = {**os.environ, "MONITORING_HOME": str(cwd / "home")}
    return subprocess.run([CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def write_plan(path: Path, **edits) -> Path:
    """The bundled plan with a few edits: model_name, an unknown predictions key, thresholds, protected."""
    raw = read_yaml(BUNDLED.read_text())
    raw["model"]["name"] = edits.get("model_name", "adult_income")
    if "colour" in edits:
        raw["data"]["predictions"]["colour"] = edits["colour"]
    raw["thresholds"].update(edits.get("thresholds", {}))
    raw["protected_attributes"] = edits.get("protected", raw["protected_attributes"])
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def broken(tmp_path) -> Path:
    """A plan with three mistakes."""
    return write_plan(
        tmp_path / "broken.yaml",
        colour="red",
        protected=["sex", "religion"],
        thresholds={"drift.share_of_drifted_features": {"warning": 0.5, "critical": 0.4}},
    )


def test_validate_bundled_plan_exits_0_and_prints_ok(tmp_path):
    out = run("plan", "validate", str(BUNDLED), cwd=tmp_path)
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout == f"{BUNDLED}: ok (model adult_income: 11 features, 6 thresholds)\n"


def test_validate_broken_plan_exits_1_and_prints_every_error_as_file_field_message(broken, tmp_path):
    out = run("plan", "validate", str(broken), cwd=tmp_path)
    assert (out.returncode, out.stdout) == (1, "")
    *errors, summary = out.stderr.splitlines()
    assert [line.split(": ", 2)[:2] for line in errors] == [
        [str(broken), "data.predictions.colour"],
        [str(broken), "protected_attributes[1]"],
        [str(broken), "thresholds.drift.share_of_drifted_features"],
    ]
    assert errors[0] == f"{broken}: data.predictions.colour: Extra inputs are not permitted"
    assert summary == "3 problem(s) in 1 file(s)"


def test_validate_folder_reports_only_the_bad_plan(broken, tmp_path):
    good = write_plan(tmp_path / "good.yaml", model_name="churn")
    out = run("plan", "validate", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout == f"{good}: ok (model churn: 11 features, 6 thresholds)\n"
    assert str(good) not in out.stderr
    assert out.stderr.count(f"{broken}: ") == 3


def test_validate_folder_refuses_two_plans_of_the_same_model(tmp_path):
    first = write_plan(tmp_path / "a.yaml")
    second = write_plan(tmp_path / "b.yaml")
    out = run("plan", "validate", str(tmp_path), str(first), cwd=tmp_path)  # a.yaml named twice is read once
    assert out.returncode == 1
    assert out.stdout == f"{first}: ok (model adult_income: 11 features, 6 thresholds)\n"
    assert out.stderr.splitlines() == [
        f"{second}: model.name: model 'adult_income' is already monitored by {first}",
        "1 problem(s) in 2 file(s)",
    ]


def test_validate_missing_path_fails_with_a_clear_message(tmp_path):
    missing = tmp_path / "nope.yaml"
    out = run("plan", "validate", str(missing), cwd=tmp_path)
    assert out.returncode != 0
    assert f"{missing}: <plan>: cannot read: No such file or directory" in out.stderr
    assert "Traceback" not in out.stderr


def test_validate_folder_without_plans_fails_with_a_clear_message(tmp_path):
    out = run("plan", "validate", str(tmp_path), cwd=tmp_path)
    assert out.returncode != 0
    assert out.stderr == f"no plan files found in {tmp_path}\n"


def test_demo_with_zero_days_exits_1_with_a_clear_message(tmp_path):
    out = run("demo", "--days", "0", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == "error: --days must be within 1..30, got 0"
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_validate_asks_great_expectations_about_the_plans_own_expectations(tmp_path):
    raw = read_yaml(BUNDLED.read_text())
    raw["quality"] = {
        "expectations": [
            {
                "name": "age_adult",
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "age", "min_value": 17},
            },
            {"name": "typo", "type": "expect_column_values_to_be_betwen", "kwargs": {"column": "age"}},
        ]
    }
    path = tmp_path / "gx.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = run("plan", "validate", str(path), cwd=tmp_path)
    assert (out.returncode, out.stdout) == (1, "")
    first, summary = out.stderr.splitlines()
    assert first.startswith(f"{path}: quality.expectations[1].type: ") and "expect_column_values_to_be_betwen" in first
    assert summary == "1 problem(s) in 1 file(s)"
    raw["quality"]["expectations"].pop()
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = run("plan", "validate", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr


def test_validate_imports_no_heavy_library(tmp_path):
    # plan validate runs before deploys and in CI: it must not pay for MLflow, Evidently, GX or scikit-learn
    # (a plan with its own GX expectations is the exception: GX checks them, see the test above)
    code = (
        "import sys\n"
        "from monitoring_pipelines.cli import main\n"
        f"assert main(['plan', 'validate', {str(BUNDLED)!r}]) == 0\n"
        "heavy = ('mlflow', 'evidently', 'great_expectations', 'sklearn', 'fairlearn')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "[]"
