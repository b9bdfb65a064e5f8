"""The incident context the families contribute, on hand-made day rows: the drift family's top drifted features
and the fairness family's worst group (the tracker puts them into IncidentChange.context)."""

from __future__ import annotations

import math

import pandas as pd

from monitoring_pipelines.families.drift.incident import top_drifted_features
from monitoring_pipelines.families.fairness.incident import GAP_RATE, worst_group


def day(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["family", "metric", "segment", "value", "status"])


def test_drifted_features_come_first_then_the_highest_scores():
    rows = day(
        ("drift", "feature_drift_score", "age", 0.10, "ok"),
        ("drift", "feature_drift_score", "hours", 0.40, "critical"),
        ("drift", "feature_drift_score", "education", 0.30, "warning"),
        ("drift", "feature_drift_score", "race", math.nan, "unknown"),
        ("drift", "feature_drifted", "age", 1.0, "critical"),
        ("drift", "feature_drifted", "hours", 0.0, "ok"),
        ("drift", "feature_drifted", "education", 0.0, "ok"),
        ("quality", "feature_drift_score", "age", 9.0, "ok"),  # another family: ignored
    )
    top = top_drifted_features(rows)
    assert top == [
        {"feature": "age", "score": 0.10, "drifted": True},
        {"feature": "hours", "score": 0.40, "drifted": False},
        {"feature": "education", "score": 0.30, "drifted": False},
        {"feature": "race", "score": None, "drifted": False},
    ]
    assert [i["feature"] for i in top_drifted_features(rows, n=2)] == ["age", "hours"]


def test_a_per_group_breach_is_its_own_worst_group():
    assert worst_group(day(), "selection_rate", "sex=Female", 0.12) == {
        "group": "sex=Female",
        "metric": "selection_rate",
        "value": 0.12,
    }


def test_a_gap_names_the_group_of_its_attribute_with_the_lowest_rate():
    rows = day(
        ("fairness", "true_positive_rate", "sex=Male", 0.80, "ok"),
        ("fairness", "true_positive_rate", "sex=Female", 0.55, "ok"),
        ("fairness", "true_positive_rate", "race=Other", 0.10, "ok"),  # another attribute
        ("fairness", "true_positive_rate", "sex=Unknown", 0.01, "unknown"),  # not judged: left out
        ("fairness", "true_positive_rate", "sex=Female&race=Black", 0.05, "ok"),  # an intersection
        ("fairness", "selection_rate", "sex=Male", 0.01, "ok"),  # another rate
    )
    assert worst_group(rows, "equal_opportunity_difference", "sex", 0.25) == {
        "group": "sex=Female",
        "metric": "true_positive_rate",
        "value": 0.55,
    }
    assert worst_group(rows, "equalized_odds_difference", "sex&race", 0.3)["group"] == "sex=Female&race=Black"
    assert worst_group(rows, "demographic_parity_difference", "race", 0.3) is None  # no selection rate of race
    assert worst_group(rows, "group_count", "sex", 3.0) is None  # not a gap between rates


def test_every_gap_reads_a_rate_of_the_fairness_family():
    from monitoring_pipelines.families.fairness.names import Metric

    names = {m.value for m in Metric}
    assert set(GAP_RATE) <= names and {rate for rate, _ in GAP_RATE.values()} <= names
