"""`fusion worker`: InferenceRequested → the serving predictor → InferenceCompleted; duplicates skipped, poison to the DLQ."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from kafka import KafkaProducer

from fusion.events.worker import result_id, run_worker
from fusion.config import Settings
from fusion.errors import BundleIntegrityError
from fusion.events.store import EventStore, make_event
from fusion.inference.predictor import Predictor
from tests.support.kafka import read_topics
from tests.support.project import fusion
from tests.support.models import canonical_slice, instances_of, train_model, write_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    canonical = canonical_slice(256)
    model = train_model(canonical)
    ids = list(canonical["series_id"].unique())
    path = write_bundle(model, tmp_path_factory.mktemp("exported") / "fusion-classifier" / "1", instances_of(canonical, ids[:2]))
    return path, model, canonical, ids


def test_worker_answers_requests_once_and_dead_letters_poison(tmp_path, broker, bundle):
    path, model, canonical, ids = bundle
    env = {"DO_NOT_TRACK": "true", "PATH": str(Path(sys.executable).parent), "FUSION_KAFKA_BOOTSTRAP": broker.bootstrap,
           "FUSION_TOPIC_PREFIX": "w.", "FUSION_EVENTS_DB": str(tmp_path / "worker.db"),
           "FUSION_PROJECT_ROOT": str(tmp_path)}  # a worker runs outside any project
    client = EventStore(tmp_path / "client.db")  # the requester's own store and outbox
    requests = [client.append(make_event("InferenceRequested", {"instances": instances_of(canonical, ids[2 * i:2 * i + 2])},
                                         f"{i + 1:032x}", "test")) for i in range(4)]
    bad = client.append(make_event("InferenceRequested", {"instances": [{"series_id": "x", "channels": {"ax": [1.0]}}]},
                                   "e" * 32, "test"))
    assert fusion(["relay", "--once", "--db", str(client.path)], env, tmp_path).returncode == 0
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    producer.send("w.fusion.inference.requests", key=b"k", value=b'{"type": "InferenceRequested", "payload": 1')
    producer.send("w.fusion.inference.requests", key=requests[0].trace_id.encode(),
                  value=requests[0].model_dump_json().encode())  # a redelivery of the first request
    producer.flush()
    producer.close()

    res = fusion(["worker", str(path), "--idle-timeout", "2", "--json"], env, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    counts = json.loads(res.stdout.strip().splitlines()[-1])
    assert {k: counts[k] for k in ("answered", "published", "duplicates", "dead_lettered")} == {
        "answered": 4, "published": 4, "duplicates": 1, "dead_lettered": 2}, counts
    assert "missing channel(s) ['ay', 'az', 'wx', 'wy', 'wz']" in " ".join(counts["reasons"])
    assert any(r.startswith("not a valid event envelope: value: Invalid JSON") for r in counts["reasons"])

    results = {e.payload["request_event_id"]: e for e in EventStore(tmp_path / "worker.db").events(type="InferenceCompleted")}
    assert set(results) == {r.event_id for r in requests}
    predictor = Predictor(model)  # the HTTP service's predictor gives the same answers
    for r in requests:
        out = results[r.event_id]
        assert (out.trace_id, out.event_id) == (r.trace_id, result_id(r.event_id))
        want = predictor.predict(r.payload["instances"])  # same code; the worker's 1 torch thread sums in another order
        assert [(p["series_id"], p["label"]) for p in out.payload["predictions"]] == [(p["series_id"], p["label"]) for p in want]
        for got, exp in zip(out.payload["predictions"], want, strict=True):
            assert got["probabilities"] == pytest.approx(exp["probabilities"], abs=1e-5)
        assert out.payload["model"]["name"] == "fusion-classifier" and out.payload["model"]["version"] == "1"

    applied, raw, _ = read_topics(broker.bootstrap, ["w.fusion.inference.results", "w.fusion.dlq"], tmp_path / "r.db")
    assert sorted(e.event_id for e in applied) == sorted(result_id(r.event_id) for r in requests)
    dead = [json.loads(m.value) for m in raw if m.topic == "w.fusion.dlq"]
    assert len(dead) == 2 and {d["consumer"] for d in dead} == {"worker:fusion-classifier:1"}
    assert bad.event_id in " ".join(d["value"] for d in dead)

    settings = Settings(project_root=tmp_path, events_db=tmp_path / "worker.db", kafka_bootstrap=broker.bootstrap,
                        topic_prefix="w.")
    again, published = run_worker(path, settings, idle_timeout_s=1.5)  # the same group: offsets were committed
    assert (again.handled, again.duplicates, again.dead_lettered, published) == (0, 0, 0, 0)


def test_a_tampered_bundle_is_refused_before_consuming(tmp_path, broker, bundle):
    path = Path(shutil.copytree(bundle[0], tmp_path / "b"))
    (path / "labels.json").write_text("[]")
    settings = Settings(project_root=tmp_path, events_db=tmp_path / "w.db", kafka_bootstrap=broker.bootstrap)
    with pytest.raises(BundleIntegrityError, match=r"does not match its MANIFEST.json: sha256 mismatch in \['labels.json'\]"):
        run_worker(path, settings, max_events=1)
    assert not (tmp_path / "w.db").exists()  # refused before opening the store or consuming
