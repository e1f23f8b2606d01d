"""Time the documentation site's build: `make docs`'s `docs/build.py`, with and without executing the notebooks.

    python benchmarks/docs.py            # two builds of each kind; writes its section of docs/benchmarks.md

The peer is the one the site replaces: nbdev's own `nbdev-docs` cannot build here at all (it downloads Quarto at
build time, and this machine has no network), so the table says so instead of timing it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, table, write_json, write_section  # noqa: E402


def time_build(*args: str) -> float:
    "Wall seconds of one `docs/build.py` run (it fails loudly: a broken link or notebook stops the benchmark)."
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "docs" / "build.py"), *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "DO_NOT_TRACK": "true", "MPLBACKEND": "Agg"})
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2, help="builds of each kind (the best is reported)")
    ap.add_argument("--json", metavar="PATH", help="also write the raw figures as JSON")
    args = ap.parse_args()
    full = [time_build() for _ in range(args.runs)]
    quick = [time_build("--no-execute") for _ in range(args.runs)]
    pages = len(list((ROOT / "_docs").rglob("*.html")))
    rows = [["`make docs` (executes every notebook in a copy, MkDocs --strict, link check)", min(full), max(full)],
            ["`docs/build.py --no-execute` (notebooks as stored, no outputs)", min(quick), max(quick)],
            ["nbdev-docs (Quarto)", "n/a", "n/a: downloads Quarto at build time; no network here"]]
    body = ("## Docs site: build time\n\n"
            f"Offline build of `_docs/` ({pages} HTML pages): MkDocs (Material) + mkdocstrings, notebooks executed with "
            f"2 workers. Best and worst of {args.runs} builds, seconds.\n\n"
            + table(["build", "best s", "worst s"], rows))
    write_section("docs", body)
    write_json(args.json, {"full_s": full, "no_execute_s": quick, "pages": pages})
    print(body)


if __name__ == "__main__":
    main()
