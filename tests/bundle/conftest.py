"""Fixtures of the export tests: one real default `kedro run` in a project copy, whose bundle the tests examine."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from fusion.names import MODEL_NAME
from tests.test_pipeline_run import kedro, make_project


@dataclass(frozen=True)
class ExportedRun:
    "A project copy after `kedro run`, the environment that points at its stores, and the bundle the run wrote."
    project: Path
    env: dict[str, str]
    bundle: Path

    @property
    def tracking_uri(self) -> str:
        return self.env["FUSION_MLFLOW_TRACKING_URI"]


@pytest.fixture(scope="session")
def exported_run(tmp_path_factory) -> ExportedRun:
    "The default pipeline (ingest → … → train → export), run once for the session in a fresh project copy."
    dest = tmp_path_factory.mktemp("export_project")
    env = make_project(dest)
    res = kedro(["run"], dest, env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return ExportedRun(dest, {**env, "FUSION_PROJECT_ROOT": str(dest)}, dest / "exported" / MODEL_NAME / "1")


@pytest.fixture
def bundle_copy(exported_run, tmp_path) -> Path:
    "A private copy of the run's bundle, free to tamper with."
    return Path(shutil.copytree(exported_run.bundle, tmp_path / "bundle"))
