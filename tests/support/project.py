"""A fresh copy of the project to run `kedro` and `fusion` in, with its stores pointed inside the copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the project root (pyproject.toml with [tool.kedro])
BIN = Path(sys.executable).parent  # the venv's bin: kedro, fusion, mlflow, jupyter
FUSION = str(BIN / "fusion")


def make_project(dest: Path) -> dict[str, str]:
    """A copy of the project's config and raw data in `dest`, and the environment that points its stores there."""
    shutil.copytree(ROOT / "conf" / "base", dest / "conf" / "base")
    (dest / "conf" / "local").mkdir()
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    shutil.copy(ROOT / ".telemetry", dest / ".telemetry")  # a checkout opts out of Kedro's telemetry
    shutil.copytree(ROOT / "data" / "01_raw", dest / "data" / "01_raw")
    return {**os.environ, "DO_NOT_TRACK": "true", "MPLBACKEND": "Agg", "FUSION_TRACE_ID": "",
            "FUSION_MLFLOW_TRACKING_URI": f"sqlite:///{dest}/mlflow.db", "FUSION_EVENTS_DB": str(dest / "events.db")}


def kedro(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    "The venv's `kedro` with `args` in `cwd` (output captured; at most 10 minutes)."
    return subprocess.run([str(BIN / "kedro"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def fusion(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    "The venv's `fusion` command with `args` in `cwd` (output captured; at most 2 minutes)."
    return subprocess.run([FUSION, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@dataclass(frozen=True)
class ExportedRun:
    "A project copy after the default `kedro run`, the environment that points at its stores, and the bundle it wrote."
    project: Path
    env: dict[str, str]
    bundle: Path

    @property
    def tracking_uri(self) -> str:
        return self.env["FUSION_MLFLOW_TRACKING_URI"]


def run_default_pipeline(dest: Path) -> ExportedRun:
    "The default pipeline (ingest → … → train → export) run in a fresh project copy at `dest`."
    from fusion.names import MODEL_NAME

    env = make_project(dest)
    res = kedro(["run"], dest, env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return ExportedRun(dest, {**env, "FUSION_PROJECT_ROOT": str(dest)}, dest / "exported" / MODEL_NAME / "1")
