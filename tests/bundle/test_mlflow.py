"""`fusion export` and `fusion.bundle.mlflow`: a registered version's bundle rebuilt from MLflow, atomically."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import fusion.bundle.mlflow as bm
import fusion.bundle.write as bw
from fusion.bundle.layout import MANIFEST
from fusion.bundle.verify import read_bundle
from fusion.commands.exits import ExitCode
from fusion.config import Settings
from fusion.errors import ConfigError

BIN = Path(sys.executable).parent


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / MANIFEST).read_text())


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
    assert again.returncode == ExitCode.CONFIG and "exists already" in again.stderr
    missing = subprocess.run([*cmd[:3], "7", *cmd[4:]], env=exported_run.env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == ExitCode.CONFIG and "no version '7' of model 'fusion-classifier'" in missing.stderr


@pytest.mark.slow
def test_a_crash_mid_export_leaves_no_partial_bundle(exported_run, tmp_path, monkeypatch):
    # The fault (a disk error while writing golden/outputs.json) cannot be caused for real as root: inject it.
    def crashing(path: Path, data: bytes) -> None:
        if path.as_posix().endswith("golden/outputs.json"):
            raise OSError(28, "No space left on device")
        bw._write_file(path, data)

    monkeypatch.setattr(bm, "write_bundle", lambda files, target, overwrite=False:
                        bw.write_bundle(files, target, overwrite, write_file=crashing))
    settings = Settings(mlflow_tracking_uri=exported_run.tracking_uri, project_root=exported_run.project)
    with pytest.raises(OSError, match="No space left"):
        bm.export_from_mlflow(model_version="1", out=tmp_path, settings=settings)
    assert list((tmp_path / "fusion-classifier").iterdir()) == []
    # an existing bundle survives a failed overwrite untouched
    good = bw.write_bundle(read_bundle(exported_run.bundle).data, tmp_path / "fusion-classifier" / "1")
    with pytest.raises(OSError, match="No space left"):
        bm.export_from_mlflow(model_version="1", out=tmp_path, settings=settings, overwrite=True)
    assert sorted(p.name for p in good.parent.iterdir()) == ["1"]
    assert read_bundle(good).manifest["mlflow_run_id"] == _manifest(exported_run.bundle)["mlflow_run_id"]


@pytest.mark.slow
def test_versions_are_found_by_run_id_version_or_latest(exported_run):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=exported_run.tracking_uri)
    run_id = _manifest(exported_run.bundle)["mlflow_run_id"]
    assert str(bm.find_model_version(client, run_id=run_id).version) == "1"
    assert bm.find_model_version(client).run_id == run_id
    with pytest.raises(ConfigError, match="no registered version of 'fusion-classifier' from run 'nope'"):
        bm.find_model_version(client, run_id="nope")
