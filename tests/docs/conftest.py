"""The documentation site in a real browser: the built site, served on loopback, opened in headless Chromium.

Chromium and its driver are Debian's (`apt-get install chromium chromium-driver`; `.ci/run` installs them as root).
Selenium drives them through the driver given by path, so Selenium Manager never downloads a browser or a driver.
`make test-docs` builds the site and runs these tests on it (`FUSION_DOCS_SITE=_docs`); without that variable the
tests build the site themselves (`make docs`). The `browser` marker keeps them out of `make test`; `.ci/run` runs them.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fusion.config import find_project_root
from tests.support.http import serve_directory

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENS = find_project_root() / "docs" / "screens"
# Everything Chromium might do on its own (updates, sync, QUIC, safe browsing) is off; no host resolves but loopback.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
    "--window-size=1280,1000", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@pytest.fixture(scope="session")
def site_dir() -> Path:
    "The built site: `FUSION_DOCS_SITE` if given, else `make docs` builds `_docs/` now."
    root = find_project_root()
    given = os.environ.get("FUSION_DOCS_SITE")
    if not given:
        subprocess.run(["make", "docs"], cwd=root, check=True)
    site = (root / (given or "_docs")).resolve()
    assert (site / "index.html").is_file(), f"FUSION_DOCS_SITE={given!r}: no index.html in {site} (run make docs)"
    return site


@pytest.fixture(scope="session")
def site_url(site_dir):
    "The site served by a real HTTP server on loopback, for the session."
    with serve_directory(site_dir) as url:
        yield url + "/"


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    "Headless Debian Chromium driven by Debian's chromedriver, with its network log on."
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, f"missing {missing}: apt-get install -y chromium chromium-driver (.ci/run does, as root)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # Selenium Manager, should anything call it, must not reach the network
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.get_log("performance")  # drop the start-up page's entries: each test reads what its own pages asked for
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def screens() -> Path:
    "docs/screens/, emptied once per session (the PNGs are gitignored: every run writes them anew)."
    shutil.rmtree(SCREENS, ignore_errors=True)
    SCREENS.mkdir(parents=True)
    return SCREENS
