"""fusion.config: one `free_port` for production, tests and benchmarks alike."""

from __future__ import annotations

import re
import socket

import pytest

from fusion.config import free_port
from tests.support.project import ROOT

# A port picked by hand: bind port 0, read the number back. Only fusion.config (and its notebook) may do it.
PICKS_A_PORT = re.compile(r"def free_port\b|getsockname\(\)\[1\]")
HOME = {"fusion/config.py", "nbs/02_config.ipynb", "tests/test_config.py"}  # and this test, which names them


def test_free_port_is_free():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # nothing holds it
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", free_port()), timeout=2).close()  # nothing listens on it


def test_there_is_one_free_port():
    sources = [p for d in ("fusion", "tests", "benchmarks", "nbs") for p in (ROOT / d).rglob("*")
               if p.suffix in {".py", ".ipynb"} and ".ipynb_checkpoints" not in p.parts]
    copies = sorted(str(p.relative_to(ROOT)) for p in sources
                    if str(p.relative_to(ROOT)) not in HOME and PICKS_A_PORT.search(p.read_text(encoding="utf-8")))
    assert copies == [], f"use fusion.config.free_port instead of a copy in: {copies}"
