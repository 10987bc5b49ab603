"""The atlas in a real browser: Debian's headless Chromium driven by selenium through the system
chromedriver (nothing downloaded). Skips where Chromium is absent, except under CI (`CI` set), where
that is a failure: `.ci/run` installs it."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from unifiedviz.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,1000"]


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture
def browser(tmp_path, monkeypatch):
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def site(tmp_path) -> Path:
    from test_atlas import FAST, LAYER, make_dictionary

    dictionary = make_dictionary(tmp_path / "dictionary.safetensors")
    out = tmp_path / "atlas"
    argv = ["atlas", "builtin:digits-cnn", LAYER, "--dictionary", str(dictionary), "--out", str(out), *FAST,
            "--per-page", "64"]
    assert main(argv) == 0
    return out


def _images(driver) -> list[list]:
    return driver.execute_script(
        "return Array.from(document.images).map(function(i){return [i.getAttribute('src'), i.naturalWidth];});")


def _order(driver, key: str) -> tuple[list[str], list[float]]:
    rows = driver.find_elements("css selector", "#units tbody tr")
    return ([r.get_attribute("data-address") for r in rows], [float(r.get_attribute(f"data-{key}")) for r in rows])


def test_atlas_in_headless_chromium(browser, site, tmp_path):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.wait import WebDriverWait

    units = [u["address"] for u in json.loads((site / "atlas.json").read_text())["units"]]
    browser.get((site / "index.html").as_uri())
    listed, maxima = _order(browser, "max")
    assert listed == units  # every unit, neurons then latents
    images = _images(browser)
    assert len(images) == len(units) and all(width > 0 for _, width in images), images

    browser.find_element("css selector", "th[data-key=max]").click()
    order, values = _order(browser, "max")
    assert values == sorted(maxima, reverse=True) and order != listed  # sorted, and the rows moved
    browser.find_element("css selector", "th[data-key=max]").click()
    assert _order(browser, "max")[1] == sorted(maxima)

    browser.find_element("id", "filter").send_keys("latent")
    shown = [r.get_attribute("data-address") for r in browser.find_elements("css selector", "#units tbody tr")
             if r.is_displayed()]
    assert shown == sorted((u for u in units if "latent" in u), key=lambda u: maxima[units.index(u)])
    browser.find_element("id", "filter").send_keys(*[Keys.BACKSPACE] * len("latent"))  # clear() sends no input event
    assert all(r.is_displayed() for r in browser.find_elements("css selector", "#units tbody tr"))
    browser.find_element("css selector", "th[data-key=address]").click()
    browser.save_screenshot(str(tmp_path / "atlas-index.png"))

    browser.find_element("link text", units[0]).click()
    assert browser.find_element("id", "address").text == units[0]
    copy = browser.find_element("id", "copy")
    copy.click()  # the clipboard API, or selecting the address and execCommand('copy') where it is refused
    WebDriverWait(browser, 5).until(lambda d: copy.text == "copied")
    images = _images(browser)
    # 2 AM images, 2 top and 2 bottom exemplars, the histogram
    assert len(images) == 7 and all(width > 0 for _, width in images), images
    browser.save_screenshot(str(tmp_path / "atlas-unit.png"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    if os.environ.get("UNIFIEDVIZ_SCREENSHOTS"):  # keep the screenshots for a look (docs/atlas.md)
        for name in ("atlas-index.png", "atlas-unit.png"):
            shutil.copy(tmp_path / name, Path(os.environ["UNIFIEDVIZ_SCREENSHOTS"]) / name)
