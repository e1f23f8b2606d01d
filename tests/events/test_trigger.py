"""`fusion trigger`: a DataReady published to Kafka starts the remaining pipelines under its trace id."""

from __future__ import annotations

import json

import pytest

from fusion.events.store import EventStore, make_event
from tests.support.kafka import read_topics
from tests.support.project import fusion, kedro, make_project


@pytest.mark.slow
def test_a_published_data_ready_trains_a_model_under_its_trace_id(tmp_path, broker):
    env = {**make_project(tmp_path), "FUSION_KAFKA_BOOTSTRAP": broker.bootstrap, "FUSION_TOPIC_PREFIX": "trig."}
    res = kedro(["run", "--pipeline", "ingest"], tmp_path, env)  # records DataReady in the outbox
    assert res.returncode == 0, res.stderr[-2000:]
    store = EventStore(tmp_path / "events.db")
    (ready,) = store.events(type="DataReady")
    # a second producer's DataReady for data this project does not have: refused to the DLQ, the trigger goes on
    other = store.append(make_event("DataReady", {**ready.payload, "data_hash": "0" * 64}, "ef" * 16, "elsewhere"))
    assert fusion(["relay", "--once"], env, tmp_path).returncode == 0

    res = fusion(["trigger", "--max-events", "2", "--idle-timeout", "30", "--json", "--params", "train.max_epochs=3"],
                 env, tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    counts = json.loads(res.stdout.strip().splitlines()[-1])
    assert (counts["runs"], counts["dead_lettered"]) == (1, 1), counts["reasons"]
    assert f"names data_hash={'0' * 64}, but canonical_samples" in counts["reasons"][0]

    chain = store.events(trace_id=ready.trace_id)
    assert [e.type for e in chain] == ["DataReady", "DataValidated", "FeaturesReady", "ModelTrained"]
    trained = chain[-1].payload
    assert trained["model_name"] == "fusion-classifier" and int(trained["model_version"]) == 1
    assert store.events(trace_id=other.trace_id) == [other]

    res = fusion(["lineage", "fusion-classifier:1", "--json"], env, tmp_path)  # the read model of the same story
    assert res.returncode == 0, res.stderr
    chain = json.loads(res.stdout)
    assert chain["trace_id"] == ready.trace_id and chain["data"]["data_hash"] == ready.payload["data_hash"]
    assert chain["validation"]["rows_in"] == ready.payload["rows"] == 244102
    assert chain["training"]["mlflow_run_id"] == trained["mlflow_run_id"]
    assert chain["features"]["feature_spec_digest"] == trained["feature_spec_digest"]
    rebuilt = json.loads(fusion(["lineage", ready.trace_id, "--json", "--rebuild"], env, tmp_path).stdout)
    assert rebuilt == chain

    applied, raw, _ = read_topics(broker.bootstrap, ["trig.fusion.models", "trig.fusion.dlq"], tmp_path / "r.db")
    assert [(e.type, e.trace_id) for e in applied] == [("ModelTrained", ready.trace_id)]
    (dead,) = [json.loads(m.value) for m in raw if m.topic == "trig.fusion.dlq"]
    assert dead["consumer"] == "trigger" and json.loads(dead["value"])["event_id"] == other.event_id
