"""The bundle a default `kedro run` writes: files, MANIFEST, provenance, golden cases, atomicity, `fusion export`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fusion.bundle.files as fx
import fusion.tracking.export as fh
from fusion.config import Settings
from fusion.errors import BundleIntegrityError
from fusion.events.store import EventStore
from fusion.bundle.files import compare_golden
from fusion.bundle.verify import load_bundle

BIN = Path(sys.executable).parent
EXPECTED_FILES = {".dockerignore", "Dockerfile", "MANIFEST.json", "feature_spec.json", "golden/inputs.json",
                  "golden/outputs.json", "grafana/dashboard.json", "k8s/deployment.yaml", "k8s/hpa.yaml",
                  "k8s/networkpolicy.yaml", "k8s/pdb.yaml", "k8s/service.yaml", "labels.json", "model.json",
                  "model.safetensors", "requirements.lock", "wheels/fusion-0.1.0-py3-none-any.whl"}


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "MANIFEST.json").read_text())


@pytest.mark.slow
def test_default_run_writes_the_bundle_and_nothing_else(exported_run):
    bundle = exported_run.bundle
    assert _files(bundle) == EXPECTED_FILES
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["1"]  # no temp or half-written directory beside it
    assert (bundle / "model.safetensors").read_bytes() == \
        (exported_run.project / "data/06_models/model.safetensors").read_bytes()


@pytest.mark.slow
def test_manifest_hashes_every_file_and_records_provenance(exported_run):
    bundle, man = exported_run.bundle, _manifest(exported_run.bundle)
    assert set(man["files"]) == EXPECTED_FILES - {"MANIFEST.json"}
    for rel, digest in man["files"].items():
        assert hashlib.sha256((bundle / rel).read_bytes()).hexdigest() == digest, rel
    trained = EventStore(exported_run.env["FUSION_EVENTS_DB"]).events(type="ModelTrained")[0]
    assert man["model"] == {"name": "fusion-classifier", "version": trained.payload["model_version"]} == \
        json.loads((bundle / "golden/outputs.json").read_text())["model"]
    assert (man["mlflow_run_id"], man["data_hash"], man["feature_spec_digest"], man["trace_id"]) == \
        (trained.payload["mlflow_run_id"], trained.payload["data_hash"], trained.payload["feature_spec_digest"],
         trained.trace_id)
    assert len(man["git_commit"].removesuffix("-dirty")) == 40 and man["created_at"].endswith("+00:00")
    assert load_bundle(bundle).version == "1"  # the server's own check agrees


@pytest.mark.slow
def test_a_tampered_file_fails_both_checks(bundle_copy):
    labels = json.loads((bundle_copy / "labels.json").read_text())
    (bundle_copy / "labels.json").write_text(json.dumps(labels[::-1]))
    with pytest.raises(BundleIntegrityError, match=r"\['labels.json'\]"):
        fx.check_bundle(bundle_copy)
    with pytest.raises(BundleIntegrityError, match="sha256 mismatch in \\['labels.json'\\]"):
        load_bundle(bundle_copy)


@pytest.mark.slow
def test_golden_cases_are_the_training_predictions_of_held_out_series(exported_run):
    preds = pd.read_parquet(exported_run.project / "data/07_model_output/predictions.parquet").set_index("series_id")
    clean = pd.read_parquet(exported_run.project / "data/03_primary/clean.parquet")
    inputs = json.loads((exported_run.bundle / "golden/inputs.json").read_text())
    outputs = json.loads((exported_run.bundle / "golden/outputs.json").read_text())
    ids = [i["series_id"] for i in inputs["instances"]]
    assert ids == [p["series_id"] for p in outputs["predictions"]] == sorted(preds.index[preds["part"] == "test"])
    assert len(ids) == 28
    labels = json.loads((exported_run.bundle / "labels.json").read_text())
    for p in outputs["predictions"]:
        row = preds.loc[p["series_id"]]
        assert p["label"] == row["predicted"] and p["cached"] is False
        assert p["probabilities"] == {lab: float(row[f"p_{lab}"]) for lab in labels}  # exactly, not recomputed
    first = clean[clean["series_id"] == ids[0]]
    for ch, values in inputs["instances"][0]["channels"].items():
        np.testing.assert_array_equal(np.float32(values), first[ch].to_numpy(np.float32))


@pytest.mark.slow
def test_the_bundles_predictor_reproduces_the_golden_outputs(exported_run):
    bundle = load_bundle(exported_run.bundle)
    inputs = json.loads((exported_run.bundle / "golden/inputs.json").read_text())
    expected = json.loads((exported_run.bundle / "golden/outputs.json").read_text())
    got = bundle.predictor(max_instances=100).predict(inputs["instances"])
    assert compare_golden(expected, {"predictions": got}, atol=1e-6) == []
    got[3]["probabilities"][got[3]["label"]] -= 2e-6
    assert compare_golden(expected, {"predictions": got}, atol=1e-6)[0].startswith(f"series {got[3]['series_id']!r}: p[")


@pytest.mark.slow
def test_fusion_export_rebuilds_the_bundle_from_mlflow(exported_run, tmp_path):
    cmd = [str(BIN / "fusion"), "export", "--model-version", "1", "--out", str(tmp_path), "--json"]
    res = subprocess.run(cmd, env=exported_run.env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["version"] == "1" and out["files"] == 16
    bundle, ref = Path(out["bundle"]), _manifest(exported_run.bundle)
    man = _manifest(bundle)
    for same in ("model.safetensors", "golden/inputs.json", "golden/outputs.json", "model.json", "labels.json"):
        assert man["files"][same] == ref["files"][same], same
    assert {k: man[k] for k in ("mlflow_run_id", "data_hash", "trace_id")} == \
        {k: ref[k] for k in ("mlflow_run_id", "data_hash", "trace_id")}
    again = subprocess.run(cmd, env=exported_run.env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "exists already" in again.stderr
    missing = subprocess.run([*cmd[:3], "7", *cmd[4:]], env=exported_run.env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "no version '7' of model 'fusion-classifier'" in missing.stderr


@pytest.mark.slow
def test_a_crash_mid_export_leaves_no_partial_bundle(exported_run, tmp_path, monkeypatch):
    # The fault (a disk error while writing golden/outputs.json) cannot be caused for real as root: inject it.
    def crashing(path: Path, data: bytes) -> None:
        if path.as_posix().endswith("golden/outputs.json"):
            raise OSError(28, "No space left on device")
        fx._write_file(path, data)

    monkeypatch.setattr(fh, "write_bundle", lambda files, target, overwrite=False:
                        fx.write_bundle(files, target, overwrite, write_file=crashing))
    settings = Settings(mlflow_tracking_uri=exported_run.tracking_uri, project_root=exported_run.project)
    with pytest.raises(OSError, match="No space left"):
        fh.export_from_mlflow(model_version="1", out=tmp_path, settings=settings)
    assert list((tmp_path / "fusion-classifier").iterdir()) == []
    # an existing bundle survives a failed overwrite untouched
    good = fx.write_bundle({p: (exported_run.bundle / p).read_bytes() for p in EXPECTED_FILES},
                           tmp_path / "fusion-classifier" / "1")
    with pytest.raises(OSError, match="No space left"):
        fh.export_from_mlflow(model_version="1", out=tmp_path, settings=settings, overwrite=True)
    assert sorted(p.name for p in good.parent.iterdir()) == ["1"]
    assert fx.check_bundle(good)["mlflow_run_id"] == _manifest(exported_run.bundle)["mlflow_run_id"]


@pytest.mark.slow
def test_the_lock_pins_a_lean_cpu_runtime(exported_run):
    lines = (exported_run.bundle / "requirements.lock").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0+cpu" and not any(n.startswith("nvidia") for n in pins)
    for needed in ("fastapi", "uvicorn", "numpy", "safetensors", "PyJWT", "redis", "prometheus_client", "orjson"):
        assert needed in pins, needed
    for heavy in ("mlflow", "mlflow-skinny", "jax", "triton", "jupyterlab", "papermill", "nbdev", "matplotlib"):
        assert heavy not in pins, heavy


@pytest.mark.slow
def test_versions_are_found_by_run_id_version_or_latest(exported_run):
    from mlflow import MlflowClient

    from fusion.errors import ConfigError

    client = MlflowClient(tracking_uri=exported_run.tracking_uri)
    run_id = _manifest(exported_run.bundle)["mlflow_run_id"]
    assert str(fh.find_model_version(client, run_id=run_id).version) == "1"
    assert fh.find_model_version(client).run_id == run_id
    with pytest.raises(ConfigError, match="no registered version of 'fusion-classifier' from run 'nope'"):
        fh.find_model_version(client, run_id="nope")
