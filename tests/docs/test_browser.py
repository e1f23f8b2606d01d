"""The built documentation site, opened in headless Chromium: landing page, a feature notebook with its plot,
the API page of `fusion.features`, search, and not one request off the machine. Screenshots go to docs/screens/."""
import json
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser

WAIT_S = 20
LANDING = "index.html"
PLOT_PAGE = "features_table.html"  # nbs/25_features_table draws the per-class boxplots of four features
PLOT_MIN_PX = (300, 100)  # a loaded figure, not an icon nor a broken image (0 x 0)
SPEC_PAGE = "features_spec.html"  # nbs/20_features_spec defines FeatureSpec
# fusion.features is a package: its API is one page per module; the spec and the backends hold the two names asked for.
API_NAMES = [("api/fusion.features.spec.html", "FeatureSpec"), ("api/fusion.features.backends.html", "extract")]
# Served by the browser itself: inline data, blobs, blank pages, Chromium's own bundled UI (its new-tab page).
LOCAL_SCHEMES = ("data:", "blob:", "about:", "chrome:", "chrome-untrusted:", "devtools:")


def visit(driver, url: str) -> None:
    "Open `url` and wait until the document and material's JS bundle are ready."
    driver.get(url)
    WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(driver, WAIT_S).until(EC.presence_of_element_located((By.CSS_SELECTOR, "article.md-content__inner")))


def requested_urls(driver) -> list[str]:
    "Every URL Chromium asked for (documents, scripts, fonts, images, XHR, websockets) since the log was last read."
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    return urls


def assert_stayed_local(driver, site_url: str) -> None:
    "No request went anywhere but the loopback site (fonts, CDNs, analytics would all show up here)."
    urls = requested_urls(driver)
    assert urls, "the performance log recorded no request at all: the network check would check nothing"
    off = sorted({u for u in urls if not u.startswith(site_url) and not u.startswith(LOCAL_SCHEMES)})
    assert not off, f"requests that left the machine (site {site_url}): {off}"


def test_landing_page(browser, site_url, screens):
    visit(browser, site_url + LANDING)
    h1 = browser.find_element(By.CSS_SELECTOR, "article.md-content__inner h1")
    assert "fusion" in h1.text.lower(), f"landing page h1: {h1.text!r}"
    code = " ".join(el.text for el in browser.find_elements(By.CSS_SELECTOR, "article.md-content__inner code"))
    for command in ("make run", "make test"):
        assert command in code, f"landing page shows no `{command}` in its code: {code[:300]!r}"
    browser.save_screenshot(str(screens / "landing.png"))
    assert_stayed_local(browser, site_url)


def test_feature_notebook_plot(browser, site_url, screens):
    visit(browser, site_url + PLOT_PAGE)
    images = browser.find_elements(By.CSS_SELECTOR, "article.md-content__inner img")
    assert images, f"{PLOT_PAGE}: no <img> in the page content (is the plot's output in the notebook?)"
    WebDriverWait(browser, WAIT_S).until(lambda d: all(d.execute_script("return arguments[0].complete", i) for i in images))
    sizes = [browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", i) for i in images]
    loaded = [i for i, (w, h) in zip(images, sizes, strict=True) if w >= PLOT_MIN_PX[0] and h >= PLOT_MIN_PX[1]]
    assert loaded, f"{PLOT_PAGE}: {len(images)} <img>, none loaded at a plot's size (>= {PLOT_MIN_PX} px): {sizes}"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", loaded[0])
    browser.save_screenshot(str(screens / "feature_notebook.png"))
    loaded[0].screenshot(str(screens / "feature_plot.png"))
    assert_stayed_local(browser, site_url)


@pytest.mark.parametrize(("page", "name"), API_NAMES)
def test_api_page_of_features(browser, site_url, screens, page, name):
    visit(browser, site_url + page)
    wanted = f"{page.removeprefix('api/').removesuffix('.html')}.{name}"
    headings = browser.find_elements(By.CSS_SELECTOR, "article.md-content__inner :is(h1, h2, h3, h4)")
    found = [h for h in headings if h.get_attribute("id") == wanted]
    ids = sorted(h.get_attribute("id") for h in headings if h.get_attribute("id"))
    assert found, f"{page}: no heading with id {wanted!r}; heading ids: {ids[:40]}"
    assert name in found[0].text, f"{page}: the heading {wanted!r} reads {found[0].text!r}"
    assert found[0].is_displayed(), f"{page}: the heading {wanted!r} is not displayed"
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", found[0])
    browser.save_screenshot(str(screens / f"api_{name}.png"))
    assert_stayed_local(browser, site_url)


def test_search_finds_feature_spec(browser, site_url, screens):
    visit(browser, site_url + LANDING)
    box = WebDriverWait(browser, WAIT_S).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input.md-search__input")))
    box.click()  # at 1280 px material shows the search box in the header
    box.send_keys("FeatureSpec")
    link = (By.CSS_SELECTOR, ".md-search-result__list a.md-search-result__link")
    WebDriverWait(browser, WAIT_S).until(EC.presence_of_all_elements_located(link))
    hrefs = [a.get_attribute("href") for a in browser.find_elements(*link)]
    pages = {urlsplit(h).path.removeprefix("/") for h in hrefs}  # drop ?h=… (search.highlight) and #anchors
    assert SPEC_PAGE in pages, f"search for FeatureSpec: no result on {SPEC_PAGE}; result pages: {sorted(pages)}"
    browser.save_screenshot(str(screens / "search.png"))
    assert_stayed_local(browser, site_url)
