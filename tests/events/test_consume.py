"""The consume loop against a real broker: a handler fault that may pass is retried on restart, then dead-lettered."""

from __future__ import annotations

import json
import uuid

import pytest

from fusion.events.consume import MAX_ATTEMPTS, Ledger, consume, kafka_consumer
from fusion.events.relay import KafkaPublisher, Record
from fusion.events.store import DLQ_TOPIC, make_event
from tests.support.kafka import read_topics


def test_a_failing_handler_is_retried_on_restart_then_dead_lettered(tmp_path, broker):
    prefix = f"c{uuid.uuid4().hex[:6]}."
    topic, group = f"{prefix}fusion.inference.requests", f"flaky-{uuid.uuid4().hex[:6]}"
    event = make_event("InferenceRequested", {"instances": [{"series_id": "s"}]}, "ab" * 16, "test")
    publisher = KafkaPublisher(broker.bootstrap, client_id="test")
    try:
        assert publisher.publish([Record(topic, b"k", event.model_dump_json().encode())]) == [None]
        ledger, calls = Ledger(tmp_path / "events.db"), []

        def flaky(e) -> None:
            calls.append(e.event_id)
            raise OSError("disk full")

        def run():  # one consumer process's life: join the group, consume until idle
            consumer = kafka_consumer(broker.bootstrap, [topic], group_id=group)
            return consume(consumer, flaky, name="flaky", ledger=ledger, publisher=publisher, prefix=prefix,
                           idle_timeout_s=2.0, max_seconds=60)

        for _ in range(MAX_ATTEMPTS - 1):  # each failure stops the consumer before it commits
            with pytest.raises(OSError, match="disk full"):
                run()
        stats = run()  # the last attempt: dead-lettered, and the offset committed
        assert (stats.dead_lettered, stats.handled) == (1, 0)
        assert calls == [event.event_id] * MAX_ATTEMPTS
        assert run().dead_lettered == 0 and len(calls) == MAX_ATTEMPTS  # committed: nothing comes back
    finally:
        publisher.close()
    _, raw, _ = read_topics(broker.bootstrap, [f"{prefix}{DLQ_TOPIC}"], tmp_path / "reader.db")
    letters = [json.loads(m.value) for m in raw]
    assert [(d["reason"], d["topic"], d["consumer"]) for d in letters] == [
        (f"gave up after {MAX_ATTEMPTS} attempts: OSError: disk full", topic, "flaky")]
