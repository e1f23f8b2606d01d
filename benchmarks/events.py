"""Event-bus throughput: the outbox relay (events/s acknowledged) and the streaming worker (predictions/s, latency).

Starts its own Tansu broker on a loopback port (memory storage), so figures include a real Kafka protocol round trip.

- relay: N pending outbox rows → `relay_pending` (acks=all, idempotent) → acknowledged; side by side with a bare
  kafka-python producer with the same settings and no outbox (the ceiling). Every event is then read back through
  the consume loop: lost = sent − distinct received, applied twice = must be 0.
- worker: M InferenceRequested events of K instances each drained by `run_worker` (predictions/s), side by side with
  the same `Predictor` called in-process on the same batches (the compute floor, same bundle predictor, warmed up, one torch thread like the worker); and closed-loop latency of single
  requests to a running worker (publish → InferenceCompleted received).

    .venv/bin/python benchmarks/events.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _report import table, write_json, write_section  # noqa: E402

from fusion.events.consume import Ledger, consume, kafka_consumer  # noqa: E402
from fusion.events.relay import KafkaPublisher, relay_pending  # noqa: E402
from fusion.events.worker import run_worker  # noqa: E402
from fusion.config import Settings  # noqa: E402
from fusion.events.store import EventStore, make_event  # noqa: E402
from tests.support.kafka import Tansu  # noqa: E402  (the tests' broker starter)

RELAY_TARGET, WORKER_TARGET = 5000.0, 1000.0
LENGTH = 256  # samples per instance: 5.1 s at 50 Hz, three windows of the default spec


def read_back(bootstrap: str, topic: str, path: Path, expected: int) -> tuple[int, int, int]:
    "(messages, distinct applied, duplicates skipped) on `topic`, through the consume loop."
    seen: set[str] = set()
    stats = consume(kafka_consumer(bootstrap, [topic], group_id=f"bench-{uuid.uuid4().hex[:8]}"),
                    lambda e: seen.add(e.event_id), name="bench", ledger=Ledger(path), max_events=expected,
                    idle_timeout_s=3, max_seconds=120)
    return stats.handled + stats.duplicates, len(seen), stats.duplicates


def bench_relay(broker: Tansu, n: int, tmp: Path) -> list[list[object]]:
    rows = []
    for batch in (500, 2000):
        store = EventStore(tmp / f"relay-{batch}.db")
        store.append_many([make_event("InferenceRequested", {"instances": [{"i": i}], "series_id": f"s{i % 16}"},
                                      uuid.uuid4().hex, "bench") for i in range(n)])
        prefix = f"b{batch}."
        pub = KafkaPublisher(broker.bootstrap)
        pub.publish([])  # connect first, as the peer's producer is connected before its clock starts
        stats = relay_pending(store, pub, prefix, batch=batch)
        pub.close()
        msgs, distinct, dups = read_back(broker.bootstrap, f"{prefix}fusion.inference.requests", tmp / "r.db", n)
        rows.append([f"relay (outbox → acked), batch {batch}", n, stats.relayed / stats.seconds, n - distinct, 0, dups])
    # the ceiling: the same producer settings, no SQLite outbox
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=True,
                             max_in_flight_requests_per_connection=5, linger_ms=5, batch_size=256 * 1024)
    values = [make_event("InferenceRequested", {"instances": [{"i": i}]}, uuid.uuid4().hex, "bench")
              for i in range(n)]
    start = time.perf_counter()
    futures = [producer.send("peer.raw", key=f"s{i % 16}".encode(), value=v.model_dump_json().encode())
               for i, v in enumerate(values)]
    producer.flush()
    acked = sum(1 for f in futures if f.get(10) is not None)
    rate = acked / (time.perf_counter() - start)
    producer.close()
    msgs, distinct, dups = read_back(broker.bootstrap, "peer.raw", tmp / "r.db", n)
    rows.append(["peer: bare kafka-python producer (no outbox)", n, rate, n - distinct, 0, dups])
    return rows


def make_bundle(tmp: Path):
    from tests.support.models import canonical_slice, instances_of, train_model, write_bundle

    canonical = canonical_slice(512)
    model = train_model(canonical)
    ids = list(canonical["series_id"].unique())
    return write_bundle(model, tmp / "exported" / "fusion-classifier" / "1", instances_of(canonical, ids[:2])), \
        model, canonical, ids


def rounded(instances: list[dict]) -> list[dict]:
    "Samples to 4 decimals (sensor precision), so that a request is ~5 KB per instance rather than ~15 KB."
    return [{**i, "channels": {c: [round(v, 4) for v in vs] for c, vs in i["channels"].items()}} for i in instances]


def bench_worker(broker: Tansu, m: int, k: int, latency_n: int, tmp: Path) -> tuple[list[list[object]], dict]:
    from fusion.bundle.verify import load_bundle
    from tests.support.models import instances_of

    path, model, canonical, ids = make_bundle(tmp)
    batches = [rounded(instances_of(canonical, [ids[(i * k + j) % len(ids)] for j in range(k)], length=LENGTH))
               for i in range(m)]
    client = EventStore(tmp / "client.db")
    client.append_many([make_event("InferenceRequested", {"instances": b}, uuid.uuid4().hex, "bench") for b in batches])
    settings = Settings(project_root=tmp, events_db=tmp / "worker.db", kafka_bootstrap=broker.bootstrap,
                        topic_prefix="wb.")
    pub = KafkaPublisher(broker.bootstrap)
    relay_pending(client, pub, "wb.", batch=50)
    start = time.perf_counter()
    stats, published = run_worker(path, settings, idle_timeout_s=2, max_events=m)
    drain = time.perf_counter() - start
    msgs, distinct, dups = read_back(broker.bootstrap, "wb.fusion.inference.results", tmp / "r.db", m)
    predictor = load_bundle(path).predictor()  # as the worker does: the bundle's predictor, warmed up, 1 thread
    predictor.warmup()
    start = time.perf_counter()
    for b in batches:
        predictor.predict(b)
    direct = time.perf_counter() - start
    rows = [[f"worker: {m} requests × {k} instances (first request → last result acked)", m * k,
             m * k / stats.busy_seconds, m - distinct, stats.duplicates, dups],
            [f"worker: the same, wall incl. joining the group ({drain:.1f} s)", m * k, m * k / drain, m - distinct,
             stats.duplicates, dups],
            [f"peer: Predictor.predict in-process, {m} batches of {k}", m * k, m * k / direct, 0, 0, 0]]
    return rows, latency(broker, path, batches[0][:1], latency_n, tmp, pub)


def latency(broker: Tansu, path: Path, instances: list[dict], n: int, tmp: Path, pub: KafkaPublisher) -> dict:
    "Closed loop: one request at a time to a running worker; publish → result received, in ms."
    settings = Settings(project_root=tmp, events_db=tmp / "worker-lat.db", kafka_bootstrap=broker.bootstrap,
                        topic_prefix="lat.")
    worker = threading.Thread(target=run_worker, args=(path, settings),
                              kwargs={"max_events": n + 1, "max_seconds": 120}, daemon=True)
    worker.start()
    results = kafka_consumer(broker.bootstrap, ["lat.fusion.inference.results"], group_id="bench-lat")
    client = EventStore(tmp / "client-lat.db")
    times = []
    for i in range(n + 1):  # the first one pays the group joins
        req = client.append(make_event("InferenceRequested", {"instances": instances}, uuid.uuid4().hex, "bench"))
        t0 = time.perf_counter()
        relay_pending(client, pub, "lat.")
        got, deadline = False, time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            for msgs in results.poll(timeout_ms=100).values():
                got = got or any(json.loads(m.value)["payload"]["request_event_id"] == req.event_id for m in msgs)
        if i:
            times.append((time.perf_counter() - t0) * 1000)
    results.close()
    worker.join(30)
    q = statistics.quantiles(times, n=20)
    return {"requests": n, "p50_ms": statistics.median(times), "p95_ms": q[18], "max_ms": max(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (≈1 min)")
    ap.add_argument("--json", help="write the raw figures here")
    args = ap.parse_args()
    n, m, k, lat = (5000, 50, 64, 20) if args.quick else (50000, 250, 64, 100)
    broker = Tansu().start()
    try:
        with tempfile.TemporaryDirectory() as d:
            relay_rows = bench_relay(broker, n, Path(d))
            print("relay done", file=sys.stderr)
            worker_rows, lat_stats = bench_worker(broker, m, k, lat, Path(d))
    finally:
        broker.kill()
    headers = ["what", "events or predictions", "per second", "lost", "applied twice", "redelivered (skipped)"]
    relay_rate = relay_rows[0][2]
    worker_rate = worker_rows[0][2]  # steady state, first request to last result
    body = "\n\n".join([
        "## Event bus: relay and streaming worker (Tansu on loopback)",
        table(headers, relay_rows + worker_rows),
        f"Worker latency, one request of 1 instance at a time to a running worker (publish → InferenceCompleted "
        f"received): p50 {lat_stats['p50_ms']:.1f} ms, p95 {lat_stats['p95_ms']:.1f} ms, max {lat_stats['max_ms']:.1f} ms "
        f"over {lat_stats['requests']} requests.",
        f"Targets: relay ≥ {RELAY_TARGET:.0f} events/s → {'met' if relay_rate >= RELAY_TARGET else 'MISSED'} "
        f"({relay_rate:.0f}); worker ≥ {WORKER_TARGET:.0f} predictions/s → "
        f"{'met' if worker_rate >= WORKER_TARGET else 'MISSED'} ({worker_rate:.0f}); lost and applied twice: 0 "
        f"→ {'met' if all(r[3] == 0 and r[4] == 0 for r in relay_rows + worker_rows) else 'MISSED'}."
        + (" (`--quick` sizes.)" if args.quick else "")])
    print(body)
    write_section("events", body)
    write_json(args.json, {"relay": relay_rows, "worker": worker_rows, "latency": lat_stats})


if __name__ == "__main__":
    main()
