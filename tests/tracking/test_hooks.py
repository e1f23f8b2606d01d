"""The project's hooks through Kedro's runner and hook manager: the same MLflow run, events, relay and bundle in
every registration order; a failing node, an MLflow store that cannot open, a run without tracking; the relay
against a real broker."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pytest
from kedro.pipeline import pipeline

from fusion.bundle.layout import MANIFEST
from fusion.errors import ConfigError
from fusion.events.relay import InMemoryPublisher
from fusion.events.store import EventStore
from fusion.names import (DATA_READY, DATA_VALIDATED, EXPERIMENT, FEATURES_READY, MODEL_NAME, PIPELINE_EVENTS,
                          TAG_BUNDLE, TAG_PYFUNC, TAG_TRACE)
from fusion.tracking.export import ExportHooks
from fusion.tracking.hooks import EventHooks, RelayHooks, TrackingHooks, project_hooks
from fusion.tracking.run import Runs
from tests.support.kafka import Tansu, pending_count

from tests.support.hooks import TRACE, TRAIN, full_pipeline, run_hooks

NAMES = ("tracking", "export", "events", "relay")


def hooks_of(packaging, published: InMemoryPublisher, names=NAMES) -> list:
    "The project's four hooks around one `Runs` (the relay publishing in memory), those in `names`, in that order."
    runs = Runs()
    made = {"tracking": TrackingHooks(runs), "export": ExportHooks(runs, packaging), "events": EventHooks(runs),
            "relay": RelayHooks(runs, publisher=lambda settings: published)}
    return [made[n] for n in names]


def _tree_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def snapshot(project: Path, published: InMemoryPublisher) -> dict:
    "What a run left: its MLflow run, model versions, events, relayed records and bundle, minus ids and times."
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    rid = run.info.run_id
    bundle = project / "exported" / MODEL_NAME / "1"
    artifacts = _tree_digests(Path(run.info.artifact_uri.removeprefix("file://")))
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert (manifest["mlflow_run_id"], run.data.tags[TAG_PYFUNC], run.data.tags[TAG_BUNDLE]) == \
        (rid, f"runs:/{rid}/pyfunc", str(bundle))
    events = EventStore(project / "data/events.db").events()
    assert all(e.payload.get("mlflow_run_id", rid) == rid for e in events)
    return {
        "status": run.info.status, "params": run.data.params,
        "metrics": {k: v for k, v in run.data.metrics.items() if not k.startswith("node_seconds.")},
        "timed": sorted(k for k in run.data.metrics if k.startswith("node_seconds.")),
        "tags": {k: v for k, v in run.data.tags.items() if k.startswith("fusion.") and k not in (TAG_PYFUNC, TAG_BUNDLE)},
        "artifacts": {k: v for k, v in artifacts.items() if not k.startswith("pyfunc/")},
        "pyfunc": sorted(k for k in artifacts if k.startswith("pyfunc/")),
        "versions": [(str(v.version), v.run_id == rid) for v in client.search_model_versions(f"name='{MODEL_NAME}'")],
        "events": [(e.type, e.trace_id, {k: v for k, v in e.payload.items() if k != "mlflow_run_id"}) for e in events],
        "relayed": [(r.topic, dict(r.headers)["fusion.type"].decode()) for r in published.records],
        "bundle": {k: v for k, v in _tree_digests(bundle).items() if k != MANIFEST},
        "manifest": {k: v for k, v in manifest.items() if k not in ("mlflow_run_id", "created_at")},
    }


def test_every_registration_order_gives_the_same_run(new_project, packaging):
    "24 orders of the four hooks: one MLflow run, one registered version, the same events, relay and bundle."
    reference = None
    for i, order in enumerate(itertools.permutations(NAMES)):
        project, published = new_project(f"order{i}"), InMemoryPublisher()
        run_hooks(hooks_of(packaging, published, order), project)
        got = snapshot(project, published)
        if reference is None:
            reference = got
            assert got["status"] == "FINISHED" and got["versions"] == [("1", True)]
            assert [e[0] for e in got["events"]] == list(PIPELINE_EVENTS) and {e[1] for e in got["events"]} == {TRACE}
            assert got["relayed"][-1] == ("fusion.models", "ModelTrained") and len(got["relayed"]) == 4
            assert got["tags"][TAG_TRACE] == TRACE and got["params"]["train.seed"] == "0"
            assert {"model/model.safetensors", "model/model.json", "confusion_matrix.png", "golden/inputs.json",
                    "golden/outputs.json"} <= set(got["artifacts"]) and "pyfunc/MLmodel" in got["pyfunc"]
            assert got["timed"] == [f"node_seconds.{n.name}" for n in sorted(full_pipeline().nodes, key=lambda n: n.name)]
        assert got == reference, f"order {order} differs"


def test_project_hooks_share_one_fresh_run_board():
    first, second = project_hooks(), project_hooks()
    assert [type(h).__name__ for h in first] == ["TrackingHooks", "ExportHooks", "EventHooks", "RelayHooks"]
    assert len({id(h.runs) for h in first}) == 1 and first[0].runs is not second[0].runs


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reversed"])
def test_a_failing_node_fails_the_mlflow_run_and_writes_no_bundle(new_project, packaging, reverse):
    from mlflow import MlflowClient

    project, published = new_project("failing"), InMemoryPublisher()
    hooks = hooks_of(packaging, published)
    with pytest.raises(ConfigError, match=r"4 groups \(group\) cannot give 1 test \+ 5 validation groups"):
        run_hooks(hooks[::-1] if reverse else hooks, project, train={**TRAIN, "val_groups": 5})
    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert run.info.status == "FAILED" and client.search_model_versions(f"name='{MODEL_NAME}'") == []
    assert [e.type for e in EventStore(project / "data/events.db").events()] == [DATA_READY, DATA_VALIDATED, FEATURES_READY]
    assert not (project / "exported").exists() and published.records == []  # the relay runs after a run only


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reversed"])
def test_an_mlflow_store_that_cannot_open_fails_the_run_in_any_order(new_project, packaging, monkeypatch, reverse):
    "The opening thread's error reaches whichever hook asks first; no hook records ModelTrained or writes a bundle."
    project, published = new_project("no_store"), InMemoryPublisher()
    (project / "blocked").write_text("a file where the store's directory should be")
    monkeypatch.setenv("FUSION_MLFLOW_TRACKING_URI", f"sqlite:///{project}/blocked/mlflow.db")
    hooks = hooks_of(packaging, published)
    with pytest.raises(FileExistsError, match=r"File exists: '.*/no_store/blocked'"):
        run_hooks(hooks[::-1] if reverse else hooks, project)
    assert [e.type for e in EventStore(project / "data/events.db").events()] == [DATA_READY, DATA_VALIDATED, FEATURES_READY]
    assert not (project / "exported").exists() and published.records == []


def test_export_without_tracking_warns_and_writes_nothing(new_project, packaging, caplog):
    project, published = new_project("untracked"), InMemoryPublisher()
    run_hooks(hooks_of(packaging, published, ("relay", "events", "export")), project)
    assert "the export pipeline ran without training a model in this run: no bundle written" in caplog.text
    assert not (project / "exported").exists()
    assert [e.type for e in EventStore(project / "data/events.db").events()] == [DATA_READY, DATA_VALIDATED, FEATURES_READY]
    assert len(published.records) == 3


def test_a_hook_without_a_run_says_so():
    with pytest.raises(ConfigError, match="no pipeline run has begun: a hook was called before before_pipeline_run"):
        EventHooks(Runs()).after_node_run(None, {})


def test_the_relay_hook_drains_to_a_real_broker_and_only_warns_when_it_is_down(new_project, monkeypatch, caplog):
    "The project's relay (publisher from the settings): a dead broker leaves the events waiting, a live one takes them."
    first_steps = pipeline([n for n in full_pipeline().nodes if n.name in ("ingest", "validate", "features")])
    project = new_project("relay")
    dead = Tansu()  # a port with nothing listening on it
    monkeypatch.setenv("FUSION_KAFKA_BOOTSTRAP", dead.bootstrap)
    runs = Runs()
    hooks = (EventHooks(runs), RelayHooks(runs, timeout_s=2))
    run_hooks(hooks, project, first_steps)
    store = project / "data/events.db"
    assert pending_count(store) == 3
    assert f"events stay in the outbox (run `fusion relay` later): cannot connect to Kafka at bootstrap='{dead.bootstrap}'" \
        in caplog.text
    live = Tansu().start()
    try:
        monkeypatch.setenv("FUSION_KAFKA_BOOTSTRAP", live.bootstrap)
        run_hooks(hooks, project, first_steps, trace="cd" * 16)
        assert pending_count(store) == 0  # this run's three events and the three the dead broker left
    finally:
        live.kill()
