"""Query results as pandas frames with the same dtypes on both backends, from the columns' types in tables.py."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
from sqlalchemy import Column, Float, Integer, Row

from monitoring_pipelines.store.tables import UtcTimestamp


def frame(records: Iterable[Row], columns: Sequence[Column]) -> pd.DataFrame:
    """``records`` as a frame: figures float64 (NaN for NULL), moments ``datetime64[ns, UTC]``, integers int64,
    everything else object (days are ``datetime.date``, None when NULL)."""
    df = pd.DataFrame.from_records([tuple(r) for r in records], columns=[c.name for c in columns]).astype(object)
    for c in columns:
        if isinstance(c.type, Float):
            df[c.name] = pd.to_numeric(df[c.name]).astype("float64")
        elif isinstance(c.type, UtcTimestamp):
            df[c.name] = pd.to_datetime(df[c.name], utc=True).astype("datetime64[ns, UTC]")
        elif isinstance(c.type, Integer):
            df[c.name] = df[c.name].astype("int64")
    return df
