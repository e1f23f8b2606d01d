"""`fusion lineage`: the read model answers by trace id and by model version, and is rebuilt from the store alone."""

from __future__ import annotations

import json
import re
import sqlite3

from fusion.events.lineage import Lineage, lookup
from fusion.events.store import EventStore, make_event
from tests.support.project import fusion, make_project

TRACE = "a1" * 16


def _store(path) -> EventStore:
    store = EventStore(path)
    for kind, payload in [
        ("DataReady", {"data_hash": "d" * 64, "rows": 1800, "series": 6, "channels": ["ax", "ay"]}),
        ("DataValidated", {"data_hash": "d" * 64, "rows_in": 1800, "rows_clean": 1750, "rows_quarantined": 50,
                           "reasons": {"nan": 50}}),
        ("FeaturesReady", {"data_hash": "d" * 64, "feature_spec_digest": "f" * 64, "feature_spec": {"window": 8},
                           "rows": 60, "series": 6}),
        ("ModelTrained", {"data_hash": None, "feature_spec_digest": "f" * 64, "mlflow_run_id": "run1",
                          "model_name": "fusion-classifier", "model_version": "4", "metrics": {"test_accuracy": 0.9}})]:
        store.append(make_event(kind, payload, TRACE, "test"))
    for i in range(3):  # predictions made with that model, each under its own request's trace
        store.append(make_event("InferenceCompleted", {"predictions": [{"label": "a"}] * (i + 1), "model": {
            "name": "fusion-classifier", "version": "4", "bundle": "b" * 64}}, f"{i + 1:032x}", "worker"))
    return store


def test_lineage_cli_by_model_version_and_trace(tmp_path):
    env = make_project(tmp_path)
    _store(tmp_path / "events.db")
    bundle = tmp_path / "exported" / "fusion-classifier" / "4"
    bundle.mkdir(parents=True)
    (bundle / "MANIFEST.json").write_text("{}")
    res = fusion(["lineage", "fusion-classifier:4", "--json"], env, tmp_path)
    assert res.returncode == 0, res.stderr
    chain = json.loads(res.stdout)
    assert chain["trace_id"] == TRACE and chain["data"]["data_hash"] == "d" * 64  # from DataReady: ModelTrained had none
    assert chain["validation"] == {"rows_in": 1800, "rows_clean": 1750, "rows_quarantined": 50, "reasons": {"nan": 50}}
    assert chain["features"]["feature_spec_digest"] == "f" * 64 and chain["training"]["mlflow_run_id"] == "run1"
    assert chain["model"] == {"name": "fusion-classifier", "version": "4"}
    assert chain["bundle"] == {"path": str(bundle)}
    assert (chain["predictions"]["events"], chain["predictions"]["instances"]) == (3, 6)
    text = fusion(["lineage", TRACE], env, tmp_path)
    assert text.returncode == 0 and "model fusion-classifier version 4" in text.stdout and "quarantined=50" in text.stdout

    missing = fusion(["lineage", "fusion-classifier:5"], env, tmp_path)
    assert missing.returncode == 1 and "no lineage for 'fusion-classifier:5'" in missing.stderr
    bad = fusion(["lineage", "not-a-ref"], env, tmp_path)
    flat = " ".join(re.sub("[│╭╮╰╯─]", " ", bad.stderr).split())  # typer draws the error in a wrapped box
    assert bad.returncode == 2 and "got 'not-a-ref'" in flat and "trace id (32 hex digits) or model_name:version" in flat


def test_the_projection_is_rebuilt_from_the_store_alone(tmp_path):
    store = _store(tmp_path / "events.db")
    lineage = Lineage(tmp_path / "events.db")
    assert lineage.update(store) == 7 and lineage.update(store) == 0
    before = lookup(lineage, TRACE)
    with sqlite3.connect(lineage.path) as db:  # the read model is disposable: wreck it
        db.execute("UPDATE lineage_runs SET rows_clean = -1, model_version = NULL")
        db.execute("DELETE FROM lineage_predictions")
    assert lookup(lineage, TRACE)["validation"]["rows_clean"] == -1
    assert lineage.rebuild(store) == 7
    assert lookup(lineage, TRACE) == before
