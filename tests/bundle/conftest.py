"""Fixtures of the bundle tests: the bundle of the real default `kedro run` (`exported_run`, tests/conftest.py), and a
small bundle of a random-weight model, written through the one writer in seconds, for the verifier's refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fusion.bundle.write import bundle_files, write_bundle
from fusion.features.spec import FeatureSpec
from fusion.inference.predictor import Predictor
from fusion.model.network import TrainedModel, WindowMLP

SMALL_SPEC = FeatureSpec(16, 8, ("mean", "std"), ("ax", "ay"))


def small_model(seed: int = 0) -> TrainedModel:
    "A random-weight model of `SMALL_SPEC` (two labels): enough to load, verify and predict."
    torch.manual_seed(seed)
    spec = SMALL_SPEC
    return TrainedModel({"feature_names": spec.feature_names(), "labels": ["rest", "walk"], "hidden": [8], "dropout": 0.0,
                         "feature_spec": spec.to_dict(), "feature_spec_digest": spec.digest(), "seed": seed, "epochs": 0},
                        WindowMLP(len(spec.feature_names()), 2, [8]).state_dict())


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory) -> Path:
    "Every file `fusion export` writes, through the one writer; the wheel is a stand-in (nothing here installs it)."
    model = small_model()
    rng = np.random.default_rng(0)
    inputs = {"instances": [{"series_id": f"s{i}", "channels": {c: rng.standard_normal(32).round(4).tolist()
                                                                for c in SMALL_SPEC.channels}} for i in range(3)]}
    outputs = [{**p, "cached": False} for p in Predictor(model).predict(inputs["instances"])]
    provenance = {"model_version": "1", "mlflow_run_id": "small", "git_commit": "0" * 40, "data_hash": "small",
                  "feature_spec_digest": SMALL_SPEC.digest(), "trace_id": "2" * 32}
    files = bundle_files(model, inputs, outputs, provenance, ("fusion-0.1.0-py3-none-any.whl", b"a stand-in"),
                         "numpy==2.4.6\n")
    return write_bundle(files, tmp_path_factory.mktemp("small") / "fusion-classifier" / "1")


@pytest.fixture
def small_copy(small_bundle, tmp_path) -> Path:
    "A private copy of the small bundle, free to tamper with."
    return Path(shutil.copytree(small_bundle, tmp_path / "fusion-classifier" / "1"))


@pytest.fixture
def bundle_copy(exported_run, tmp_path) -> Path:
    "A private copy of the run's bundle, free to tamper with."
    return Path(shutil.copytree(exported_run.bundle, tmp_path / "bundle"))
