"""Builders for the serving tests: a model trained on a slice of the real sample data, and a bundle around it."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pandas as pd

from fusion.features import FeatureSpec, features_table
from fusion.model.network import TrainedModel
from fusion.pipelines.train.nodes import fit_model, split_groups
from fusion.inference.predictor import Predictor
from fusion.bundle.verify import write_manifest, write_model_files

ROOT = Path(__file__).resolve().parents[2]
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


def write_bundle(model: TrainedModel, dest: Path, golden: list[dict], name: str = "fusion-classifier",
                 version: str = "1") -> Path:
    "The bundle layout of `fusion export` (model files, golden/, MANIFEST.json) in `dest`."
    dest.mkdir(parents=True)
    write_model_files(model, dest)
    (dest / "golden").mkdir()
    outputs = [{**p, "cached": False} for p in Predictor(model).predict(golden)]
    (dest / "golden" / "inputs.json").write_text(json.dumps({"instances": golden}))
    (dest / "golden" / "outputs.json").write_text(json.dumps({"predictions": outputs,
                                                              "model": {"name": name, "version": version}}))
    write_manifest(dest, name, version, git_commit="0" * 40, mlflow_run_id="test", data_hash="test",
                   feature_spec_digest=SPEC.digest(), trace_id="1" * 32, created_at="2026-01-01T00:00:00Z")
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_instance(series_id: str, length: int = 256, seed: int = 0) -> dict:
    x = np.random.default_rng(seed).standard_normal((len(CHANNELS), length)).round(5)
    return {"series_id": series_id, "channels": dict(zip(CHANNELS, x.tolist(), strict=True))}
