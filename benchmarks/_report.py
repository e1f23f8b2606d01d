"""Shared plumbing for benchmarks: machine description and docs/benchmarks.md sections.

Each benchmark owns one section of docs/benchmarks.md, delimited by HTML comments, and rewrites
only that section, so benchmarks can run in any order without clobbering each other.
"""

from __future__ import annotations

import json
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nWritten by the scripts in `benchmarks/`; each owns one section below. Re-run a script to refresh its section.\n"


def machine() -> str:
    """One line naming the machine a figure came from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A markdown table; floats are shown with 4 significant digits."""
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, body: str, doc: Path = DOC) -> None:
    """Replace (or append) the section `name` of docs/benchmarks.md with `body`."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"<!-- {name}:start -->\n{body.rstrip()}\n\n_Machine: {machine()}; run {stamp}._\n<!-- {name}:end -->"
    text = doc.read_text() if doc.exists() else HEADER
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def write_json(path: str | os.PathLike | None, payload: dict) -> None:
    """Write the raw figures as JSON when a path was given."""
    if path:
        Path(path).write_text(json.dumps({"machine": machine(), **payload}, indent=2))
