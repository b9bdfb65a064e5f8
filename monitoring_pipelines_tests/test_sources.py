"""Tests of monitoring_pipelines.data.sources: file layouts (local, file://, memory://), SQL on PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import uuid

import fsspec
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from monitoring_pipelines.data.reader import FrameDay, ParquetDay, open_day
from monitoring_pipelines.data.sources import MissingDayError, label_state, read_labels, read_predictions, read_table
from monitoring_pipelines.errors import DataSourceError
from monitoring_pipelines.plan.schema import BUNDLED_PLANS_DIR, MonitoringPlan, parse_plan, read_yaml

DAY = dt.date(2026, 1, 5)
URL_ENV = "TEST_SOURCES_DB_URL"


def utc(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def stamps(values: list[str], tz: bool = True) -> pd.DatetimeIndex:
    """Timestamps from ISO text; UTC-aware, or naive with tz=False."""
    return pd.to_datetime(values, utc=tz, format="ISO8601")


# --------------------------------------------------------------------------------------------------------
# helpers


def make_plan(predictions: dict, labels: dict | None = None) -> MonitoringPlan:
    """The bundled plan with its prediction (and label) location replaced; no labels section unless given."""
    raw = read_yaml((BUNDLED_PLANS_DIR / "adult_income.yaml").read_text())
    data = raw["data"]

    def located(section: dict, location: dict) -> dict:
        return {**{k: v for k, v in section.items() if k not in ("source", "path", "table", "url_env")}, **location}

    data["predictions"] = located(data["predictions"], predictions)
    if labels is None:
        del data["labels"]
    else:
        data["labels"] = located(data["labels"], labels)
    return parse_plan(raw, "test.yaml")


PLAN = make_plan({"source": "parquet", "path": "/unused"})


def log_frame(stamps, prefix: str = "r") -> pd.DataFrame:
    """A prediction log with every column the bundled plan expects, one row per timestamp."""
    n = len(stamps)
    p = PLAN.data.predictions
    cols = {
        p.timestamp: stamps,
        p.id: [f"{prefix}{i}" for i in range(n)],
        p.prediction: [i % 2 for i in range(n)],
        p.score: [0.1 + 0.8 * (i % 2) for i in range(n)],
        p.latency_ms: [12.5] * n,
        p.status: ["ok"] * n,
        p.model_version: ["1"] * n,
    }
    cols |= {c: [float(i) for i in range(n)] for c in PLAN.features.numerical}
    cols |= {c: ["a"] * n for c in [*PLAN.features.categorical, *PLAN.features.context]}
    return pd.DataFrame(cols)


def labels_frame(rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["request_id", "label", "labelled_at"]).assign(
        labelled_at=lambda d: stamps(d["labelled_at"])
    )


def write(url: str, df: pd.DataFrame, fmt: str = "parquet") -> None:
    fs, path = fsspec.core.url_to_fs(str(url))
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    with fs.open(path, "wb") as f:
        if fmt == "parquet":
            df.to_parquet(f, index=False)
        else:
            f.write(df.to_csv(index=False).encode())


def day_rows(prefix: str, day: str = "2026-01-05", n: int = 3) -> pd.DataFrame:
    return log_frame(pd.to_datetime([f"{day} {h:02d}:00" for h in range(n)], utc=True), prefix=prefix)


@pytest.fixture
def mem_root():
    root = f"memory://sources-{uuid.uuid4().hex}"
    yield root
    fs, path = fsspec.core.url_to_fs(root)
    if fs.exists(path):
        fs.rm(path, recursive=True)


# --------------------------------------------------------------------------------------------------------
# prediction files


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_folder_mode_reads_exactly_the_days_file(tmp_path, fmt):
    write(tmp_path / f"2026-01-04.{fmt}", day_rows("old", "2026-01-04"), fmt)
    write(tmp_path / f"2026-01-05.{fmt}", day_rows("cur"), fmt)
    write(tmp_path / f"2026-01-06.{fmt}", day_rows("new", "2026-01-06"), fmt)
    df = read_predictions(make_plan({"source": fmt, "path": str(tmp_path)}), DAY)
    assert df["request_id"].tolist() == ["cur0", "cur1", "cur2"]
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"
    assert df["ts"].tolist() == [utc("2026-01-05 00:00"), utc("2026-01-05 01:00"), utc("2026-01-05 02:00")]
    assert set(PLAN.logged_columns) <= set(df.columns)


def test_path_with_env_var_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SOURCES_ROOT", str(tmp_path))
    write(tmp_path / "preds" / "2026-01-05.parquet", day_rows("cur"))
    df = read_predictions(make_plan({"source": "parquet", "path": "${TEST_SOURCES_ROOT}/preds"}), DAY)
    assert len(df) == 3


def test_unset_env_var_names_model_and_field():
    plan = make_plan({"source": "parquet", "path": "${TEST_SOURCES_UNSET_VAR}/preds"})
    with pytest.raises(DataSourceError, match=r"adult_income.*data\.predictions\.path.*TEST_SOURCES_UNSET_VAR"):
        read_predictions(plan, DAY)


def test_date_template(tmp_path):
    for day in ("2026-01-04", "2026-01-05"):
        write(tmp_path / f"dt={day}" / "part-0.parquet", day_rows(day, day))
    plan = make_plan({"source": "parquet", "path": f"{tmp_path}/dt={{date}}/part-0.parquet"})
    assert read_predictions(plan, DAY)["request_id"].tolist() == ["2026-01-050", "2026-01-051", "2026-01-052"]


def test_date_template_with_glob_reads_every_part_of_the_day(tmp_path):
    write(tmp_path / "2026-01-05" / "part-0.parquet", day_rows("a"))
    write(tmp_path / "2026-01-05" / "part-1.parquet", day_rows("b"))
    write(tmp_path / "2026-01-06" / "part-0.parquet", day_rows("c", "2026-01-06"))
    plan = make_plan({"source": "parquet", "path": f"{tmp_path}/{{date}}/part-*.parquet"})
    assert sorted(read_predictions(plan, DAY)["request_id"]) == ["a0", "a1", "a2", "b0", "b1", "b2"]


def test_glob_keeps_only_the_days_rows_across_files(tmp_path):
    first = stamps(["2026-01-04 12:00", "2026-01-04 23:59:59.999999", "2026-01-05 00:00", "2026-01-05 13:30"])
    # Athens is UTC+2 in January: local dates of the 6th that are UTC times of the 5th (b0, b2) belong to the day
    second = stamps(["2026-01-06 01:59:59.999999", "2026-01-06 02:00", "2026-01-06 01:00"], tz=False).tz_localize(
        "Europe/Athens"
    )
    write(tmp_path / "log-a.parquet", log_frame(first, "a"))
    write(tmp_path / "log-b.parquet", log_frame(second, "b"))
    df = read_predictions(make_plan({"source": "parquet", "path": f"{tmp_path}/log-*.parquet"}), DAY)
    assert len(df) == 4
    assert sorted(df["request_id"]) == ["a2", "a3", "b0", "b2"]
    assert df["ts"].between(utc("2026-01-05"), utc("2026-01-05 23:59:59.999999")).all()


def test_glob_matching_nothing_is_an_error(tmp_path):
    plan = make_plan({"source": "csv", "path": f"{tmp_path}/log-*.csv"})
    with pytest.raises(DataSourceError, match=r"no prediction file matches .*log-\*\.csv"):
        read_predictions(plan, DAY)


@pytest.mark.parametrize("layout", ["folder", "glob"])
def test_memory_filesystem(mem_root, layout):
    write(f"{mem_root}/preds/2026-01-05.parquet", day_rows("cur"))
    write(f"{mem_root}/preds/2026-01-06.parquet", day_rows("new", "2026-01-06"))
    path = f"{mem_root}/preds" if layout == "folder" else f"{mem_root}/preds/*.parquet"
    df = read_predictions(make_plan({"source": "parquet", "path": path}), DAY)
    assert df["request_id"].tolist() == ["cur0", "cur1", "cur2"]


def test_file_url(tmp_path):
    write(tmp_path / "2026-01-05.csv", day_rows("cur"), "csv")
    df = read_predictions(make_plan({"source": "csv", "path": tmp_path.as_uri()}), DAY)
    assert len(df) == 3


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_naive_timestamps_are_taken_as_utc(tmp_path, fmt):
    naive = stamps(["2026-01-05 00:00", "2026-01-05 23:30", "2026-01-06 00:00"], tz=False)
    assert naive.tz is None
    write(tmp_path / f"2026-01-05.{fmt}", log_frame(naive), fmt)
    df = read_predictions(make_plan({"source": fmt, "path": str(tmp_path)}), DAY)
    assert df["ts"].tolist() == [utc("2026-01-05 00:00"), utc("2026-01-05 23:30")]


def test_missing_day_file_names_model_day_and_path(tmp_path, mem_root):
    write(tmp_path / "2026-01-04.parquet", day_rows("old", "2026-01-04"))
    with pytest.raises(DataSourceError) as err:
        read_predictions(make_plan({"source": "parquet", "path": str(tmp_path)}), DAY)
    msg = str(err.value)
    assert "adult_income" in msg and "2026-01-05" in msg and str(tmp_path / "2026-01-05.parquet") in msg

    with pytest.raises(DataSourceError, match=r"memory://.*/preds/2026-01-05\.csv"):
        read_predictions(make_plan({"source": "csv", "path": f"{mem_root}/preds"}), DAY)


def test_missing_columns_are_named(tmp_path):
    write(tmp_path / "2026-01-05.parquet", day_rows("cur").drop(columns=["latency_ms", "age"]))
    with pytest.raises(DataSourceError) as err:
        read_predictions(make_plan({"source": "parquet", "path": str(tmp_path)}), DAY)
    msg = str(err.value)
    assert "adult_income" in msg and "2026-01-05" in msg and str(tmp_path / "2026-01-05.parquet") in msg
    assert "latency_ms" in msg and "age" in msg and "hours_per_week" not in msg


def test_corrupt_file_names_the_file_and_keeps_the_cause(tmp_path):
    (tmp_path / "2026-01-05.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataSourceError) as err:
        read_predictions(make_plan({"source": "parquet", "path": str(tmp_path)}), DAY)
    msg = str(err.value)
    assert "adult_income" in msg and "2026-01-05" in msg and str(tmp_path / "2026-01-05.parquet") in msg
    assert err.value.__cause__ is not None


def test_unparseable_timestamp_names_the_column(tmp_path):
    df = day_rows("cur").assign(ts=["yesterday", "today", "tomorrow"])
    write(tmp_path / "2026-01-05.csv", df, "csv")
    with pytest.raises(DataSourceError, match=r"adult_income.*2026-01-05.*'ts'"):
        read_predictions(make_plan({"source": "csv", "path": str(tmp_path)}), DAY)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_empty_day_gives_an_empty_frame_with_the_columns(tmp_path, fmt):
    write(tmp_path / f"2026-01-05.{fmt}", day_rows("cur").iloc[0:0], fmt)
    df = read_predictions(make_plan({"source": fmt, "path": str(tmp_path)}), DAY)
    assert len(df) == 0
    assert set(PLAN.logged_columns) <= set(df.columns)


def test_day_must_be_a_date(tmp_path):
    with pytest.raises(TypeError):
        read_predictions(make_plan({"source": "parquet", "path": str(tmp_path)}), dt.datetime(2026, 1, 5))


# --------------------------------------------------------------------------------------------------------
# the day reader (data.reader): what the families read, equal to read_predictions


def test_parquet_day_reader_gives_read_predictions_values_column_by_column_and_chunk_by_chunk(tmp_path):
    """Two files, several row groups each, rows of the neighbouring days, nulls: every way of reading the day
    gives read_predictions' rows, numbered 0..n-1, and no chunk is larger than asked."""
    first = log_frame(pd.date_range("2026-01-04 20:00", periods=12, freq="h", tz="UTC"), "a")
    second = log_frame(pd.date_range("2026-01-05 18:00", periods=9, freq="h", tz="UTC"), "b")
    first.loc[[5, 7], "age"] = np.nan
    second.loc[[1], "occupation"] = None
    for name, frame in (("log-a", first), ("log-b", second)):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False, row_group_size=4)
    plan = make_plan({"source": "parquet", "path": f"{tmp_path}/log-*.parquet"})
    whole = read_predictions(plan, DAY)
    day = open_day(plan, DAY)
    assert isinstance(day, ParquetDay)
    assert day.rows == len(whole) == 8 + 6
    assert day.columns == list(whole.columns)
    pd.testing.assert_series_equal(day.column("age"), whole["age"], check_names=False)
    occupation = day.column("occupation")
    assert isinstance(occupation.dtype, pd.CategoricalDtype)  # text as a dictionary: compact
    assert occupation.astype(object).where(occupation.notna(), None).tolist() == whole["occupation"].tolist()
    assert day.column("no_such_column") is None
    columns = ["request_id", "age", "occupation"]
    chunks = list(day.chunks(columns, 3))
    assert max(len(c) for c in chunks) <= 3 and len(chunks) >= 5  # row groups of 4 rows, cut at 3
    pd.testing.assert_frame_equal(pd.concat(chunks), whole[columns])
    pd.testing.assert_frame_equal(day.frame(columns), whole[columns])
    assert day.null_counts(["age", "occupation", "no_such_column"]) == {"age": 2, "occupation": 1}
    assert list(day.empty().columns) == list(whole.columns) and len(day.empty()) == 0


def test_other_sources_are_read_whole_and_chunked_by_fixed_rows(tmp_path):
    write(tmp_path / "2026-01-05.csv", day_rows("cur", n=5), "csv")
    plan = make_plan({"source": "csv", "path": str(tmp_path)})
    day = open_day(plan, DAY)
    assert isinstance(day, FrameDay)
    whole = read_predictions(plan, DAY)
    assert [len(c) for c in day.chunks(["request_id"], 2)] == [2, 2, 1]
    pd.testing.assert_frame_equal(day.frame(["request_id", "age"]), whole[["request_id", "age"]])
    assert day.rows == 5 and day.column("request_id").tolist() == whole["request_id"].tolist()


def test_parquet_day_reader_fails_like_read_predictions(tmp_path):
    plan = make_plan({"source": "parquet", "path": str(tmp_path)})
    with pytest.raises(MissingDayError, match=r"model adult_income, day 2026-01-05: prediction file not found"):
        open_day(plan, DAY)
    write(tmp_path / "2026-01-05.parquet", day_rows("cur").drop(columns=["age"]))
    with pytest.raises(DataSourceError, match=r"model adult_income, day 2026-01-05: file .* lacks column\(s\) age"):
        open_day(plan, DAY)
    (tmp_path / "2026-01-05.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataSourceError, match=r"cannot read parquet file .*2026-01-05.parquet") as err:
        open_day(plan, DAY)
    assert err.value.__cause__ is not None


# --------------------------------------------------------------------------------------------------------
# label files


def labelled_plan(labels: dict) -> MonitoringPlan:
    return make_plan({"source": "parquet", "path": "/unused"}, labels)


def test_labels_from_arrival_files_latest_wins(tmp_path):
    # an arrival file older than the day is never read: make it unreadable to prove it
    (tmp_path / "2026-01-04.parquet").write_bytes(b"not parquet")
    write(tmp_path / "2026-01-05.parquet", labels_frame([("r1", 0, "2026-01-05 10:00"), ("r2", 1, "2026-01-05 11:00")]))
    write(tmp_path / "2026-01-07.parquet", labels_frame([("r1", 1, "2026-01-07 09:00"), ("r3", 0, "2026-01-07 09:30")]))
    # the latest labelled_at wins, not the latest file: r2's entry in the 6th's file is older
    write(tmp_path / "2026-01-06.parquet", labels_frame([("r1", 0, "2026-01-06 08:00"), ("r2", 0, "2026-01-05 09:00")]))
    df = read_labels(labelled_plan({"source": "parquet", "path": str(tmp_path)}), DAY)
    assert list(df.columns) == ["request_id", "label", "labelled_at"]
    assert len(df) == 3
    got = {r.request_id: (r.label, r.labelled_at) for r in df.itertuples()}
    assert got == {
        "r1": (1, utc("2026-01-07 09:00")),
        "r2": (1, utc("2026-01-05 11:00")),
        "r3": (0, utc("2026-01-07 09:30")),
    }


def test_labels_keep_duplicates_in_arrival_order(tmp_path):
    """keep_duplicates=True: every row of a relabelled id, ordered by labelled_at, so the last one is the one
    the default keeps (performance.compute counts the relabels and applies the same last-row-wins rule)."""
    write(tmp_path / "2026-01-05.parquet", labels_frame([("r1", 0, "2026-01-05 10:00"), ("r2", 1, "2026-01-05 11:00")]))
    write(tmp_path / "2026-01-07.parquet", labels_frame([("r1", 1, "2026-01-07 09:00")]))
    write(tmp_path / "2026-01-06.parquet", labels_frame([("r1", 0, "2026-01-06 08:00"), ("r2", 0, "2026-01-05 09:00")]))
    plan = labelled_plan({"source": "parquet", "path": str(tmp_path)})
    raw = read_labels(plan, DAY, keep_duplicates=True)
    assert raw[["request_id", "label"]].values.tolist() == [["r2", 0], ["r1", 0], ["r2", 1], ["r1", 0], ["r1", 1]]
    assert raw["labelled_at"].is_monotonic_increasing
    deduped = read_labels(plan, DAY)
    assert (
        raw.drop_duplicates("request_id", keep="last")
        .sort_values("request_id")
        .reset_index(drop=True)
        .equals(deduped.sort_values("request_id").reset_index(drop=True))
    )


def test_labels_template_on_memory_fs_skips_older_arrivals(mem_root):
    write(f"{mem_root}/labels/arrived=2026-01-04/l.csv", labels_frame([("r9", 1, "2026-01-04 10:00")]), "csv")
    write(f"{mem_root}/labels/arrived=2026-01-06/l.csv", labels_frame([("r1", 1, "2026-01-06 10:00")]), "csv")
    df = read_labels(labelled_plan({"source": "csv", "path": f"{mem_root}/labels/arrived={{date}}/l.csv"}), DAY)
    assert df["request_id"].tolist() == ["r1"]
    assert df["labelled_at"].tolist() == [utc("2026-01-06 10:00")]


def test_labels_template_with_glob_parts(tmp_path):
    write(tmp_path / "2026-01-04" / "part-0.parquet", labels_frame([("r9", 1, "2026-01-04 10:00")]))
    write(tmp_path / "2026-01-05" / "part-0.parquet", labels_frame([("r1", 1, "2026-01-05 10:00")]))
    write(tmp_path / "2026-01-05" / "part-1.parquet", labels_frame([("r2", 0, "2026-01-05 11:00")]))
    write(tmp_path / "2026-01-05" / "other.parquet", labels_frame([("r8", 0, "2026-01-05 11:00")]))
    df = read_labels(labelled_plan({"source": "parquet", "path": f"{tmp_path}/{{date}}/part-?.parquet"}), DAY)
    assert df["request_id"].tolist() == ["r1", "r2"]


def test_labels_glob_filters_on_labelled_at(tmp_path):
    write(tmp_path / "batch-1.parquet", labels_frame([("r0", 1, "2026-01-04 23:59:59"), ("r1", 0, "2026-01-05 00:00")]))
    write(tmp_path / "batch-2.parquet", labels_frame([("r2", 1, "2026-01-08 00:00")]))
    df = read_labels(labelled_plan({"source": "parquet", "path": f"{tmp_path}/batch-*.parquet"}), DAY)
    assert sorted(df["request_id"]) == ["r1", "r2"]


def test_no_labels_yet_gives_an_empty_frame(tmp_path):
    write(tmp_path / "2026-01-04.parquet", labels_frame([("r9", 1, "2026-01-04 10:00")]))
    for path in (str(tmp_path), str(tmp_path / "not-created-yet")):
        df = read_labels(labelled_plan({"source": "parquet", "path": path}), DAY)
        assert len(df) == 0
        assert list(df.columns) == ["request_id", "label", "labelled_at"]


def test_labels_missing_column_and_missing_config(tmp_path):
    write(tmp_path / "2026-01-05.parquet", labels_frame([("r1", 1, "2026-01-05 10:00")]).drop(columns="label"))
    with pytest.raises(DataSourceError, match=r"adult_income.*2026-01-05\.parquet.*label"):
        read_labels(labelled_plan({"source": "parquet", "path": str(tmp_path)}), DAY)
    with pytest.raises(DataSourceError, match=r"adult_income.*no data\.labels"):
        read_labels(PLAN, DAY)
    with pytest.raises(DataSourceError, match=r"adult_income.*no data\.labels"):
        label_state(PLAN)


def test_label_state_changes_when_a_label_file_lands(tmp_path):
    plan = labelled_plan({"source": "parquet", "path": str(tmp_path)})
    assert label_state(plan) == {}
    write(tmp_path / "2026-01-05.parquet", labels_frame([("r1", 1, "2026-01-05 10:00")]))
    (tmp_path / "notes.txt").write_text("not a label file")
    first = label_state(plan)
    assert list(first) == [str(tmp_path / "2026-01-05.parquet")]
    size = (tmp_path / "2026-01-05.parquet").stat().st_size
    assert first[str(tmp_path / "2026-01-05.parquet")].startswith(f"{size}:")
    assert label_state(plan) == first

    # a corrupt new file is fingerprinted all the same: contents are never read
    (tmp_path / "2026-01-06.parquet").write_bytes(b"garbage")
    second = label_state(plan)
    assert second != first and set(first) < set(second)


def test_label_state_sees_a_same_size_rewrite(tmp_path):
    plan = labelled_plan({"source": "csv", "path": str(tmp_path)})
    label_file = tmp_path / "2026-01-05.csv"
    write(label_file, labels_frame([("r1", 1, "2026-01-05 10:00")]), "csv")
    os.utime(label_file, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    first = label_state(plan)
    write(label_file, labels_frame([("r1", 0, "2026-01-05 10:00")]), "csv")
    os.utime(label_file, ns=(1_700_000_001_000_000_000, 1_700_000_001_000_000_000))
    second = label_state(plan)
    assert first.keys() == second.keys() and first != second


def test_label_state_on_memory_fs_sees_a_rewrite(mem_root):
    plan = labelled_plan({"source": "csv", "path": f"{mem_root}/labels/*.csv"})
    write(f"{mem_root}/labels/a.csv", labels_frame([("r1", 1, "2026-01-05 10:00")]), "csv")
    first = label_state(plan)
    write(
        f"{mem_root}/labels/a.csv", labels_frame([("r1", 1, "2026-01-05 10:00"), ("r2", 0, "2026-01-05 11:00")]), "csv"
    )
    second = label_state(plan)
    assert list(first) == list(second) and first != second


# --------------------------------------------------------------------------------------------------------
# read_table


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_read_table_local_and_memory(tmp_path, mem_root, fmt):
    df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    for url in (str(tmp_path / f"ref.{fmt}"), f"{mem_root}/ref.{fmt}"):
        write(url, df, fmt)
        pd.testing.assert_frame_equal(read_table(url, fmt), df)
    with pytest.raises(DataSourceError, match="nope"):
        read_table(str(tmp_path / f"nope.{fmt}"), fmt)


def test_read_table_corrupt_file(tmp_path):
    (tmp_path / "ref.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(DataSourceError, match=r"ref\.parquet") as err:
        read_table(str(tmp_path / "ref.parquet"), "parquet")
    assert err.value.__cause__ is not None


# --------------------------------------------------------------------------------------------------------
# SQL


@pytest.fixture
def pg(pg_url, monkeypatch):
    """An engine on the test database and a factory of uniquely named tables, dropped afterwards."""
    monkeypatch.setenv(URL_ENV, pg_url)
    engine = sa.create_engine(pg_url)
    created: list[tuple[str, str | None]] = []

    def table(base: str, schema: str | None = None) -> str:
        name = f"{base}_{uuid.uuid4().hex[:10]}"
        created.append((name, schema))
        return f"{schema}.{name}" if schema else name

    yield engine, table
    for name, schema in created:
        sa.Table(name, sa.MetaData(), schema=schema).drop(engine, checkfirst=True)
    engine.dispose()


def sql_plan(pred_table: str, label_table: str | None = None, **mapping) -> MonitoringPlan:
    labels = {"source": "sql", "table": label_table, "url_env": URL_ENV} if label_table else None
    return make_plan({"source": "sql", "table": pred_table, "url_env": URL_ENV, **mapping}, labels)


def to_sql(engine, df: pd.DataFrame, qualified: str) -> None:
    schema, _, name = qualified.rpartition(".")
    df.to_sql(name, engine, schema=schema or None, index=False)


BOUNDARY = [
    "2026-01-04 23:59:59.999999",
    "2026-01-05 00:00",
    "2026-01-05 12:00",
    "2026-01-05 23:59:59.999999",
    "2026-01-06 00:00",
]


@pytest.fixture
def bound_statements():
    """SELECT statements and parameters every engine sends to its DB-API cursor."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", capture)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", capture)


def test_postgres_predictions_exclude_rows_just_outside_the_day(pg, bound_statements):
    engine, table = pg
    name = table("preds")
    to_sql(engine, log_frame(stamps(BOUNDARY)), name)
    df = read_predictions(sql_plan(name), DAY)
    assert df["request_id"].tolist() == ["r1", "r2", "r3"]
    assert df["ts"].tolist() == [utc(s) for s in BOUNDARY[1:4]]
    assert str(df["ts"].dtype).endswith(", UTC]")

    query, params = next((s, p) for s, p in bound_statements if name in s)
    assert "2026" not in query
    assert params == {"start": dt.datetime(2026, 1, 5, tzinfo=dt.UTC), "end": dt.datetime(2026, 1, 6, tzinfo=dt.UTC)}


def test_postgres_naive_column_is_read_as_utc_whatever_the_session_zone(pg, monkeypatch):
    engine, table = pg
    name = table("naive")
    to_sql(engine, log_frame(stamps(BOUNDARY, tz=False)), name)
    monkeypatch.setenv("PGTZ", "Asia/Tokyo")  # libpq's default session time zone for new connections
    df = read_predictions(sql_plan(name), DAY)
    assert df["ts"].tolist() == [utc(s) for s in BOUNDARY[1:4]]


def test_postgres_quoted_identifiers_and_schema(pg):
    engine, table = pg
    name = table("we\"ird o'preds", schema="public")
    frame = log_frame(stamps(BOUNDARY)).rename(columns={"ts": 'it\'s "ts"'})
    to_sql(engine, frame, name)
    df = read_predictions(sql_plan(name, timestamp='it\'s "ts"'), DAY)
    assert len(df) == 3


def test_postgres_missing_column_and_missing_table(pg):
    engine, table = pg
    name = table("preds")
    to_sql(engine, log_frame(stamps(BOUNDARY)).drop(columns="status"), name)
    with pytest.raises(DataSourceError, match=rf"adult_income.*2026-01-05.*{name}.*status"):
        read_predictions(sql_plan(name), DAY)
    with pytest.raises(DataSourceError, match=r"adult_income.*2026-01-05.*no_such_table") as err:
        read_predictions(sql_plan("no_such_table"), DAY)
    assert isinstance(err.value.__cause__, sa.exc.ProgrammingError)


def test_postgres_labels_and_label_state(pg):
    engine, table = pg
    preds, labels = table("preds"), table("labels")
    to_sql(engine, log_frame(stamps(BOUNDARY)), preds)
    to_sql(
        engine,
        labels_frame(
            [
                ("r0", 1, "2026-01-04 23:59:59"),
                ("r1", 0, "2026-01-05 09:00"),
                ("r1", 1, "2026-01-06 09:00"),
                ("r2", 1, "2026-01-05 10:00"),
            ]
        ),
        labels,
    )
    plan = sql_plan(preds, labels)
    df = read_labels(plan, DAY)
    assert sorted(df[["request_id", "label"]].values.tolist()) == [["r1", 1], ["r2", 1]]

    before = label_state(plan)
    assert before["count"] == "4"
    assert label_state(plan) == before
    labels_frame([("r3", 0, "2026-01-07 08:00")]).to_sql(labels, engine, if_exists="append", index=False)
    after = label_state(plan)
    assert after["count"] == "5" and after["max_labelled_at"] != before["max_labelled_at"]


def test_url_env_unset_or_wrong_driver(monkeypatch):
    plan = sql_plan("preds")
    monkeypatch.delenv(URL_ENV, raising=False)
    with pytest.raises(DataSourceError, match=rf"adult_income.*{URL_ENV} is not set"):
        read_predictions(plan, DAY)
    monkeypatch.setenv(URL_ENV, "postgresql://postgres@127.0.0.1:5432/test")  # psycopg v3: not installed
    with pytest.raises(DataSourceError, match=r"postgresql\+psycopg2://"):
        read_predictions(plan, DAY)


def test_sqlite_predictions_and_labels(tmp_path, monkeypatch, bound_statements):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    monkeypatch.setenv(URL_ENV, url)
    engine = sa.create_engine(url)
    to_sql(engine, log_frame(stamps(BOUNDARY, tz=False)), "preds")
    to_sql(
        engine,
        labels_frame([("r1", 0, "2026-01-04 09:00"), ("r2", 0, "2026-01-05 09:00"), ("r2", 1, "2026-01-05 10:00")]),
        "labels",
    )
    engine.dispose()
    plan = sql_plan("preds", "labels")

    df = read_predictions(plan, DAY)
    assert df["ts"].tolist() == [utc(s) for s in BOUNDARY[1:4]]
    query, params = next((s, p) for s, p in bound_statements if "preds" in s)
    assert "2026" not in query and len(params) == 2

    labels = read_labels(plan, DAY)
    assert labels[["request_id", "label"]].values.tolist() == [["r2", 1]]
    assert label_state(plan) == {"max_labelled_at": "2026-01-05 10:00:00.000000", "count": "3"}
