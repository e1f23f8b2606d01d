"""Notebooks, the README and the package as markdown pages for MkDocs (used by docs/build.py).

A notebook `nbs/25_features_table.ipynb` becomes the page `features_table.md` (nbdev's page name: the notebook's name
without its number, so the modules' "Docs: .../features_table.html.md" links resolve); its images are written beside
it, in `features_table_files/`. Cells nbdev hides from docs (`#| hide`, `#| default_exp` alone, `#| include: false`)
are left out, and directive lines are dropped from the code shown.
"""

from __future__ import annotations

import ast
import base64
import json
import re
from pathlib import Path

REPO_URL = "https://github.com/fusion-dev/fusion"
SITE_URL = "https://fusion-dev.github.io/fusion/"

# The nav's layers, from the first word of a notebook's page name; a name not listed takes the layer of the notebook
# before it (notebooks are numbered by layer, so a new `27_features_x` lands in Features).
LAYERS = {"names": "Core", "errors": "Core", "config": "Core", "pipelines": "Core", "data": "Data",
          "features": "Features", "kernels": "Features", "model": "Model", "train": "Model", "tracking": "Tracking",
          "bundle": "Bundle", "export": "Bundle", "inference": "Inference", "serving": "Serving", "events": "Events",
          "commands": "Commands", "experiments": "Experiments"}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_DIRECTIVE = re.compile(r"^#\|\s*([\w-]+)\s*:?\s*(.*)$")
_NB_LINK = re.compile(r"\]\((?:\.\./nbs/|nbs/)?(?:[\w-]+/)*\d+[a-z]?_([\w-]+)\.ipynb(#[^)]*)?\)")


def page_name(nb: Path, nbs: Path) -> str:
    "nbdev's page path of a notebook: its path under nbs/ without the number prefix and suffix."
    rel = nb.relative_to(nbs).with_suffix("")
    return str(rel.parent / re.sub(r"^\d+[a-z]?_", "", rel.name)).removeprefix("./")


def layer_of(names: list[str]) -> list[str]:
    "The nav layer of each page, in order (see LAYERS)."
    out, last = [], "Core"
    for name in names:
        last = LAYERS.get(name.split("/")[0].split("_")[0], last)
        out.append(last)
    return out


def _directives(src: str) -> tuple[dict[str, str], str]:
    "A code cell's `#|` directives and its source without them."
    found, lines = {}, src.splitlines()
    while lines and (m := _DIRECTIVE.match(lines[0].strip())):
        found[m.group(1)] = m.group(2).strip()
        lines.pop(0)
    return found, "\n".join(lines).strip("\n")


def _fence(text: str, lang: str = "text") -> str:
    text = _ANSI.sub("", text).rstrip("\n")
    ticks = "````" if "```" in text else "```"
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _join(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def _output_md(out: dict, files: Path, stem: str, count: list[int]) -> str:
    "One output as markdown: an image file, markdown, raw HTML or a text block."
    kind = out["output_type"]
    if kind == "stream":
        return _fence(_join(out["text"]))
    if kind == "error":
        return _fence("\n".join(out.get("traceback", [])) or f"{out['ename']}: {out['evalue']}")
    data = out.get("data", {})
    for mime, ext in (("image/png", "png"), ("image/jpeg", "jpg"), ("image/svg+xml", "svg")):
        if mime in data:
            count[0] += 1
            files.mkdir(parents=True, exist_ok=True)
            target = files / f"output_{count[0]}.{ext}"
            raw = _join(data[mime])
            target.write_bytes(raw.encode() if ext == "svg" else base64.b64decode(raw))
            alt = _join(data.get("text/plain", "output")).replace("<", "").replace(">", "").replace("\n", " ")
            return f"![{alt}]({stem}_files/{target.name})"
    if "text/markdown" in data:
        return _join(data["text/markdown"])
    if "text/html" in data:
        return f'<div class="nb-output" markdown="0">\n{_join(data["text/html"]).strip()}\n</div>'
    if "text/plain" in data:
        return _fence(_join(data["text/plain"]))
    return ""


def _outputs_md(outputs: list[dict], files: Path, stem: str, count: list[int]) -> list[str]:
    "Outputs in order, consecutive stream outputs of one stream merged into one block."
    merged: list[dict] = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if prev and out["output_type"] == prev["output_type"] == "stream" and out["name"] == prev["name"]:
            prev["text"] = _join(prev["text"]) + _join(out["text"])
        else:
            merged.append(dict(out))
    return [md for out in merged if (md := _output_md(out, files, stem, count))]


def fix_nb_links(markdown: str) -> str:
    "Links to notebooks (`25_features_table.ipynb`) become links to their pages (`features_table.md`)."
    return _NB_LINK.sub(lambda m: f"]({m.group(1)}.md{m.group(2) or ''})", markdown)


def notebook_md(nb_path: Path, page: str, out_dir: Path, note: str = "") -> Path:
    "Write the page `<page>.md` (and its images) of a notebook, executed or not, under `out_dir`."
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    target = out_dir / f"{page}.md"
    stem = Path(page).name
    files, count, parts = target.parent / f"{stem}_files", [0], []
    for cell in nb["cells"]:
        src = _join(cell["source"])
        if cell["cell_type"] == "markdown":
            parts.append(fix_nb_links(src))
            if note and len(parts) == 1:  # after the title and summary
                parts.append(note)
            continue
        if cell["cell_type"] != "code":
            continue
        flags, code = _directives(src)
        if "hide" in flags or flags.get("include") == "false" or not code:
            continue
        if flags.get("echo") != "false":
            parts.append(_fence(code, "python"))
        if flags.get("output") != "false":
            parts += _outputs_md(cell.get("outputs", []), files, stem, count)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return target


def readme_md(readme: str, pages: dict[str, str]) -> str:
    """The README as the landing page: links to notebooks go to their pages, to docs/ to the site's pages, and to other
    files of the repository to the repository (`pages`: notebook path under nbs/ -> page name)."""

    def link(m: re.Match) -> str:
        text, url = m.group(1), m.group(2)
        if re.match(r"^[a-z]+:|^#", url):
            return m.group(0)
        path, _, frag = url.partition("#")
        frag = f"#{frag}" if frag else ""
        if path.startswith("nbs/") and path[4:] in pages:
            return f"[{text}]({pages[path[4:]]}.md{frag})"
        if path.startswith("docs/") and path.endswith(".md"):
            return f"[{text}]({path[5:]}{frag})"
        return f"[{text}]({REPO_URL}/blob/main/{path}{frag})"

    return re.sub(r"\[([^\]]*)\]\(([^)\s]+)\)", link, readme)


def module_notebooks(source: str) -> list[str]:
    "The notebooks that define or document a module: its AUTOGENERATED line, else those its docstring names."
    m = re.search(r"AUTOGENERATED! DO NOT EDIT! File to edit: (?:\.\./)+nbs/(\S+\.ipynb)", source)
    if m:
        return [m.group(1)]
    doc = ast.get_docstring(ast.parse(source)) or ""
    return list(dict.fromkeys(re.findall(r"nbs/((?:[\w-]+/)*\d+[a-z]?_[\w-]+\.ipynb)", doc)))


def module_all(source: str) -> list[str] | None:
    "The names of a module's `__all__` (None when it has none)."
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return None


def api_md(module: str, source: str, nb_pages: dict[str, str]) -> str:
    "The API page of one module: where it is documented, then mkdocstrings' rendering of every name of `__all__`."
    names = module_all(source)
    nbs = [n for n in module_notebooks(source) if n in nb_pages]
    where = ", ".join(f"[{nb_pages[n]}](../{nb_pages[n]}.md)" for n in nbs)
    generated = "AUTOGENERATED" in source
    lead = (f"Defined in the notebook {where}." if generated else f"Hand-written; documented in {where}.") if nbs \
        else "Hand-written; documented in its docstring."
    members = "false" if not names else "\n" + "\n".join(f"        - {n}" for n in names)
    table = ""
    if names:
        defined = ", ".join(f"[{nb_pages[n]}](../{nb_pages[n]}.md)" for n in nbs) or "its docstring"
        rows = "".join(f"| [`{n}`](#{module}.{n}) | {defined} |\n" for n in names)
        table = f"| `__all__` | notebook |\n|---|---|\n{rows}\n"
    return (f"# `{module}`\n\n{lead}\n\n{table}::: {module}\n    options:\n      show_root_heading: false\n"
            f"      show_root_toc_entry: false\n      members: {members}\n")
