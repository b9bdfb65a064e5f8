"""Typed results as Dagster metadata: numbers Dagster can plot, small markdown tables, plain values back."""

import dagster as dg
import pandas as pd


def raw(value):
    """A metadata entry's plain value (MetadataValue objects carry it in .value)."""
    value = getattr(value, "value", value)
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None


def num(v: float | None) -> dg.MetadataValue:
    """Numeric metadata Dagster can plot; a missing figure is NaN (shown empty), never a fake 0."""
    return dg.MetadataValue.float(float("nan") if v is None else float(v))


def headline(values: dict) -> dict:
    """A result's headline as Dagster metadata: numbers as floats (plotted across partitions), text as text."""
    return {k: v if isinstance(v, str) else num(v) for k, v in values.items()}


def table(records: list[dict]) -> dg.MetadataValue:
    """Records as a markdown table (floats to 4 significant digits); ``_none_`` when there are none."""
    if not records:
        return dg.MetadataValue.md("_none_")
    cols = list(records[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in cols) + " |" for r in records]
    return dg.MetadataValue.md("\n".join(lines))


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def incident_records(frame: pd.DataFrame) -> list[dict]:
    """Stored incidents (``incidents.incidents``) as table records."""
    return [
        {
            "incident": r.id,
            "family": r.family,
            "metric": r.metric,
            "severity": r.severity,
            "state": r.state,
            "segments": ", ".join(s or "(day)" for s in r.segments),
            "first_day": r.first_day.isoformat(),
            "last_breach_day": r.last_breach_day.isoformat(),
            "value": r.value,
            "threshold": r.threshold,
        }
        for r in frame.itertuples()
    ]
