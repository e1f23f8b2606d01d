"""Fixtures of the tracking tests: the real packaging made once, an empty migrated MLflow store, fresh projects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.hooks import enter_project


@pytest.fixture(scope="session")
def packaging() -> tuple[Callable, Callable, Callable]:
    "The real wheel, serving lock and pyfunc requirements, made once for the session (each takes seconds)."
    from fusion.bundle.package import build_wheel
    from fusion.bundle.package import serving_lock
    from fusion.tracking.export import pyfunc_requirements

    wheel, lock, requirements = build_wheel(), serving_lock(), pyfunc_requirements()
    return (lambda: wheel), (lambda: lock), (lambda: requirements)


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    "An MLflow sqlite store with its schema migrated and nothing in it."
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def new_project(empty_mlflow_db, tmp_path, monkeypatch) -> Callable[[str], Path]:
    "`new_project(name)`: a project directory under tmp_path with an empty MLflow store (see `enter_project`)."
    return lambda name: enter_project(tmp_path / name, empty_mlflow_db, monkeypatch)
