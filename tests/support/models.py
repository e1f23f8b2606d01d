"""Builders shared by the serving, inference and events tests: a model trained on a slice of the real sample data,
its production bundle (through the one writer), request instances."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from fusion.features.spec import FeatureSpec
from fusion.features.table import features_table
from fusion.model.network import TrainedModel
from fusion.pipelines.train.nodes import fit_model, split_groups
from fusion.inference.predictor import Predictor
from fusion.bundle import write as bundle_write
from fusion.bundle.package import SERVING_REQUIREMENTS, build_wheel, installed_distributions, lock_closure, lock_text

from tests.support.project import ROOT

WATCH = ROOT / "data" / "01_raw" / "watch_long.parquet"
CHANNELS = ["ax", "ay", "az", "wx", "wy", "wz"]
SPEC = FeatureSpec(128, 64, channels=tuple(CHANNELS))  # the default run's spec
TRAIN = {"seed": 42, "val_groups": 2, "test_groups": 2, "hidden": [64, 32], "dropout": 0.1, "learning_rate": 0.003,
         "weight_decay": 1e-4, "max_epochs": 8, "patience": 8}


def canonical_slice(samples: int = 512) -> pd.DataFrame:
    "The first `samples` samples of every series of the real data, as a canonical table."
    raw = pd.read_parquet(WATCH)
    raw = raw.groupby("series_id").head(samples)
    return pd.DataFrame({"series_id": raw["series_id"].astype(str), "t": raw["t"], **{c: raw[c] for c in CHANNELS},
                         "label": raw["label"].astype(str), "group": raw["subject"].astype(str)}).reset_index(drop=True)


def train_model(canonical: pd.DataFrame) -> TrainedModel:
    "A quickly trained classifier (a few epochs), through the training node itself."
    table = features_table(canonical, SPEC, CHANNELS)
    split = split_groups(table, TRAIN)
    report = {"feature_spec": SPEC.to_dict(), "feature_spec_digest": SPEC.digest()}
    return fit_model(table, split, TRAIN, report)


def instances_of(canonical: pd.DataFrame, series_ids: list[str], length: int | None = None) -> list[dict]:
    "Request instances of the given series (first `length` samples)."
    out = []
    for sid in series_ids:
        rows = canonical[canonical["series_id"] == sid].head(length) if length else canonical[canonical["series_id"] == sid]
        out.append({"series_id": sid, "channels": {c: rows[c].astype(float).tolist() for c in CHANNELS}})
    return out


@functools.cache
def packaging() -> tuple[tuple[str, bytes], str]:
    "(fusion wheel, serving lock) as `fusion export` makes them, built once per test session (the wheel takes ~1 s)."
    return build_wheel(), lock_text(lock_closure(SERVING_REQUIREMENTS, installed_distributions()))


def write_bundle(model: TrainedModel, dest: Path, golden: list[dict], name: str = "fusion-classifier",
                 version: str = "1") -> Path:
    "The production bundle of `model` (every file `fusion export` writes) in `dest`, through the one writer."
    outputs = [{**p, "cached": False} for p in Predictor(model).predict(golden)]
    provenance = {"model_version": version, "git_commit": "0" * 40, "mlflow_run_id": "test", "data_hash": "test",
                  "feature_spec_digest": model.config["feature_spec_digest"], "trace_id": "1" * 32,
                  "created_at": "2026-01-01T00:00:00+00:00"}
    wheel, lock = packaging()
    files = bundle_write.bundle_files(model, {"instances": golden}, outputs, provenance, wheel, lock, name=name)
    return bundle_write.write_bundle(files, dest)


def random_instance(series_id: str, length: int = 256, seed: int = 0) -> dict:
    x = np.random.default_rng(seed).standard_normal((len(CHANNELS), length)).round(5)
    return {"series_id": series_id, "channels": dict(zip(CHANNELS, x.tolist(), strict=True))}
