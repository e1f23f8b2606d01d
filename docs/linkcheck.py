"""Check the links of a built site, offline: every internal href/src and #anchor must resolve in the site.

Internal: a relative link, a root-relative one under the site's path, or an absolute one under the site URL; it must
name a file of the site (a folder: its index.html) and, when it has a fragment and points at an HTML page, an id (or
`<a name>`) of that page. External links are not fetched (no network) but listed in `external-links.txt`; a page
that would LOAD something from outside (a script, a stylesheet, an image, a frame) is an error, since the site must
work offline. Also checked: every module's "Docs: <url>" and every link of nbs/llms.txt name a file of the site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

_LOADS = {("script", "src"), ("img", "src"), ("iframe", "src"), ("source", "src"), ("video", "src"),
          ("audio", "src"), ("embed", "src"), ("link", "href")}
_SKIP_SCHEMES = ("mailto:", "javascript:", "data:", "tel:")


class _Page(HTMLParser):
    "The ids of one page and its links as (tag, attribute, url)."

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v for k, v in attrs if v is not None}
        self.ids.update(v for k, v in a.items() if k == "id" or (k == "name" and tag == "a"))
        for attr in ("href", "src"):
            if attr in a and not (tag == "link" and a.get("rel") in ("canonical", "alternate")):
                self.links.append((tag, attr, a[attr].strip()))


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    external: dict[str, set[str]] = field(default_factory=dict)  # url -> pages that link to it
    checked: int = 0

    def summary(self) -> str:
        head = f"linkcheck: {self.checked} internal links checked, {len(self.external)} external links listed"
        if not self.errors:
            return head + ", none broken"
        return "\n".join([f"{head}, {len(self.errors)} BROKEN:", *(f"  {e}" for e in self.errors)])


def parse(page: Path) -> _Page:
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parser


def _local(url: str, page: Path, site: Path, site_url: str) -> str | None:
    "The path under the site that an internal URL names (None: external or not a location)."
    base = urlsplit(site_url)
    if url.startswith(_SKIP_SCHEMES):
        return None
    if url.startswith(site_url):
        return url[len(site_url):]
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None
    if url.startswith("/"):
        return url[len(base.path):] if url.startswith(base.path) else "\0" + url  # outside the site: broken
    rel = page.parent.relative_to(site).as_posix()
    return (f"{rel}/{url}" if rel != "." else url) if not url.startswith("#") else \
        page.relative_to(site).as_posix() + url


def _resolve(path: str, site: Path) -> Path | None:
    "The file a site path names (a folder means its index.html), or None when there is none."
    target = (site / unquote(path)).resolve() if path else site
    if site.resolve() not in (target, *target.parents):
        return None
    if target.is_dir():
        target = target / "index.html"
    return target if target.is_file() else None


def check_site(site: Path, site_url: str, root: Path | None = None) -> Report:
    """Check every link of every HTML page under `site`; write `site/external-links.txt`. With `root` (the
    repository), check the modules' "Docs:" URLs and the links of nbs/llms.txt too."""
    report, pages, cache = Report(), sorted(site.rglob("*.html")), {}

    def ids_of(path: Path) -> set[str]:
        if path not in cache:
            cache[path] = parse(path).ids
        return cache[path]

    for page in pages:
        parsed = parse(page)
        cache[page] = parsed.ids
        name = page.relative_to(site).as_posix()
        for tag, attr, url in parsed.links:
            if not url or url.startswith(_SKIP_SCHEMES):
                continue
            local = _local(url, page, site, site_url)
            if local is None:
                if (tag, attr) in _LOADS:
                    report.errors.append(f"{name}: <{tag} {attr}='{url}'> loads from outside the site (offline)")
                report.external.setdefault(url, set()).add(name)
                continue
            report.checked += 1
            path, _, frag = urlsplit(local).path, None, urlsplit(local).fragment
            target = None if path.startswith("\0") else _resolve(path, site)
            if target is None:
                report.errors.append(f"{name}: broken link '{url}' (no file {path.lstrip(chr(0)) or '/'} in the site)")
            elif frag and target.suffix == ".html" and unquote(frag) not in ids_of(target):
                report.errors.append(f"{name}: broken link '{url}' (no id '{unquote(frag)}' in "
                                     f"{target.relative_to(site.resolve()).as_posix()})")
    if root is not None:
        report.errors += check_docs_urls(root, site, site_url)
    lines = [f"{url}\t{' '.join(sorted(where))}" for url, where in sorted(report.external.items())]
    (site / "external-links.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return report


def check_docs_urls(root: Path, site: Path, site_url: str) -> list[str]:
    "Every module's 'Docs: <url>' and every site link of nbs/llms.txt must name a file of the built site."
    errors, pattern = [], re.compile(re.escape(site_url) + r"[^\s\"')>]*")
    sources = sorted((root / "fusion").rglob("*.py")) + [root / "nbs" / "llms.txt"]
    for src in sources:
        if not src.is_file():
            continue
        for url in dict.fromkeys(pattern.findall(src.read_text(encoding="utf-8"))):
            if _resolve(urlsplit(url[len(site_url):]).path, site) is None:
                errors.append(f"{src.relative_to(root).as_posix()}: '{url}' names no page of the site")
    return errors
