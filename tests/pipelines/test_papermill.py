"""The papermill research notebook runs the same Kedro pipeline with its parameters, tracked as a papermill run."""

from __future__ import annotations

import pytest

from fusion.names import EXPERIMENT, TAG_SOURCE, TAG_TRACE
from fusion.config import new_trace_id
from fusion.events.store import EventStore
from tests.support.project import BIN, ROOT, make_project

NOTEBOOK = ROOT / "nbs" / "experiments" / "train_experiment.ipynb"


def test_notebook_has_a_parameters_cell():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for name in ("window", "hop", "max_epochs", "seed"):
        assert f"{name} =" in tagged[0].source


@pytest.mark.slow
def test_papermill_run_is_tracked_with_its_parameters(tmp_path, monkeypatch):
    import papermill as pm
    from mlflow import MlflowClient

    env = make_project(tmp_path)
    for k in ("DO_NOT_TRACK", "MPLBACKEND", "FUSION_MLFLOW_TRACKING_URI", "FUSION_EVENTS_DB"):
        monkeypatch.setenv(k, env[k])
    monkeypatch.setenv("PATH", f"{BIN}:{env['PATH']}")
    nb_dir = tmp_path / "nbs" / "experiments"
    nb_dir.mkdir(parents=True)
    trace = new_trace_id()
    pm.execute_notebook(str(NOTEBOOK), str(nb_dir / "out.ipynb"), cwd=str(nb_dir), kernel_name="python3",
                        parameters={"window": 96, "hop": 48, "max_epochs": 20, "seed": 3, "trace_id": trace},
                        progress_bar=False)
    events = EventStore(tmp_path / "events.db").events(trace_id=trace)
    assert [e.type for e in events][-1] == "ModelTrained"
    assert events[2].payload["feature_spec"]["window"] == 96  # the -p value reached the pipeline
    client = MlflowClient(tracking_uri=env["FUSION_MLFLOW_TRACKING_URI"])
    run = client.get_run(events[-1].payload["mlflow_run_id"])
    assert run.data.tags[TAG_SOURCE] == "papermill" and run.data.tags[TAG_TRACE] == trace
    assert run.data.params["features.window"] == "96" and run.data.params["train.max_epochs"] == "20"
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT
