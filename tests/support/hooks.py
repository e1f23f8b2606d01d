"""A small project run through Kedro's own runner and hook manager, with real stores, for the tracking tests.

The pipeline is small but real: synthetic canonical samples, ingest/validate/features nodes of its own that report
what the project's nodes report, then the project's train and export pipelines. `run_hooks` does what
`KedroSession.run` does around the runner (before_pipeline_run, the run, after_pipeline_run or on_pipeline_error),
with the hooks registered in the order given. `enter_project` gives a directory a copy of a migrated, empty MLflow
sqlite store (migrating a fresh one takes seconds); the event store is created inside it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node, pipeline
from kedro.runner import SequentialRunner

from fusion.features.spec import FeatureSpec
from fusion.features.table import features_table
from fusion.names import (CANONICAL, CLEAN, CONFUSION_PLOT, FEATURE_REPORT, FEATURES, GOLDEN_CASES, INGEST_REPORT, RAW,
                          VALIDATION_REPORT)
from fusion.pipelines.export.pipeline import create_pipeline as export_pipeline
from fusion.pipelines.ingest.nodes import data_hash
from fusion.pipelines.train.pipeline import create_pipeline as train_pipeline

TRACE = "ab" * 16
CHANNELS = ("x", "y")
SPEC = FeatureSpec(16, 8, channels=CHANNELS)
TRAIN = {"seed": 0, "test_groups": 1, "val_groups": 1, "hidden": [8], "dropout": 0.0, "learning_rate": 0.01,
         "weight_decay": 0.0, "max_epochs": 6, "patience": 3}
EXPORT = {"golden_cases": 4, "golden_part": "test", "out_dir": "exported"}
FUSION_ENV = ("FUSION_MLFLOW_TRACKING_URI", "FUSION_EVENTS_DB", "FUSION_KAFKA_BOOTSTRAP", "FUSION_TRACE_ID",
              "FUSION_TOPIC_PREFIX", "FUSION_PROJECT_ROOT")


def samples() -> pd.DataFrame:
    "A canonical table: 4 groups × 2 labels × 2 series of 64 samples; `hi` series sit higher and spread wider."
    rng, parts = np.random.default_rng(0), []
    for g in range(4):
        for label, (mean, scale) in {"lo": (0.0, 1.0), "hi": (3.0, 2.0)}.items():
            for k in range(2):
                parts.append(pd.DataFrame({"series_id": f"g{g}-{label}-{k}", "t": np.arange(64),
                                           "x": rng.normal(mean, 1.0, 64).astype(np.float32),
                                           "y": rng.normal(0.0, scale, 64).astype(np.float32),
                                           "label": label, "group": str(g)}))
    return pd.concat(parts, ignore_index=True)


def ingest(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    return raw, {"data_hash": data_hash(raw), "rows": len(raw), "series": int(raw["series_id"].nunique()),
                 "channels": list(CHANNELS), "labels": raw.groupby("label")["series_id"].nunique().to_dict()}


def validate(canonical: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    return canonical, {"rows_in": len(canonical), "rows_clean": len(canonical), "rows_quarantined": 0}


def features(clean: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    table = features_table(clean, SPEC, list(CHANNELS))
    return table, {"feature_spec": SPEC.to_dict(), "feature_spec_digest": SPEC.digest(), "rows": len(table),
                   "series": int(table["series_id"].nunique())}


def full_pipeline() -> Pipeline:
    "ingest → validate → features → the project's train → the project's export."
    return pipeline([
        node(ingest, RAW, [CANONICAL, INGEST_REPORT], name="ingest"),
        node(validate, CANONICAL, [CLEAN, VALIDATION_REPORT], name="validate"),
        node(features, CLEAN, [FEATURES, FEATURE_REPORT], name="features"),
    ]) + train_pipeline() + export_pipeline()


def catalog(raw: pd.DataFrame, train: dict) -> DataCatalog:
    "The inputs and parameters, in memory (objects passed as they are, as Kedro's own MemoryDatasets would hold them)."
    data = {RAW: raw, "parameters": {"train": train, "export": EXPORT}, "params:train": train, "params:export": EXPORT}
    outputs = (CANONICAL, CLEAN, INGEST_REPORT, VALIDATION_REPORT, FEATURES, FEATURE_REPORT, CONFUSION_PLOT, GOLDEN_CASES)
    return DataCatalog({**{k: MemoryDataset(v, copy_mode="assign") for k, v in data.items()},
                        **{k: MemoryDataset(copy_mode="assign") for k in outputs}})


def run_hooks(hooks: Iterable, project: Path, pipe: Pipeline | None = None, trace: str = TRACE, train: dict = TRAIN) -> dict:
    "Run `pipe` (default: the full one) as `KedroSession.run` does, with `hooks` registered in this order."
    manager = _create_hook_manager()
    for hook in hooks:
        manager.register(hook)
    pipe = pipe or full_pipeline()
    run_id = uuid.uuid4().hex
    params = {"run_id": run_id, "project_path": str(project), "runtime_params": {"trace_id": trace}}
    data = catalog(samples(), train)
    manager.hook.before_pipeline_run(run_params=params, pipeline=pipe, catalog=data)
    try:
        result = SequentialRunner().run(pipe, data, manager, run_id=run_id)
    except Exception as error:
        manager.hook.on_pipeline_error(error=error, run_params=params, pipeline=pipe, catalog=data)
        raise
    manager.hook.after_pipeline_run(run_params=params, run_result=result, pipeline=pipe, catalog=data)
    return result


def enter_project(project: Path, empty_db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    "Make `project` a project with an empty MLflow store, its stores resolving inside it (no FUSION_* overrides)."
    for var in FUSION_ENV:
        monkeypatch.delenv(var, raising=False)
    project.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_db, project / "mlflow.db")
    monkeypatch.chdir(project)  # MLflow puts a new experiment's artifacts under the current directory
    return project
