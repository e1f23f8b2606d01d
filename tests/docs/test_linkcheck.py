"""The docs link checker (docs/linkcheck.py) on tiny hand-made sites: what resolves, what is broken, what is listed."""
from pathlib import Path

import pytest

from tests.support.docs import load_docs_script

SITE_URL = "https://fusion-dev.github.io/fusion/"


linkcheck = load_docs_script("linkcheck")


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


GOOD = {
    "index.html": '<h1 id="top">Home</h1><a href="a.html#sec">a</a> <a href="sub/">sub</a> <a href="#top">top</a>'
                  f'<a href="{SITE_URL}a.html">abs</a> <a href="/fusion/a.html#sec">root</a>'
                  '<a href="https://example.org/x">ext</a> <a href="mailto:dev@fusion.invalid">mail</a>'
                  '<link rel="stylesheet" href="assets/main.css"><script src="assets/app.js"></script>'
                  '<img src="a_files/plot%201.png">',
    "a.html": '<h2 id="sec">Section</h2><a name="old"></a><a href="index.html#top">back</a>'
              '<a href="https://example.org/x">ext</a>',
    "sub/index.html": '<a href="../a.html#old">a</a>',
    "assets/main.css": "", "assets/app.js": "", "a_files/plot 1.png": "",
}


def test_a_site_whose_links_all_resolve_passes_and_lists_its_external_links(tmp_path):
    site = write(tmp_path / "site", GOOD)
    report = linkcheck.check_site(site, SITE_URL)
    assert report.errors == []
    assert report.checked == 10  # index.html 8, a.html 1, sub/index.html 1
    assert report.summary() == "linkcheck: 10 internal links checked, 1 external links listed, none broken"
    assert (site / "external-links.txt").read_text() == "https://example.org/x\ta.html index.html\n"


@pytest.mark.parametrize("html, message", [
    ('<a href="gone.html">x</a>', "index.html: broken link 'gone.html' (no file gone.html in the site)"),
    ('<a href="a.html#nowhere">x</a>', "index.html: broken link 'a.html#nowhere' (no id 'nowhere' in a.html)"),
    ('<a href="#nowhere">x</a>', "index.html: broken link '#nowhere' (no id 'nowhere' in index.html)"),
    (f'<a href="{SITE_URL}gone.html">x</a>', f"index.html: broken link '{SITE_URL}gone.html' (no file gone.html"),
    ('<a href="/other/a.html">x</a>', "index.html: broken link '/other/a.html' (no file /other/a.html"),
    ('<a href="../outside.html">x</a>', "index.html: broken link '../outside.html'"),
    ('<a href="empty/">x</a>', "index.html: broken link 'empty/' (no file empty/ in the site)"),
    ('<script src="https://cdn.example/x.js"></script>',
     "index.html: <script src='https://cdn.example/x.js'> loads from outside the site (offline)"),
    ('<link rel="stylesheet" href="https://fonts.example/css">',
     "index.html: <link href='https://fonts.example/css'> loads from outside the site (offline)"),
])
def test_a_broken_link_is_named_with_its_page(tmp_path, html, message):
    (tmp_path / "outside.html").write_text("<p>outside the site</p>")
    (tmp_path / "site" / "empty").mkdir(parents=True)
    site = write(tmp_path / "site", {"index.html": html, "a.html": '<h2 id="sec">Section</h2>'})
    report = linkcheck.check_site(site, SITE_URL)
    assert len(report.errors) == 1 and report.errors[0].startswith(message), report.errors
    assert "1 BROKEN:" in report.summary() and message in report.summary()


def test_the_modules_docs_urls_and_llms_txt_must_name_pages_of_the_site(tmp_path):
    site = write(tmp_path / "site", {"index.html": "<p>home</p>", "errors.html": "", "errors.html.md": "# errors"})
    root = write(tmp_path / "repo", {
        "fusion/errors.py": f'"""The errors.\n\nDocs: {SITE_URL}errors.html.md"""\n',
        "fusion/names.py": f'"""The names.\n\nDocs: {SITE_URL}names.html.md"""\n',
        "nbs/llms.txt": f"- [fusion.errors]({SITE_URL}errors.html.md): the errors\n- [x]({SITE_URL}gone.html.md): x\n",
    })
    assert linkcheck.check_docs_urls(root, site, SITE_URL) == [
        f"fusion/names.py: '{SITE_URL}names.html.md' names no page of the site",
        f"nbs/llms.txt: '{SITE_URL}gone.html.md' names no page of the site",
    ]
    report = linkcheck.check_site(site, SITE_URL, root)
    assert len(report.errors) == 2 and "BROKEN" in report.summary()
