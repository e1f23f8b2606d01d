"""Kedro's pipeline registry: the registered pipeline names and `__default__`.

Each pipeline is defined (and documented) in its notebook, nbs/1x–3x, exported to fusion/pipelines/<name>/pipeline.py.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from fusion.pipelines.export.pipeline import create_pipeline as export
from fusion.pipelines.features.pipeline import create_pipeline as features
from fusion.pipelines.ingest.pipeline import create_pipeline as ingest
from fusion.pipelines.train.pipeline import create_pipeline as train
from fusion.pipelines.validate.pipeline import create_pipeline as validate


def register_pipelines() -> dict[str, Pipeline]:
    """`ingest`, `validate`, `features`, `train`, `export`, and `__default__` = all five in order."""
    pipes = {"ingest": ingest(), "validate": validate(), "features": features(), "train": train(), "export": export()}
    pipes["__default__"] = sum(pipes.values(), Pipeline([]))
    return pipes
