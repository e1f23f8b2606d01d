"""Build the documentation site into _docs/, offline: `make docs` runs `python docs/build.py`.

1. Copy the notebooks of nbs/ into _proc/ (a sibling of nbs/, so their relative paths and `find_project_root()` work
   the same) and execute the copies with nbdev's own runner (`nbdev.test.test_nb`, as `nbdev-test` does, 2 workers),
   saving their outputs there: nbs/ is never written. A folder with a `.notest` file is not executed (as in
   `nbdev-test`); its notebooks are rendered without outputs and say why.
2. Write the MkDocs sources into _proc/site/: the README as the landing page, one page per notebook (nbdev's page
   names: `features_table.md` for nbs/25_features_table.ipynb), an API page per module, the benchmarks, the layout.
3. Build with MkDocs in strict mode (mkdocs.yml; the nav, grouped by layer, is added here), add `<page>.html.md` (the
   page as markdown, the llms.txt convention) for every notebook, then check every link (docs/linkcheck.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import linkcheck
import nbpages

ROOT = Path(__file__).resolve().parent.parent
NBS, PROC, SITE_DIR = ROOT / "nbs", ROOT / "_proc", ROOT / "_docs"
SRC = PROC / "site"
NOT_EXECUTED = ('!!! note "Shown without outputs"\n    This notebook is not executed when the site is built: {why} '
                "Its folder holds a `.notest` file, so `nbdev-test` skips it too.")
WHY = {"experiments": "it is a parameterised research run (papermill) that trains the model on the sample data and "
       "writes a run into the MLflow store and the event store; `make papermill` runs it."}


def notebooks() -> list[Path]:
    "Every notebook of nbs/ in reading order (the numbers), sub-folders after the top level."
    found = [p for p in NBS.rglob("*.ipynb") if not any(part.startswith((".", "_")) for part in p.relative_to(NBS).parts)]
    return sorted(found, key=lambda p: (len(p.relative_to(NBS).parts), str(p.relative_to(NBS))))


def skipped(nb: Path) -> bool:
    "nbdev-test's rule: a `.notest` file beside a notebook keeps it from running."
    return (nb.parent / ".notest").exists()


def execute(copies: list[Path], workers: int) -> float:
    "Run the copies top to bottom with nbdev's runner, outputs saved into them; exit naming any that fails."
    from fastcore.parallel import parallel
    from nbdev.config import get_config
    from nbdev.test import test_nb

    flags = get_config().tst_flags
    flags = flags.split() if isinstance(flags, str) else list(flags or [])
    start = time.perf_counter()
    results = parallel(test_nb, copies, skip_flags=flags, save=True, n_workers=workers, pause=0.01)
    failed = [c.relative_to(PROC) for c, (ok, _) in zip(copies, results, strict=True) if not ok]
    if failed:
        sys.exit(f"docs: these notebooks failed to execute (traceback above): {', '.join(map(str, failed))}")
    return time.perf_counter() - start


def stage_notebooks(nbs: list[Path], run: bool, workers: int) -> dict[str, str]:
    "Copy, execute and render the notebooks; returns notebook path under nbs/ -> page name."
    copies = {}
    for nb in nbs:
        copy = PROC / nb.relative_to(NBS)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(nb, copy)
        copies[nb] = copy
    todo = [copies[nb] for nb in nbs if run and not skipped(nb)]
    if todo:
        print(f"docs: executing {len(todo)} notebooks ({workers} workers) ...", flush=True)
        print(f"docs: executed in {execute(todo, workers):.0f} s", flush=True)
    pages = {}
    for nb in nbs:
        rel = str(nb.relative_to(NBS))
        pages[rel] = nbpages.page_name(nb, NBS)
        note = ""
        if skipped(nb) or not run:
            why = WHY.get(rel.split("/")[0], "") if skipped(nb) else "the build ran with --no-execute."
            note = NOT_EXECUTED.format(why=why) if skipped(nb) else f'!!! note "Shown without outputs"\n    {why}'
        nbpages.notebook_md(copies[nb], pages[rel], SRC, note)
    return pages


def stage_api(pages: dict[str, str]) -> list[str]:
    "One API page per module of the package (api/<module>.md); returns the modules in order."
    modules = []
    for py in sorted((ROOT / "fusion").rglob("*.py")):
        rel = py.relative_to(ROOT).with_suffix("")
        if any(p.startswith("_") and p != "__init__" for p in rel.parts) or rel.name == "__main__":
            continue
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        source = py.read_text(encoding="utf-8")
        if rel.name == "__init__" and nbpages.module_all(source) is None:
            continue  # a package's docstring is on the API index
        (SRC / "api").mkdir(parents=True, exist_ok=True)
        (SRC / "api" / f"{module}.md").write_text(nbpages.api_md(module, source, pages), encoding="utf-8")
        modules.append(module)
    lines = ["# API reference", "", "Every public name (`__all__`) of every module, from its docstring and signature. "
             "Each page links to the notebook that defines or documents the module.", ""]
    lines += [f"- [`{m}`]({m}.md)" for m in modules]
    (SRC / "api" / "index.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return modules


def stage_pages(pages: dict[str, str]) -> None:
    "The landing page from the README, the benchmarks, the hand-written pages (and stylesheet) of docs/."
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (SRC / "index.md").write_text(nbpages.readme_md(readme, pages), encoding="utf-8")
    for page in sorted([*(ROOT / "docs").glob("*.md"), *(ROOT / "docs").glob("*.css")]):
        shutil.copyfile(page, SRC / page.name)


def nav(pages: dict[str, str], modules: list[str]) -> list:
    "The nav: home, the notebooks grouped by layer in reading order, the API by package, layout, benchmarks."
    groups: dict[str, list] = {}
    names = list(pages.values())
    for name, layer in zip(names, nbpages.layer_of(names), strict=True):
        groups.setdefault(layer, []).append(f"{name}.md")
    api: dict[str, list] = {}
    for m in modules:
        api.setdefault(m.split(".")[1] if m.count(".") else "fusion", []).append({m: f"api/{m}.md"})
    return [{"Home": "index.md"}, {"Layout": "layout.md"}, *({k: v} for k, v in groups.items()),
            {"API reference": ["api/index.md", *({k: v} for k, v in api.items())]}, {"Benchmarks": "benchmarks.md"}]


def mkdocs_build(navigation: list) -> None:
    "MkDocs in strict mode with mkdocs.yml and the generated nav."
    import logging

    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    logging.basicConfig(level=logging.WARNING, format="mkdocs: %(levelname)s %(message)s")
    config = load_config(str(ROOT / "mkdocs.yml"), nav=navigation, strict=True, docs_dir=str(SRC),
                         site_dir=str(SITE_DIR))
    try:
        build(config)
    except MkDocsException as exc:  # strict mode: every warning above fails the build
        sys.exit(f"docs: MkDocs failed: {exc} (pages under {SRC.relative_to(ROOT)}/ are as MkDocs saw them)")


def markdown_copies(pages: dict[str, str]) -> None:
    "`<page>.html.md` beside every notebook page: the page as markdown (images resolve from there too)."
    for page in pages.values():
        shutil.copyfile(SRC / f"{page}.md", SITE_DIR / f"{page}.html.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-execute", action="store_true", help="render the notebooks as stored (no outputs)")
    parser.add_argument("--workers", type=int, default=2, help="notebooks executed at once (default 2)")
    args = parser.parse_args()
    start = time.perf_counter()
    os.chdir(ROOT)
    shutil.rmtree(PROC, ignore_errors=True)
    SRC.mkdir(parents=True)
    pages = stage_notebooks(notebooks(), not args.no_execute, args.workers)
    modules = stage_api(pages)
    stage_pages(pages)
    mkdocs_build(nav(pages, modules))
    markdown_copies(pages)
    report = linkcheck.check_site(SITE_DIR, nbpages.SITE_URL, ROOT)
    print(report.summary())
    if report.errors:
        sys.exit(1)
    print(f"docs: built {SITE_DIR.relative_to(ROOT)}/ in {time.perf_counter() - start:.0f} s "
          f"({len(pages)} notebook pages, {len(modules)} API pages); make docs-serve to read it")


if __name__ == "__main__":
    main()
