"""Tests of plan validation (monitoring_pipelines.plan.schema and the family checks of
monitoring_pipelines.validation): every mistake is reported, with its field path, at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from monitoring_pipelines.errors import PlanError
from monitoring_pipelines.plan import schema
from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR, PLANS_DIR_ENV, read_yaml
from monitoring_pipelines.validation import load_plan, load_plans, parse_plan

BUNDLED = BUNDLED_PLANS_DIR / "adult_income.yaml"
DELETE = object()


def bundled() -> dict:
    return read_yaml(BUNDLED.read_text())


def edited(*changes: tuple[tuple, object]) -> dict:
    """The bundled plan with each ``(key path, value)`` set, or removed when the value is DELETE."""
    raw = bundled()
    for keys, value in changes:
        node = raw
        for key in keys[:-1]:
            node = node[key]
        if value is DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return raw


def write(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def problems_of(raw: dict, tmp_path: Path) -> list[tuple[str, str]]:
    """(field path, message) of every problem load_plan reports for ``raw``; [] when it loads."""
    path = write(tmp_path / "plan.yaml", raw)
    try:
        load_plan(path)
    except PlanError as exc:
        assert {file for file, _, _ in exc.problems} == {str(path)}
        return [(field, message) for _, field, message in exc.problems]
    return []


# --------------------------------------------------------------------------------------------------------
# the bundled plan and YAML 1.2 booleans


def test_bundled_plan_loads(monkeypatch):
    monkeypatch.delenv(PLANS_DIR_ENV, raising=False)
    [plan] = load_plans()
    assert plan == load_plan(BUNDLED)
    assert plan.name == "adult_income"
    assert len(plan.features.model_inputs) == 11
    assert plan.bounds("performance", "roc_auc").direction == "min"
    assert plan.actions.retrain.on == ["drift.critical", "performance.critical"]  # `on:` read as a key
    assert plan.actions.rollback.on == ["performance.critical"]


def test_yaml_on_yes_off_stay_strings_and_only_true_false_are_booleans():
    assert read_yaml("on: [drift.critical]\na: yes\nb: off\nc: true\nd: False") == {
        "on": ["drift.critical"],
        "a": "yes",
        "b": "off",
        "c": True,
        "d": False,
    }


def test_impossible_date_is_reported_at_its_field_instead_of_crashing_the_yaml_reader(tmp_path):
    text = BUNDLED.read_text()
    assert "start_date: 2026-01-01" in text
    path = tmp_path / "plan.yaml"
    path.write_text(text.replace("start_date: 2026-01-01", "start_date: 2026-13-01"))
    with pytest.raises(PlanError) as exc:
        load_plan(path)
    [(_, field, message)] = exc.value.problems
    assert field == "schedule.start_date" and "month" in message


def test_plans_dir_comes_from_the_environment(tmp_path, monkeypatch):
    write(tmp_path / "mine.yaml", edited((("model", "name"), "mine")))
    monkeypatch.setenv(PLANS_DIR_ENV, str(tmp_path))
    assert [p.name for p in load_plans()] == ["mine"]


# --------------------------------------------------------------------------------------------------------
# each mistake class is reported with its field path (and nothing else is)

THRESHOLDS = "thresholds"
MISTAKES = {
    "unknown top-level key": ([(("colour",), "red")], [("colour", "Extra inputs are not permitted")]),
    "unknown nested key": (
        [(("data", "predictions", "colour"), "red")],
        [("data.predictions.colour", "Extra inputs are not permitted")],
    ),
    "feature both numerical and categorical": (
        [(("features", "categorical"), ["workclass", "age"])],
        [("features.categorical[1]", "column 'age' is listed twice (also at features.numerical[0])")],
    ),
    "feature equal to a mapped column": (
        [(("features", "context"), ["sex", "race", "score"])],
        [("features.context[2]", "column 'score' is listed twice (also at data.predictions.score)")],
    ),
    "warning beyond critical, direction max": (
        [((THRESHOLDS, "drift.share_of_drifted_features"), {"warning": 0.5, "critical": 0.4})],
        [("thresholds.drift.share_of_drifted_features", "warning 0.5 is beyond critical 0.4 for direction 'max'")],
    ),
    "warning beyond critical, direction min": (
        [((THRESHOLDS, "performance.roc_auc"), {"warning": 0.75, "critical": 0.8, "direction": "min"})],
        [("thresholds.performance.roc_auc", "warning 0.75 is beyond critical 0.8 for direction 'min'")],
    ),
    "threshold without warning or critical": (
        [((THRESHOLDS, "service.error_rate"), {"direction": "max"})],
        [("thresholds.service.error_rate", "give a warning or a critical threshold")],
    ),
    "no prediction source": ([(("data", "predictions"), DELETE)], [("data.predictions", "Field required")]),
    "sql source without table and url_env": (
        [(("data", "predictions", "source"), "sql")],
        [
            ("data.predictions.table", "required when source is 'sql'"),
            ("data.predictions.url_env", "required when source is 'sql'"),
        ],
    ),
    "parquet source without path": (
        [(("data", "predictions", "path"), DELETE)],
        [("data.predictions.path", "required when source is 'parquet'")],
    ),
    "csv label source without path": (
        [(("data", "labels", "source"), "csv"), (("data", "labels", "path"), DELETE)],
        [("data.labels.path", "required when source is 'csv'")],
    ),
    "mlflow reference without artifact_path": (
        [(("data", "reference", "artifact_path"), DELETE)],
        [("data.reference.artifact_path", "required when source is 'mlflow_artifact'")],
    ),
    "protected attribute that is not a column": (
        [(("protected_attributes",), ["sex", "religion"])],
        [("protected_attributes[1]", "'religion' is not a column of the prediction log")],
    ),
    "threshold on a misspelt metric": (
        [((THRESHOLDS, "drift.share_of_drifted_feature"), {"warning": 0.2})],
        [("thresholds.drift.share_of_drifted_feature", "unknown metric 'drift.share_of_drifted_feature'")],
    ),
    "threshold on an unknown family": (
        [((THRESHOLDS, "latency.p99_ms"), {"warning": 300})],
        [("thresholds.latency.p99_ms", "unknown metric 'latency.p99_ms'")],
    ),
    "retrain trigger with an unknown severity": (
        [(("actions", "retrain", "on"), ["drift.critical", "drift.severe"])],
        [("actions.retrain.on[1]", "'drift.severe' must be '<family>.<warning|critical>'")],
    ),
    "rollback trigger with an unknown family": (
        [(("actions", "rollback", "on"), ["latency.critical"])],
        [("actions.rollback.on[0]", "'latency.critical' must be '<family>.<warning|critical>'")],
    ),
    "retrain recipe that is not module:function": (
        [(("actions", "retrain", "recipe"), "monitoring_pipelines.demo.training.train")],
        [("actions.retrain.recipe", "must be 'module:function'")],
    ),
    "promotion on a metric the challenger comparison does not compute": (
        [(("actions", "promote", "metric"), "f1")],
        [("actions.promote.metric", "'f1' is not compared between challenger and champion; use one of ['roc_auc']")],
    ),
    "hourly cron": (
        [(("schedule", "cron"), "0 * * * *")],
        [("schedule.cron", "must be a daily schedule 'MINUTE HOUR * * *'")],
    ),
    "weekly cron": (
        [(("schedule", "cron"), "0 2 * * 1")],
        [("schedule.cron", "must be a daily schedule 'MINUTE HOUR * * *'")],
    ),
    "model name that is not an identifier": (
        [(("model", "name"), "adult-income")],
        [("model.name", "must start with a letter and hold only letters, digits and '_'")],
    ),
}


@pytest.mark.parametrize(("changes", "expected"), MISTAKES.values(), ids=MISTAKES.keys())
def test_mistake_is_reported_with_its_field_path(changes, expected, tmp_path):
    problems = problems_of(edited(*changes), tmp_path)
    assert [field for field, _ in problems] == [field for field, _ in expected]
    for (_, message), (_, fragment) in zip(problems, expected):
        assert fragment in message


def test_every_mistake_of_a_file_is_reported_together(tmp_path):
    raw = edited(
        (("data", "predictions", "colour"), "red"),  # unknown key (a schema error)
        (("features", "categorical"), ["workclass", "age"]),  # a column listed twice
        ((THRESHOLDS, "service.error_rate"), {"warning": 0.1, "critical": 0.05}),  # warning beyond critical
    )
    assert [field for field, _ in problems_of(raw, tmp_path)] == [
        "data.predictions.colour",
        "features.categorical[1]",
        "thresholds.service.error_rate",
    ]


def test_every_schema_mistake_of_a_file_is_reported_together(tmp_path):
    raw = edited((("colour",), "red"), (("data", "predictions"), DELETE), (("schedule", "cron"), "*/5 * * * *"))
    assert sorted(field for field, _ in problems_of(raw, tmp_path)) == ["colour", "data.predictions", "schedule.cron"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a plan must be a YAML mapping"),
        ("- model\n- owners\n", "a plan must be a YAML mapping"),
        ("model: [adult_income\n", "not valid YAML: expected ',' or ']', but got '<stream end>' (line 2, column 1)"),
        ("model: {name: a}\nmodel: {name: b}\n", "not valid YAML: found duplicate key 'model' (line 2, column 1)"),
        ("model: caf\xe9\n", "cannot read: not UTF-8 text"),
    ],
    ids=["empty file", "a list", "broken YAML", "key given twice", "not UTF-8"],
)
def test_file_that_is_not_a_plan_mapping_is_reported_on_one_line(text, message, tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_bytes(text.encode("latin-1"))  # Latin-1, so that the last case is not UTF-8
    with pytest.raises(PlanError) as exc:
        load_plan(path)
    [(file, field, got)] = exc.value.problems
    assert (file, field) == (str(path), "") and got.startswith(message) and "\n" not in got


# --------------------------------------------------------------------------------------------------------
# load_plans: a folder of plans loads as a whole or not at all


def test_load_plans_returns_every_plan_of_the_folder(tmp_path):
    write(tmp_path / "a.yaml", bundled())
    write(tmp_path / "b.yml", edited((("model", "name"), "churn")))
    assert [p.name for p in load_plans(tmp_path)] == ["adult_income", "churn"]


def test_load_plans_fails_naming_the_broken_file_and_field_instead_of_dropping_it(tmp_path):
    write(tmp_path / "a.yaml", bundled())
    broken = write(
        tmp_path / "b.yaml", edited((("model", "name"), "churn"), (("data", "predictions", "colour"), "red"))
    )
    with pytest.raises(PlanError) as exc:
        load_plans(tmp_path)
    assert exc.value.problems == [(str(broken), "data.predictions.colour", "Extra inputs are not permitted")]
    assert f"{broken}: data.predictions.colour" in str(exc.value)


def test_load_plans_refuses_two_plans_of_the_same_model(tmp_path):
    first = write(tmp_path / "a.yaml", bundled())
    second = write(tmp_path / "b.yaml", bundled())
    with pytest.raises(PlanError) as exc:
        load_plans(tmp_path)
    [(file, field, message)] = exc.value.problems
    assert (file, field) == (str(second), "model.name")
    assert message == f"model 'adult_income' is already monitored by {first}"


def test_load_plans_refuses_a_folder_without_plans(tmp_path):
    (tmp_path / "README.txt").write_text("not a plan")
    with pytest.raises(PlanError) as exc:
        load_plans(tmp_path)
    [(file, _, message)] = exc.value.problems
    assert file == str(tmp_path) and "no *.yaml plan files found" in message


def test_a_protected_attribute_listed_twice_a_label_column_reused_and_triggers_without_recipe_are_errors():
    raw = read_yaml((BUNDLED_PLANS_DIR / "adult_income.yaml").read_text())
    raw["protected_attributes"] = ["sex", "sex"]
    raw["data"]["labels"]["label"] = "request_id"
    del raw["actions"]["retrain"]["recipe"]
    with pytest.raises(PlanError) as err:
        parse_plan(raw, "p.yaml")
    fields = {field for _, field, _ in err.value.problems}
    assert fields == {"protected_attributes[1]", "data.labels.label", "actions.retrain.recipe"}


def test_per_column_drift_tests_need_a_known_method_and_a_model_input():
    raw = read_yaml((BUNDLED_PLANS_DIR / "adult_income.yaml").read_text())
    raw["drift"] = {"columns": {"age": {"method": "psi", "threshold": 0.2}}}
    assert parse_plan(raw, "p.yaml").drift.columns["age"].method == "psi"
    raw["drift"] = {"columns": {"sex": {"method": "psi", "threshold": 0.2}, "age": {"method": "magic", "threshold": 1}}}
    with pytest.raises(PlanError) as err:
        parse_plan(raw, "p.yaml")
    assert {field for _, field, _ in err.value.problems} == {"drift.columns.age.method"}
    raw["drift"] = {"columns": {"sex": {"method": "psi", "threshold": 0.2}}}
    with pytest.raises(PlanError, match="drift.columns.sex: 'sex' is not a model input"):
        parse_plan(raw, "p.yaml")


def test_per_column_drift_tests_must_be_computable_on_all_rows_for_the_column_kind():
    raw = read_yaml((BUNDLED_PLANS_DIR / "adult_income.yaml").read_text())
    raw["drift"] = {
        "columns": {
            "age": {"method": "chisquare", "threshold": 0.05},  # categorical-only test
            "workclass": {"method": "TVD", "threshold": 0.1},  # Evidently's, not all-rows
            "education": {"method": "jensenshannon", "threshold": 0.2},
        }
    }
    with pytest.raises(PlanError) as err:
        parse_plan(raw, "p.yaml")
    problems = {field: message for _, field, message in err.value.problems}
    assert set(problems) == {"drift.columns.age.method", "drift.columns.workclass.method"}
    assert "categorical columns, not numerical" in problems["drift.columns.age.method"]
    assert "not computed on all rows" in problems["drift.columns.workclass.method"]


# --------------------------------------------------------------------------------------------------------
# layering: the schema imports no family; the validation layer adds what needs one


def test_the_plan_schema_loads_a_plan_without_importing_any_family():
    code = (
        "import sys\n"
        "from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR, load_plans\n"
        "load_plans(BUNDLED_PLANS_DIR)\n"
        "print(sorted(m for m in sys.modules if m.startswith('monitoring_pipelines.families')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


FAMILY_MISTAKES = [
    "threshold on a misspelt metric",
    "threshold on an unknown family",
    "promotion on a metric the challenger comparison does not compute",
]


@pytest.mark.parametrize("name", FAMILY_MISTAKES)
def test_a_mistake_only_a_family_knows_passes_the_schema_and_is_caught_by_the_validation_layer(name, tmp_path):
    changes, expected = MISTAKES[name]
    path = write(tmp_path / "plan.yaml", edited(*changes))
    assert schema.load_plan(path).name == "adult_income"  # structure alone: fine
    assert [field for field, _ in problems_of(edited(*changes), tmp_path)] == [field for field, _ in expected]


def test_family_problems_follow_the_structural_ones_of_the_same_file(tmp_path):
    raw = edited(
        ((THRESHOLDS, "drift.share_of_drifted_feature"), {"warning": 0.5, "critical": 0.4}),  # misspelt, and beyond
        (("actions", "promote", "metric"), "f1"),
        (("protected_attributes",), ["sex", "religion"]),
    )
    assert problems_of(raw, tmp_path) == [
        (
            "protected_attributes[1]",
            "'religion' is not a column of the prediction log; "
            "list it under features (numerical, categorical or context)",
        ),
        (
            "thresholds.drift.share_of_drifted_feature",
            "warning 0.5 is beyond critical 0.4 for direction 'max' (the warning must fire first)",
        ),
        (
            "thresholds.drift.share_of_drifted_feature",
            "unknown metric 'drift.share_of_drifted_feature'; expected '<family>.<metric>' from the catalogue in "
            "docs/plans.md",
        ),
        (
            "actions.promote.metric",
            "with a significance test across days, 'f1' is not compared between challenger and champion; "
            "use one of ['roc_auc']",
        ),
    ]
