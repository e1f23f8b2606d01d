"""The default `kedro run`, end to end, in an isolated copy of the project: pipelines, MLflow, events, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusion.names import EXPERIMENT, MODEL_NAME, PIPELINE_EVENTS, TAG_DATA_HASH, TAG_SOURCE, TAG_SPEC_DIGEST, TAG_TRACE
from fusion.events.store import EventStore
from tests.support.project import fusion, kedro, make_project


@pytest.fixture
def project(exported_run) -> tuple[Path, dict]:
    """The project copy of the session's default run (tests/conftest.py) and its environment."""
    return exported_run.project, exported_run.env


@pytest.mark.slow
def test_default_run_reaches_the_accuracy_target(project):
    dest, _ = project
    metrics = json.loads((dest / "data/08_reporting/metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.85, metrics
    assert 0 < metrics["test_macro_f1"] <= 1 and metrics["test_series"] == 28
    assert (dest / "data/08_reporting/confusion_matrix.png").stat().st_size > 1000
    report = json.loads((dest / "data/08_reporting/validation_report.json").read_text())
    assert report["rows_in"] == 244102 == report["rows_clean"] + report["rows_quarantined"]
    assert (dest / "data/02_intermediate/quarantine.parquet").exists()
    assert "Series per class" in (dest / "data/08_reporting/profile.md").read_text()


@pytest.mark.slow
def test_run_records_the_event_chain_with_one_trace(project):
    dest, _ = project
    events = EventStore(dest / "events.db").events()
    assert [e.type for e in events] == list(PIPELINE_EVENTS)
    assert len({e.trace_id for e in events}) == 1
    ready, validated, features, trained = (e.payload for e in events)
    assert ready["rows"] == validated["rows_in"] == 244102
    assert validated["data_hash"] == features["data_hash"] == trained["data_hash"] == ready["data_hash"]
    assert features["feature_spec_digest"] == trained["feature_spec_digest"]
    assert trained["metrics"]["test_accuracy"] >= 0.85


@pytest.mark.slow
def test_run_is_tracked_in_mlflow(project):
    from mlflow import MlflowClient

    dest, _ = project
    client = MlflowClient(tracking_uri=f"sqlite:///{dest}/mlflow.db")
    trained = EventStore(dest / "events.db").events(type="ModelTrained")[0]
    run = client.get_run(trained.payload["mlflow_run_id"])
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT
    assert run.data.params["features.window"] == "128" and run.data.params["train.seed"] == "42"
    assert run.data.metrics["test_accuracy"] == pytest.approx(trained.payload["metrics"]["test_accuracy"])
    assert run.data.tags[TAG_TRACE] == trained.trace_id
    assert run.data.tags[TAG_DATA_HASH] == trained.payload["data_hash"]
    assert run.data.tags[TAG_SPEC_DIGEST] == trained.payload["feature_spec_digest"]
    assert run.data.tags[TAG_SOURCE] == "kedro"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)} | {
        a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"confusion_matrix.png", "model/model.safetensors", "model/model.json"} <= artifacts
    version = client.get_model_version(MODEL_NAME, trained.payload["model_version"])
    assert version.run_id == run.info.run_id


@pytest.mark.slow
def test_run_is_deterministic(project, tmp_path):
    """The same data and seed give the same metrics and weights in a second, independent project."""
    from fusion.model.network import load_model

    dest, _ = project
    env = make_project(tmp_path)
    assert kedro(["run", "--pipeline", "ingest"], tmp_path, env).returncode == 0
    for name in ("validate", "features", "train"):
        res = kedro(["run", "--pipeline", name], tmp_path, env)
        assert res.returncode == 0, res.stderr[-2000:]
    first, second = (json.loads((d / "data/08_reporting/metrics.json").read_text()) for d in (dest, tmp_path))
    assert first == second
    a, b = (load_model(d / "data/06_models/model.safetensors") for d in (dest, tmp_path))
    assert all((a.state[k] == b.state[k]).all() for k in a.state)


def test_registry_lists_the_pipelines(tmp_path):
    env = make_project(tmp_path)
    res = kedro(["registry", "list"], tmp_path, env)
    assert res.returncode == 0, res.stderr
    for name in ("__default__", "ingest", "validate", "features", "train"):
        assert name in res.stdout


def test_fusion_events_cli(project):
    dest, env = project
    res = fusion(["events", "--json"], env, dest)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [e["type"] for e in lines] == list(PIPELINE_EVENTS)
    trace = lines[0]["trace_id"]
    res = fusion(["events", "--trace", "f" * 32], env, dest)
    assert res.returncode == 1 and trace not in res.stdout
