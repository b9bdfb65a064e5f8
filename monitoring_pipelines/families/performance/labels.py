"""The label join every labelled family rests on: one day's predictions with the labels that arrived for them.

The rules (calculator module doc, "Decisions" and "Bad input"): missing labels are not labels yet, the last
row of an id wins (a relabel), labels outside ``CLASSES`` are left out; relabelled ids and out-of-class
labels of the day's ids are counted. The fairness and comparison steps join with ``join_labels`` too, so
they rest on exactly the labels the performance figures use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

CLASSES = (0, 1)


@dataclass(frozen=True)
class LabelJoin:
    """The day's prediction rows that have a usable label, and what was left out on the way (module doc,
    "Bad input"). ``rows`` keeps the prediction order and holds ``id_col``, the requested columns (all, in
    their order, by default) and the label (under ``as_col``, last), as an inner ``merge`` would."""

    rows: pd.DataFrame
    duplicate_ids: int
    out_of_classes: int


def join_labels(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    id_col: str,
    label_col: str,
    columns: list[str] | None = None,
    as_col: str | None = None,
) -> LabelJoin:
    """Join one day's ``predictions`` with ``labels`` (id + label, from any day) by the rules of this module:
    missing labels are not labels, the last row of an id wins, labels outside ``CLASSES`` are left out;
    relabelled ids and out-of-class labels of the day's ids are counted.

    ``columns``: the prediction columns to keep (default: all); ``as_col``: the name of the label column in
    ``rows`` (default ``label_col``). The fairness and comparison steps can use this so that they rest on
    the same labels as the performance figures (and join in one pass instead of ``DataFrame.merge``).
    """
    as_col = as_col or label_col
    keep = [c for c in (columns if columns is not None else predictions.columns) if c != id_col]
    if as_col in (id_col, *keep):
        raise ValueError(f"the label column name {as_col!r} is taken by a prediction column: pass another as_col")
    # no column selection when every column is kept: on a wide day that would be one more full copy
    left = predictions if columns is None else predictions[[id_col, *keep]]
    known = labels.loc[labels[label_col].notna(), [id_col, label_col]]
    left_ids, label_ids = left[id_col], known[id_col]
    if is_numeric_dtype(left_ids) != is_numeric_dtype(label_ids):
        # an int id in one table and a string id in the other: pandas refuses to merge; compare as text
        left_ids, label_ids = left_ids.astype(str), label_ids.astype(str)

    index = pd.Index(left_ids)
    if not index.is_unique:  # the quality step blocks such a day; still give the merge's answer
        return _join_by_merge(
            left.assign(**{id_col: left_ids}), known.assign(**{id_col: label_ids}), id_col, label_col, as_col
        )
    # one hash pass: the prediction row of every label row (-1: another day's id); the rest is integer work
    pos = index.get_indexer(label_ids)
    mine = pos >= 0
    pos, values = pos[mine], known[label_col].to_numpy()[mine]  # label rows of this day's ids, in input order
    repeated = pd.Series(pos).duplicated(keep="last").to_numpy()  # True on every row but the one that wins
    duplicate_ids = int(np.unique(pos[repeated]).size)
    pos, values = pos[~repeated], values[~repeated]
    in_classes = _in_classes(pd.Series(values, dtype=known[label_col].dtype))
    pos, values = pos[in_classes], values[in_classes]
    order = np.argsort(pos, kind="stable")  # prediction order, as an inner merge on unique left keys gives
    rows = left.take(pos[order])  # the one copy of the day's columns (take: a new frame, not a view)
    rows.index = pd.RangeIndex(len(rows))  # reset_index would copy every column once more
    rows[as_col] = pd.array(values[order], dtype=known[label_col].dtype)
    return LabelJoin(rows=rows, duplicate_ids=duplicate_ids, out_of_classes=int(np.count_nonzero(~in_classes)))


def _join_by_merge(left: pd.DataFrame, known: pd.DataFrame, id_col: str, label_col: str, as_col: str) -> LabelJoin:
    """``join_labels`` when the day repeats a prediction id: every prediction row of the id gets the label."""
    known = known.rename(columns={label_col: as_col})
    mine = known[known[id_col].isin(left[id_col])]
    repeated = mine[id_col].duplicated(keep="last")
    duplicate_ids = int(mine.loc[repeated, id_col].nunique())
    mine = mine[~repeated]
    in_classes = _in_classes(mine[as_col])
    rows = left.merge(mine[in_classes], on=id_col, how="inner")
    return LabelJoin(rows=rows, duplicate_ids=duplicate_ids, out_of_classes=int(np.count_nonzero(~in_classes)))


def _in_classes(values: pd.Series) -> np.ndarray:
    """Whether each (non-missing) label equals one of ``CLASSES`` by value (1, 1.0, True: yes; "1": no)."""
    hit = np.zeros(len(values), dtype=bool)
    for cls in CLASSES:
        hit |= (values == cls).to_numpy(dtype=bool, na_value=False)
    return hit
