"""The event-bus tests' broker: one real Tansu broker for the session (helpers in tests/support/kafka.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kafka import Tansu


@pytest.fixture(scope="session")
def broker() -> Iterator[Tansu]:
    "One Tansu broker for the session."
    b = Tansu().start()
    yield b
    b.kill()
