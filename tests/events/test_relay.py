"""The relay against a real broker: a `kedro run`'s chain on the topics, a broker down during the run, a relay killed mid-drain."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from fusion.commands.exits import ExitCode
from fusion.names import PIPELINE_EVENTS
from fusion.events.store import EventStore, make_event
from tests.support.kafka import Tansu, pending_count, read_topics
from tests.support.project import FUSION, fusion, kedro, make_project

TOPICS = ["fusion.data", "fusion.features", "fusion.models"]


@pytest.mark.slow
def test_broker_down_during_run_then_the_chain_flows_in_order(tmp_path):
    """The broker dies before `kedro run`: the run succeeds, its 4 events wait; the broker comes back: they flow, in order."""
    down = Tansu().start()
    down.kill()  # the port is known, nothing listens on it any more
    env = {**make_project(tmp_path), "FUSION_KAFKA_BOOTSTRAP": down.bootstrap, "FUSION_TOPIC_PREFIX": "t1."}
    res = kedro(["run"], tmp_path, env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    store = EventStore(tmp_path / "events.db")
    stored = store.events()
    assert [e.type for e in stored] == list(PIPELINE_EVENTS) and len({e.trace_id for e in stored}) == 1
    assert pending_count(store.path) == 4

    res = fusion(["relay", "--once"], env, tmp_path)
    assert res.returncode == ExitCode.BROKER, res.stdout + res.stderr
    assert f"relay stopped: cannot connect to Kafka at bootstrap='{down.bootstrap}'" in res.stderr
    assert pending_count(store.path) == 4

    back = Tansu(port=down.port).start()  # a broker is back on the same address
    try:
        res = fusion(["relay", "--once", "--json"], env, tmp_path)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["topics"] == {"fusion.data": 2, "fusion.features": 1, "fusion.models": 1}
        assert pending_count(store.path) == 0
        applied, raw, stats = read_topics(back.bootstrap, [f"t1.{t}" for t in TOPICS], tmp_path / "reader.db")
    finally:
        back.kill()
    assert stats.duplicates == 0 and len(raw) == 4
    assert [e.event_id for e in sorted(applied, key=lambda e: e.occurred_at)] == [e.event_id for e in stored]
    assert {e.trace_id for e in applied} == {stored[0].trace_id}
    data = sorted((m for m in raw if m.topic == "t1.fusion.data"), key=lambda m: m.offset)
    assert [json.loads(m.value)["type"] for m in data] == ["DataReady", "DataValidated"]
    assert {m.key for m in raw} == {stored[0].trace_id.encode()}
    assert dict(raw[0].headers)["fusion.trace_id"] == stored[0].trace_id.encode()


def test_no_broker_configured_leaves_the_outbox_waiting(tmp_path):
    store = EventStore(tmp_path / "events.db")
    store.append(make_event("InferenceRequested", {"instances": []}, "ab" * 16, "test"))
    env = {**make_project(tmp_path), "FUSION_KAFKA_BOOTSTRAP": ""}
    res = fusion(["relay", "--once"], env, tmp_path)
    assert res.returncode == 0 and "no broker configured" in res.stderr
    assert pending_count(store.path) == 1


def test_relay_killed_mid_drain_loses_nothing_and_applies_nothing_twice(tmp_path, broker):
    n, trace = 3000, "cd" * 16
    store = EventStore(tmp_path / "events.db")
    events = [make_event("InferenceRequested", {"instances": [{"i": i}], "series_id": f"s{i % 8}"}, trace, "test")
              for i in range(n)]
    store.append_many(events)
    env = {**make_project(tmp_path), "FUSION_KAFKA_BOOTSTRAP": broker.bootstrap, "FUSION_TOPIC_PREFIX": "kill."}
    relay = subprocess.Popen([FUSION, "relay", "--batch", "25"], env=env, cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while pending_count(store.path) > n * 0.7 and time.monotonic() < deadline and relay.poll() is None:
        time.sleep(0.01)
    relay.send_signal(signal.SIGKILL)
    relay.wait(10)
    left = pending_count(store.path)
    assert 0 < left < n, f"the kill should land mid-drain; {left} of {n} pending"

    res = fusion(["relay", "--once", "--json"], env, tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["relayed"] == left and pending_count(store.path) == 0

    applied, raw, stats = read_topics(broker.bootstrap, ["kill.fusion.inference.requests"], tmp_path / "reader.db")
    assert sorted(e.event_id for e in applied) == sorted(e.event_id for e in events)  # none lost
    assert stats.handled == n and stats.duplicates == len(raw) - n  # redelivered ones skipped, none applied twice
    first_seen: dict[bytes, list[int]] = {}
    for m in sorted(raw, key=lambda m: (m.partition, m.offset)):
        first_seen.setdefault(m.key, []).append(json.loads(m.value)["payload"]["instances"][0]["i"])
    for key, seq in first_seen.items():  # per key, order kept (a re-sent tail only repeats, never reorders)
        firsts = list(dict.fromkeys(seq))
        assert firsts == sorted(firsts), key
