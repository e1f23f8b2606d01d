"""Shared fixtures for the fusion tests (shared helpers that are not fixtures live in tests/support/)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from tests.support.models import canonical_slice, instances_of, train_model, write_bundle
from tests.support.http import serve_directory
from tests.support.project import ExportedRun, run_default_pipeline

# --- data sources: real sample data, PostgreSQL, a local HTTP server ------------------------------
# Used by test_sources.py, test_validate.py and test_other_dataset.py.

ROOT = Path(__file__).resolve().parents[1]  # the project root (pyproject.toml with [tool.kedro])
WATCH_PARQUET = ROOT / "data" / "01_raw" / "watch_long.parquet"
PG_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"  # the machine's PostgreSQL, trust auth
PG_DATABASE = "test"
PG_WAIT_S = 10.0  # how long to wait for PostgreSQL after trying to start it


@pytest.fixture(scope="session")
def watch() -> pd.DataFrame:
    "The real sample data: 244,102 rows of 140 series, read once per session (do not mutate)."
    return pd.read_parquet(WATCH_PARQUET)


@pytest.fixture
def small_watch(watch: pd.DataFrame) -> pd.DataFrame:
    "A fresh copy of 6 series (the first 2 of subjects 1, 2 and 3), first 300 samples each: 1,800 rows."
    subject_of = watch.groupby("series_id")["subject"].first()
    chosen = subject_of[subject_of.isin([1, 2, 3])]
    chosen = chosen.groupby(chosen).head(2).index
    small = watch[watch["series_id"].isin(chosen)].groupby("series_id").head(300)
    return small.reset_index(drop=True)


@pytest.fixture(scope="session")
def data_params() -> dict:
    "The `data` parameters of conf/base (the mapping of the watch data onto the canonical table)."
    return yaml.safe_load((ROOT / "conf" / "base" / "parameters_data.yml").read_text())["data"]


def _pg_answers(url: str) -> str | None:
    "None when `url` answers `select 1`, else the error text."
    engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as con:
            con.execute(sa.text("select 1"))
        return None
    except sa.exc.OperationalError as err:
        return str(err.orig).strip()
    finally:
        engine.dispose()


def _pg_start() -> str:
    "Try to start the local cluster; the command's output, for the failure message."
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").exists() else []
    if not versions:
        return "no cluster under /etc/postgresql"
    cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{' '.join(cmd)}: {err}"
    return f"{' '.join(cmd)} exited {done.returncode}: {(done.stdout + done.stderr).strip()}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    "SQLAlchemy URL of the database `test` on the local PostgreSQL, started (and the database created) if needed."
    url = f"{PG_SERVER}/{PG_DATABASE}"
    error = _pg_answers(f"{PG_SERVER}/postgres")
    started = ""
    if error is not None:
        started = _pg_start()
        deadline = time.monotonic() + PG_WAIT_S
        while error is not None and time.monotonic() < deadline:
            time.sleep(0.5)
            error = _pg_answers(f"{PG_SERVER}/postgres")
    if error is not None:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 does not answer ({error}); tried: {started}", pytrace=False)
    if _pg_answers(url) is not None:  # the server is up but the database is not there yet
        engine = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as con:
            con.execute(sa.text(f'create database "{PG_DATABASE}"'))
        engine.dispose()
    return url


@dataclass(frozen=True)
class HttpServer:
    "A local HTTP server: files written under `root` are served at `url` + '/' + name."
    root: Path
    url: str


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory):
    "A ThreadingHTTPServer on 127.0.0.1 (free port) serving a temporary directory, for the session."
    root = tmp_path_factory.mktemp("http_root")
    with serve_directory(root) as url:
        yield HttpServer(root=root, url=url)

# --- end of the data-source fixtures -------------------------------------------------------------


# --- the default run: one real `kedro run` for the whole session ---------------------------------

@pytest.fixture(scope="session")
def exported_run(tmp_path_factory) -> ExportedRun:
    "The default pipeline (ingest → … → train → export), run once for the session in a fresh project copy."
    return run_default_pipeline(tmp_path_factory.mktemp("export_project"))


# --- a quickly trained model and its bundle: the serving, inference and events tests ----------------------

@pytest.fixture(scope="session")
def canonical():
    "The first 512 samples of every series of the real data (do not mutate)."
    return canonical_slice()


@pytest.fixture(scope="session")
def model(canonical):
    "A classifier trained for a few epochs on `canonical`, through the training node."
    return train_model(canonical)


@pytest.fixture(scope="session")
def bundle_dir(model, canonical, tmp_path_factory) -> Path:
    "The production bundle of `model`, written once per session through the one writer (do not tamper: copy it)."
    ids = list(canonical["series_id"].unique()[:6])
    return write_bundle(model, tmp_path_factory.mktemp("exported") / "fusion-classifier" / "1", instances_of(canonical, ids))
