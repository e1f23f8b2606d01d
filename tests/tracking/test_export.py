"""The bundle the export hook writes: verified by the one verifier, its golden outputs reproduced, its provenance the
run's; rebuilt from MLflow alone by `fusion.bundle.mlflow`; a stale version replaced; a run without golden cases refused."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from kedro.pipeline import pipeline

from fusion.bundle.golden import compare_golden
from fusion.bundle.layout import GOLDEN_INPUTS, GOLDEN_OUTPUTS, MANIFEST
from fusion.bundle.mlflow import export_from_mlflow, find_model_version
from fusion.bundle.verify import load_bundle
from fusion.config import Settings
from fusion.errors import ConfigError
from fusion.events.store import EventStore
from fusion.names import MODEL_NAME, MODEL_TRAINED, TAG_BUNDLE, TAG_PYFUNC
from fusion.tracking.export import ExportHooks
from fusion.tracking.hooks import EventHooks, TrackingHooks
from fusion.tracking.run import Runs
from tests.support.hooks import enter_project, full_pipeline, run_hooks


@dataclass(frozen=True)
class Exported:
    "A project after one run of the tracking, export and event hooks, and the bundle the export hook wrote."
    project: Path
    bundle: Path

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=f"sqlite:///{self.project}/mlflow.db")


def tracked_hooks(packaging) -> tuple:
    runs = Runs()
    return TrackingHooks(runs), ExportHooks(runs, packaging), EventHooks(runs)


@pytest.fixture(scope="module")
def exported(empty_mlflow_db, packaging, tmp_path_factory) -> Exported:
    with pytest.MonkeyPatch.context() as mp:
        project = enter_project(tmp_path_factory.mktemp("exported"), empty_mlflow_db, mp)
        hooks = tracked_hooks(packaging)
        run_hooks(hooks, project)
        yield Exported(project, hooks[1].bundle)


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / MANIFEST).read_text())


def test_the_bundle_is_verified_and_reproduces_its_golden_outputs(exported):
    assert exported.bundle == exported.project / "exported" / MODEL_NAME / "1"
    bundle = load_bundle(exported.bundle)  # the verifier fusion serve, verify and image build use
    inputs, expected = (json.loads((exported.bundle / p).read_text()) for p in (GOLDEN_INPUTS, GOLDEN_OUTPUTS))
    assert len(inputs["instances"]) == 4
    got = bundle.predictor().predict(inputs["instances"])
    assert compare_golden(expected, {"predictions": got}, atol=1e-6) == []  # the Predictor and training agree
    got[1]["probabilities"][got[1]["label"]] += 2e-6
    assert compare_golden(expected, {"predictions": got}, atol=1e-6)[0].startswith(f"series {got[1]['series_id']!r}: p[")


def test_the_bundle_carries_the_runs_provenance_and_is_logged_to_it(exported):
    (trained,) = EventStore(exported.project / "data/events.db").events(type=MODEL_TRAINED)
    man, client = _manifest(exported.bundle), exported.client()
    assert man["model"] == {"name": MODEL_NAME, "version": trained.payload["model_version"]} == {"name": MODEL_NAME,
                                                                                                   "version": "1"}
    assert (man["mlflow_run_id"], man["data_hash"], man["feature_spec_digest"], man["trace_id"]) == \
        (trained.payload["mlflow_run_id"], trained.payload["data_hash"], trained.payload["feature_spec_digest"],
         trained.trace_id)
    rid = man["mlflow_run_id"]
    tags = client.get_run(rid).data.tags
    assert (tags[TAG_PYFUNC], tags[TAG_BUNDLE]) == (f"runs:/{rid}/pyfunc", str(exported.bundle))
    logged = Path(client.download_artifacts(rid, "golden", str(exported.project / "downloaded")))
    for rel in (GOLDEN_INPUTS, GOLDEN_OUTPUTS):
        assert (logged.parent / rel).read_bytes() == (exported.bundle / rel).read_bytes(), rel
    assert "pyfunc/MLmodel" in {a.path for a in client.list_artifacts(rid, "pyfunc")}


def test_export_from_mlflow_rebuilds_the_bundle(exported, tmp_path):
    settings = Settings(project_root=exported.project, mlflow_tracking_uri=f"sqlite:///{exported.project}/mlflow.db")
    rebuilt = export_from_mlflow(model_version="1", out=tmp_path, settings=settings)
    assert rebuilt == tmp_path / MODEL_NAME / "1"
    load_bundle(rebuilt)
    ours, theirs = _manifest(rebuilt), _manifest(exported.bundle)
    for same in ("model.safetensors", GOLDEN_INPUTS, GOLDEN_OUTPUTS, "model.json", "labels.json", "feature_spec.json"):
        assert ours["files"][same] == theirs["files"][same], same
    keys = ("mlflow_run_id", "data_hash", "trace_id", "feature_spec_digest", "trained_git_commit")
    assert {k: ours[k] for k in keys} == {k: theirs[k] for k in keys}
    with pytest.raises(ConfigError, match="exists already; pass overwrite=True"):
        export_from_mlflow(model_version="1", out=tmp_path, settings=settings)


def test_versions_are_found_by_number_run_or_latest(exported):
    client, rid = exported.client(), _manifest(exported.bundle)["mlflow_run_id"]
    assert str(find_model_version(client, run_id=rid).version) == "1" and find_model_version(client).run_id == rid
    with pytest.raises(ConfigError, match="no registered version of 'fusion-classifier' from run 'nope'"):
        find_model_version(client, run_id="nope")
    with pytest.raises(ConfigError, match="no version '7' of model 'fusion-classifier'"):
        find_model_version(client, model_version="7")


def test_a_version_trained_without_the_export_pipeline_cannot_be_exported(new_project, packaging, tmp_path):
    project = new_project("no_export")
    without_export = pipeline([n for n in full_pipeline().nodes if n.name != "prepare_golden"])
    run_hooks(tracked_hooks(packaging), project, without_export)
    assert not (project / "exported").exists()
    settings = Settings(project_root=project, mlflow_tracking_uri=f"sqlite:///{project}/mlflow.db")
    with pytest.raises(ConfigError, match=r"run \w+ lacks model/model.safetensors or golden/ artifacts"):
        export_from_mlflow(model_version="1", out=tmp_path / "out", settings=settings)


def test_a_version_number_registered_again_replaces_its_stale_bundle(new_project, empty_mlflow_db, packaging, caplog):
    project = new_project("stale")
    run_hooks(tracked_hooks(packaging), project)
    first = _manifest(project / "exported" / MODEL_NAME / "1")["mlflow_run_id"]
    shutil.copy(empty_mlflow_db, project / "mlflow.db")  # a new store: version 1 is registered again
    run_hooks(tracked_hooks(packaging), project)
    bundle = project / "exported" / MODEL_NAME / "1"
    assert f"replacing the stale bundle {bundle}" in caplog.text
    assert _manifest(bundle)["mlflow_run_id"] != first and sorted(p.name for p in bundle.parent.iterdir()) == ["1"]
    load_bundle(bundle)
