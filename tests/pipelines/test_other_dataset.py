"""Running on another dataset is a configuration change only.

A copy of the project's configuration gets a Kedro environment `short` that points `raw_samples` at a
CSV with other column names, three channels, renamed and imbalanced classes and short series; the whole
default pipeline then runs with `kedro run --env short`, with no code changed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.support.project import BIN, ROOT, make_project

KEDRO = BIN / "kedro"
RUN_TIMEOUT_S = 150  # the run itself takes ~30 s on 2 busy cores

COLUMNS = {"series_id": "rec", "t": "time", "ax": "acc_x", "ay": "acc_y", "wz": "gyr_z", "label": "exercise",
           "subject": "person", "side": "arm"}  # `arm` is an extra column the mapping ignores
CHANNELS = ["acc_x", "acc_y", "gyr_z"]
LABELS = {"ABD": "abduction", "ER": "external_rotation", "FEL": "forward_elevation", "IR": "internal_rotation",
          "PEN": "pendulum", "ROW": "rowing", "TRAP": "trapezius"}
KEEP_SERIES = {"ER": 4, "IR": 3, "ROW": 2}  # classes cut down to a few series; the others keep all 20


def short_dataset(watch: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    "The watch data renamed, with imbalanced classes and every series cut to 15–40 samples from its middle."
    rng = np.random.default_rng(seed)
    first = watch.groupby("series_id")["label"].first().astype(str)
    kept = first.groupby(first).head(20)
    kept = kept[[KEEP_SERIES.get(lab, 20) > rank for lab, rank in zip(kept, kept.groupby(kept).cumcount(), strict=True)]]
    parts = []
    for sid in kept.index:
        s = watch[watch["series_id"] == sid]
        n = int(rng.integers(15, 41))
        start = (len(s) - n) // 2
        parts.append(s.iloc[start:start + n])
    out = pd.concat(parts)[list(COLUMNS)].rename(columns=COLUMNS)
    out["exercise"] = out["exercise"].astype(str).map(LABELS)
    return out.reset_index(drop=True)


def write_yaml(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content, sort_keys=False))


@pytest.fixture
def project(tmp_path: Path, watch: pd.DataFrame) -> tuple[Path, dict[str, str]]:
    "A copy of the project in tmp_path with the Kedro environment `short` and its CSV; the environment to run it in."
    run_env = make_project(tmp_path)
    short_dataset(watch).to_csv(tmp_path / "data" / "01_raw" / "exercises.csv", index=False)
    base = {name: yaml.safe_load((ROOT / "conf" / "base" / f"parameters_{name}.yml").read_text())[name]
            for name in ("features", "train")}
    env = tmp_path / "conf" / "short"
    write_yaml(env / "catalog.yml", {"raw_samples": {"type": "pandas.CSVDataset", "filepath": "data/01_raw/exercises.csv"}})
    write_yaml(env / "parameters_data.yml", {"data": {
        "series_col": "rec", "time_col": "time", "channels": CHANNELS, "label_col": "exercise",
        "group_col": "person", "labels": sorted(LABELS.values())}})
    write_yaml(env / "parameters_features.yml", {"features": {**base["features"], "window": 8, "hop": 4}})
    write_yaml(env / "parameters_train.yml", {"train": {**base["train"], "max_epochs": 30, "val_groups": 1,
                                                        "test_groups": 2}})
    return tmp_path, run_env


def test_short_dataset_is_what_the_test_claims(watch):
    data = short_dataset(watch)
    lengths = data.groupby("rec").size()
    per_class = data.groupby("rec")["exercise"].first().value_counts()
    assert list(data.columns) == ["rec", "time", "acc_x", "acc_y", "gyr_z", "exercise", "person", "arm"]
    assert lengths.between(15, 40).all() and lengths.nunique() > 10
    assert per_class.to_dict() == {"abduction": 20, "forward_elevation": 20, "pendulum": 20, "trapezius": 20,
                                   "external_rotation": 4, "internal_rotation": 3, "rowing": 2}
    assert data["person"].nunique() == 10


def test_kedro_run_on_another_dataset_is_configuration_only(project: tuple[Path, dict[str, str]]):
    project, env = project
    done = subprocess.run([str(KEDRO), "run", "--env", "short"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, f"kedro run --env short exited {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}"

    metrics = json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert 1 <= metrics["epochs"] <= 30
    report = json.loads((project / "data" / "08_reporting" / "validation_report.json").read_text())
    assert (report["rows_quarantined"], report["series_clean"]) == (0, 89)
    assert report["series_per_class"]["rowing"] == 2

    features = pd.read_parquet(project / "data" / "04_feature" / "features.parquet")
    stats = yaml.safe_load((ROOT / "conf" / "base" / "parameters_features.yml").read_text())["features"]["stats"]
    assert len(stats) == 11
    assert [c for c in features.columns if "__" in c] == [f"{c}__{s}" for c in CHANNELS for s in stats]
    lengths = pd.read_csv(project / "data" / "01_raw" / "exercises.csv").groupby("rec").size()
    assert len(features) == int(((lengths - 8) // 4 + 1).sum())  # windows of 8 every 4 samples, per series
    assert (project / "mlflow.db").exists() and (project / "events.db").exists()
