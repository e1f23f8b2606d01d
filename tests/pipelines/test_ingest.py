"""The ingest pipeline on `raw_samples` from every kind of source a Kedro catalog can describe.

The same rows through Parquet, a CSV file, PostgreSQL and CSV over HTTP must give the same canonical
table (same data hash); a source that cannot be read fails loudly with a message naming the cause.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.runner import SequentialRunner

from fusion.config import free_port
from fusion.names import CLEAN, INGEST_REPORT, QUARANTINE, RAW
from fusion.errors import DataValidationError
from fusion.pipelines.ingest.nodes import describe_canonical, to_canonical
from fusion.pipelines.ingest.pipeline import create_pipeline as ingest_pipeline
from fusion.pipelines.validate.pipeline import create_pipeline as validate_pipeline

WINDOW = 128  # features.window of conf/base


def run_source(raw_config: dict, data: dict, pipe=None, **params) -> dict:
    "Free outputs of `pipe` (default: ingest) run with `raw_samples` built from the catalog entry `raw_config`."
    catalog = DataCatalog.from_config({RAW: raw_config})
    catalog["params:data"] = MemoryDataset(data)
    for name, value in params.items():
        catalog[f"params:{name}"] = MemoryDataset(value)
    outputs = SequentialRunner().run(pipe or ingest_pipeline(), catalog)
    return {name: ds.load() for name, ds in outputs.items()}


def causes(err: BaseException) -> Iterator[BaseException]:
    "`err` and the exceptions it was raised from."
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


def csv_source(path: Path) -> dict:
    return {"type": "pandas.CSVDataset", "filepath": str(path)}


# --- one table, four sources ---------------------------------------------------------------------

@pytest.fixture
def sql_table(postgres_url: str, small_watch: pd.DataFrame) -> Iterator[str]:
    "`small_watch` written to a uniquely named PostgreSQL table, dropped afterwards."
    name = f"raw_samples_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_url)
    small_watch.to_sql(name, engine, index=False)
    yield name
    with engine.begin() as con:
        con.execute(sa.text(f'drop table if exists "{name}"'))
    engine.dispose()


@pytest.fixture
def sources(tmp_path, small_watch, sql_table, postgres_url, http_server) -> dict[str, dict]:
    "Catalog entries for `small_watch` as Parquet, CSV file, SQL query and CSV over HTTP."
    small_watch.to_parquet(tmp_path / "raw.parquet")
    small_watch.to_csv(tmp_path / "raw.csv", index=False)
    served = f"raw_{uuid.uuid4().hex[:12]}.csv"
    small_watch.to_csv(http_server.root / served, index=False)
    return {
        "parquet": {"type": "pandas.ParquetDataset", "filepath": str(tmp_path / "raw.parquet")},
        "csv": csv_source(tmp_path / "raw.csv"),
        "sql": {"type": "pandas.SQLQueryDataset", "sql": f'select * from "{sql_table}" order by series_id, t',
                "credentials": {"con": postgres_url}},
        "http": {"type": "pandas.CSVDataset", "filepath": f"{http_server.url}/{served}"},
    }


def test_every_source_gives_the_same_data_hash_and_counts(sources, small_watch, data_params):
    expected = describe_canonical(to_canonical(small_watch, data_params))
    reports = {name: run_source(config, data_params)[INGEST_REPORT] for name, config in sources.items()}
    got = {name: (r["data_hash"], r["rows"], r["series"], r["labels"]) for name, r in reports.items()}
    labels = {str(k): int(v) for k, v in small_watch["label"].astype(str).value_counts().items()}
    assert got == {name: (expected["data_hash"], 1800, 6, labels) for name in sources}
    assert reports["sql"]["channels"] == ["ax", "ay", "az", "wx", "wy", "wz"]


def test_data_hash_changes_with_one_value(sources, small_watch, data_params, tmp_path):
    changed = small_watch.copy()
    changed.loc[17, "ay"] += 0.5
    changed.to_csv(tmp_path / "changed.csv", index=False)
    before = run_source(sources["csv"], data_params)[INGEST_REPORT]
    after = run_source(csv_source(tmp_path / "changed.csv"), data_params)[INGEST_REPORT]
    assert (after["rows"], after["series"]) == (before["rows"], before["series"])
    assert after["data_hash"] != before["data_hash"]


# --- sources that cannot be read ------------------------------------------------------------------

def test_unreachable_database_fails_naming_the_port(data_params):
    port = free_port()
    config = {"type": "pandas.SQLQueryDataset", "sql": "select * from raw_samples",
              "credentials": {"con": f"postgresql+psycopg2://postgres@127.0.0.1:{port}/test"}}
    with pytest.raises(DatasetError, match=rf"(?s)^raw_samples: Failed while loading data.*SQLQueryDataset"
                                           rf".*127\.0\.0\.1\", port {port} failed: Connection refused"):
        run_source(config, data_params)


def test_unreachable_http_server_fails_naming_the_address(data_params):
    port = free_port()
    config = {"type": "pandas.CSVDataset", "filepath": f"http://127.0.0.1:{port}/raw.csv"}
    with pytest.raises(DatasetError, match=rf"(?s)^raw_samples: Failed while loading data.*127\.0\.0\.1:{port}/raw\.csv"
                                           r".*urlopen error \[Errno 111\] Connection refused"):
        run_source(config, data_params)


def test_missing_file_over_http_fails_with_404(data_params, http_server):
    config = {"type": "pandas.CSVDataset", "filepath": f"{http_server.url}/no_such_{uuid.uuid4().hex}.csv"}
    with pytest.raises(DatasetError, match=r"HTTP Error 404: File not found"):
        run_source(config, data_params)


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (lambda line: line.replace(",", ',"', 1), "EOF inside string starting at row 4"),
        (lambda line: line + ",1,2", "Expected 11 fields in line 5, saw 13"),
    ],
    ids=["unbalanced-quote", "extra-fields"],
)
def test_malformed_csv_fails_with_the_parser_error(tmp_path, small_watch, data_params, corrupt, match):
    lines = small_watch.head(10).to_csv(index=False).splitlines()
    lines[4] = corrupt(lines[4])  # line 5 of the file (pandas counts it as row 4 from 0, line 5 from 1)
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=rf"(?s)^raw_samples: Failed while loading data.*bad\.csv.*{match}") as info:
        run_source(csv_source(tmp_path / "bad.csv"), data_params)
    assert any(isinstance(e, pd.errors.ParserError) for e in causes(info.value))


def test_empty_csv_file_fails(tmp_path, data_params):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match=r"(?s)empty\.csv.*No columns to parse from file") as info:
        run_source(csv_source(tmp_path / "empty.csv"), data_params)
    assert any(isinstance(e, pd.errors.EmptyDataError) for e in causes(info.value))


def test_header_only_csv_is_reported_empty(tmp_path, small_watch, data_params):
    small_watch.head(0).to_csv(tmp_path / "header.csv", index=False)
    with pytest.raises(DataValidationError, match=r"^raw_samples is empty: the source returned no rows$"):
        run_source(csv_source(tmp_path / "header.csv"), data_params)


def test_missing_channel_column_is_named(tmp_path, small_watch, data_params):
    small_watch.drop(columns=["wz"]).to_csv(tmp_path / "no_wz.csv", index=False)
    with pytest.raises(DataValidationError, match=r"raw_samples lacks column\(s\) \['wz'\]; it has \['series_id', 't', "
                                                  r"'ax', 'ay', 'az', 'wx', 'wy', 'label', 'subject', 'side'\]"):
        run_source(csv_source(tmp_path / "no_wz.csv"), data_params)


def test_non_numeric_channel_value_is_quarantined_not_dropped(tmp_path, small_watch, data_params):
    raw = small_watch.astype({"ax": "object"})
    raw.loc[7, "ax"] = "1.2.3"
    raw.to_csv(tmp_path / "text_in_ax.csv", index=False)
    pipe = ingest_pipeline() + validate_pipeline().only_nodes("split_valid")
    out = run_source(csv_source(tmp_path / "text_in_ax.csv"), data_params, pipe, **{"features.window": WINDOW})
    quarantine, clean = out[QUARANTINE], out[CLEAN]
    assert quarantine[["source_row", "series_id", "t", "reason"]].to_dict("records") == [
        {"source_row": 7, "series_id": str(small_watch.loc[7, "series_id"]), "t": 7, "reason": "non_finite_value"}]
    assert pd.isna(quarantine.loc[0, "ax"]) and quarantine.loc[0, "ay"] == pytest.approx(small_watch.loc[7, "ay"])
    assert (out[INGEST_REPORT]["rows"], len(clean), len(quarantine)) == (1800, 1799, 1)
    assert clean["ax"].notna().all()
