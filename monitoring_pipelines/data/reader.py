"""The day reader: one model-day of the prediction log, as the monitoring families read it.

This is the one seam between the families and the data: a family asks for the day's row count, one column,
chunks of a column set, the projected frame or null counts, never for files or tables. Another compute engine
(DuckDB, Spark, the source database) plugs in here by implementing :class:`DayReader`. Two readers today,
chosen by ``open_day``:

* :class:`ParquetDay`, for a parquet prediction log (folder, ``{date}`` template or glob; local path or fsspec
  URL): read with pyarrow one column set at a time, in chunks of at most ``chunk_rows`` rows inside a row
  group, so memory never holds the whole day. Rows outside the UTC day (by the plan's timestamp) are dropped
  and the kept rows are numbered 0..n-1 across the day's files, as ``sources.read_predictions`` keeps and
  numbers them.
* :class:`FrameDay`, for a day already in memory: csv and SQL sources (read whole by
  ``sources.read_predictions``), or a frame the caller holds. Chunks are fixed row ranges.

Both give the same values (test_drift_scale.py and test_quality.py compare the figures to the last digit).
Representation differs in one place: ``ParquetDay.column`` returns text columns as pandas categories (value
counts without a Python string per row).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from monitoring_pipelines.data import sources
from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.plan.schema import MonitoringPlan

# rows per Arrow batch where a scan only sums (null counts): bounded memory, the same totals at any size
_SCAN_ROWS = 1_000_000


class DayReader(Protocol):
    """What a family may ask of one model-day of the prediction log."""

    rows: int  # rows of the day
    columns: list[str]  # every column the day's log holds (over all its files)

    def column(self, name: str) -> pd.Series | None:
        """All of the day's values of one column, in row order; None when the day's log lacks it."""
        ...

    def chunks(self, columns: Sequence[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
        """The day's rows of ``columns`` (those present), at most ``chunk_rows`` at a time, indexed by row
        number; at least one frame (an empty one for an empty day)."""
        ...

    def frame(self, columns: Sequence[str]) -> pd.DataFrame:
        """All of the day's rows of ``columns`` (those present; none present: the rows with no column)."""
        ...

    def empty(self) -> pd.DataFrame:
        """The day's columns without rows."""
        ...

    def null_counts(self, columns: Sequence[str]) -> dict[str, int]:
        """Nulls (NaN included) per column of ``columns`` present in the day's log."""
        ...


def open_day(plan: MonitoringPlan, day: dt.date) -> DayReader:
    """The reader of ``day``'s prediction log: parquet files read in chunks, other sources read whole.

    Raises ``DataSourceError`` (``sources.MissingDayError`` for a missing day) as ``sources.read_predictions``
    does: the file is missing or unreadable, lacks a logged column, or its timestamps cannot be parsed."""
    if plan.data.predictions.source == "parquet":
        return ParquetDay(plan, day)
    return FrameDay(sources.read_predictions(plan, day))


class FrameDay:
    """A day held in memory as one DataFrame."""

    def __init__(self, frame: pd.DataFrame):
        self._frame = frame
        self.rows = len(frame)
        self.columns = list(frame.columns)

    def column(self, name: str) -> pd.Series | None:
        return self._frame[name] if name in self._frame.columns else None

    def frame(self, columns: Sequence[str]) -> pd.DataFrame:
        present = [c for c in columns if c in self._frame.columns]
        return self._frame[present] if present else pd.DataFrame(index=self._frame.index)

    def chunks(self, columns: Sequence[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
        frame = self.frame(columns)
        for start in range(0, max(self.rows, 1), chunk_rows):
            yield frame.iloc[start : start + chunk_rows]

    def empty(self) -> pd.DataFrame:
        return self._frame.iloc[:0]

    def null_counts(self, columns: Sequence[str]) -> dict[str, int]:
        return {c: int(self._frame[c].isna().sum()) for c in columns if c in self._frame.columns}


@dataclass(frozen=True)
class _DayFile:
    file: sources.DayFile
    schema: pa.Schema
    keep: np.ndarray | None  # rows inside the day; None = every row


class ParquetDay:
    """A day of a parquet prediction log, read one column set and one chunk at a time (never all of it)."""

    def __init__(self, plan: MonitoringPlan, day: dt.date):
        src = plan.data.predictions
        ctx = sources.day_context(plan, day)
        start, end = sources.day_window(day)
        self._files: list[_DayFile] = []
        self.columns: list[str] = []
        self.rows = 0
        for file in sources.prediction_day_files(plan, day):
            try:
                with file.fs.open(file.path, "rb") as fh:
                    pf = pq.ParquetFile(fh)
                    schema = pf.schema_arrow
                    missing = [c for c in plan.logged_columns if c not in schema.names]
                    if missing:
                        raise DataSourceError(f"{ctx}: file {file.shown} lacks column(s) {', '.join(missing)}")
                    ts = pf.read(columns=[src.timestamp]).column(0).to_pandas()
            except sources.READ_ERRORS as exc:
                raise DataSourceError(
                    f"{ctx}: cannot read parquet file {file.shown}: {type(exc).__name__}: {exc}"
                ) from exc
            ts = sources.utc_timestamps(ts.rename(src.timestamp), ctx, f"file {file.shown}")
            keep = ((ts >= start) & (ts < end)).to_numpy()
            self._files.append(_DayFile(file, schema, None if keep.all() else keep))
            self.rows += int(keep.sum())
            self.columns += [c for c in schema.names if c not in self.columns]

    def column(self, name: str) -> pd.Series | None:
        if any(name not in f.schema.names for f in self._files):
            return None
        parts = []
        for f in self._files:
            kind = f.schema.field(name).type
            # text as a dictionary (pandas category): value counts without a Python string per row
            text = [name] if pa.types.is_string(kind) or pa.types.is_large_string(kind) else None
            with f.file.fs.open(f.file.path, "rb") as fh:
                values = pq.ParquetFile(fh, read_dictionary=text).read(columns=[name]).column(0)
            if f.keep is not None:
                values = values.filter(pa.array(f.keep))
            parts.append(values.to_pandas())
        if len(parts) == 1:
            return parts[0]
        if all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
            return pd.Series(pd.api.types.union_categoricals(parts))
        return pd.concat(parts, ignore_index=True)

    def chunks(self, columns: Sequence[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
        produced = False
        for frame in self._frames(columns, chunk_rows):
            if len(frame) or not produced:
                produced = True
                yield frame
        if not produced:
            yield self._no_rows(columns)

    def frame(self, columns: Sequence[str]) -> pd.DataFrame:
        frames = list(self._frames(columns, None))
        kept = [f for f in frames if len(f)] or frames[:1]
        if not kept:
            return self._no_rows(columns)
        return pd.concat(kept) if len(kept) > 1 else kept[0]

    def empty(self) -> pd.DataFrame:
        return self._no_rows(self.columns)

    def null_counts(self, columns: Sequence[str]) -> dict[str, int]:
        present = [c for c in columns if c in self.columns]
        counts = dict.fromkeys(present, 0)
        for table in self._tables(present, _SCAN_ROWS):
            for c in table.column_names:
                counts[c] += int(pc.sum(pc.is_null(table.column(c), nan_is_null=True)).as_py() or 0)
        return counts

    def _no_rows(self, columns: Sequence[str]) -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns if c in self.columns})

    def _tables(self, columns: Sequence[str], batch_size: int | None) -> Iterator[pa.Table | pa.RecordBatch]:
        """Arrow batches of the day's rows of ``columns`` (those present in each file), file by file."""
        for f in self._files:
            with f.file.fs.open(f.file.path, "rb") as fh:
                pf = pq.ParquetFile(fh)
                present = [c for c in columns if c in f.schema.names]
                batches = pf.iter_batches(batch_size=batch_size, columns=present) if batch_size else [pf.read(present)]
                offset = 0
                for batch in batches:
                    n = batch.num_rows
                    if f.keep is not None:
                        batch = batch.filter(pa.array(f.keep[offset : offset + n]))
                    offset += n
                    yield batch

    def _frames(self, columns: Sequence[str], batch_size: int | None) -> Iterator[pd.DataFrame]:
        first = 0
        for table in self._tables(columns, batch_size):
            frame = table.to_pandas() if table.num_columns else pd.DataFrame(index=pd.RangeIndex(table.num_rows))
            frame.index = pd.RangeIndex(first, first + len(frame))
            first += len(frame)
            yield frame
