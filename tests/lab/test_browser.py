"""The lab page in a real browser: headless Chromium driven by selenium against a real server.

Skips (with the reason) where selenium, a Chromium/Chrome binary or chromedriver is missing.
Leaves a screenshot at $TIDU_TEST_ARTIFACTS/lab-page.png (default: test-artifacts/ at the repo root).
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tidu import lab

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install tidu[browser])")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BROWSER = next(filter(None, map(shutil.which, ["chromium", "chromium-browser", "google-chrome"])), None)
DRIVER = shutil.which("chromedriver")


def artifacts():
    out = Path(os.environ.get("TIDU_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def browser():
    if BROWSER is None:
        pytest.skip("no Chromium or Chrome binary on PATH (chromium, chromium-browser, google-chrome)")
    if DRIVER is None:
        pytest.skip("no chromedriver on PATH")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()


def runs(driver):
    return int(driver.find_element(By.ID, "status").get_attribute("data-runs"))


def wait_for_run(driver, before):
    """Wait until the page has finished a request after `before` ones; its state ('ok' or 'error')."""
    WebDriverWait(driver, 120).until(lambda d: runs(d) > before)
    return driver.find_element(By.ID, "status").get_attribute("data-state")


def drawn_path(driver, k):
    line = driver.find_element(By.CSS_SELECTOR, f'#paths polyline.path[data-index="{k}"]')
    return line.get_attribute("data-optimizer"), np.array(json.loads(line.get_attribute("data-points")))


def set_field(driver, css, text):
    field = driver.find_element(By.CSS_SELECTOR, css)
    field.clear()
    field.send_keys(text)


def run_with(driver, css, text):
    set_field(driver, css, text)
    before = runs(driver)
    driver.find_element(By.ID, "run").click()
    return wait_for_run(driver, before)


LR0 = '#optimizers .optimizer[data-index="0"] input[name="learning_rate"]'


def test_the_page_draws_tidus_paths_and_shows_bad_input(browser, lab_url):
    browser.get(lab_url)
    assert wait_for_run(browser, 0) == "ok"
    fn = lab.get("beale")
    start = list(fn.start)
    assert browser.find_element(By.ID, "function").get_attribute("value") == "beale"
    assert browser.find_element(By.ID, "steps").get_attribute("value") == "300"

    # the first run: the page's defaults, the lab's learning rate for beale
    name, before = drawn_path(browser, 0)
    assert name == "sgd"
    np.testing.assert_array_equal(before, lab.trajectories(["sgd"], "beale", start=start, steps=300)["sgd"])
    assert len(browser.find_elements(By.CSS_SELECTOR, "#paths polyline.path")) == 3
    assert len(browser.find_elements(By.CSS_SELECTOR, "#losses polyline.loss")) == 3

    # a new learning rate typed into the page reaches tidu on the server
    assert run_with(browser, LR0, "0.004") == "ok"
    _, after = drawn_path(browser, 0)
    expected = lab.trajectories(["sgd"], "beale", start=start, steps=300, learning_rate=0.004)["sgd"]
    np.testing.assert_array_equal(after, expected)
    assert after.shape == before.shape and not np.array_equal(after, before)

    # bad input: the message names what was expected and what was typed; nothing is redrawn
    for typed, got in [("-1", "got -1"), ("abc", "got 'abc'"), ("NaN", "got 'NaN'")]:
        assert run_with(browser, LR0, typed) == "error"
        error = browser.find_element(By.ID, "error")
        assert error.is_displayed()
        assert "optimizers[0].learning_rate (sgd): expected a number > 0" in error.text and got in error.text
        np.testing.assert_array_equal(drawn_path(browser, 0)[1], expected)
    set_field(browser, LR0, "0.004")
    assert run_with(browser, "#steps", "0") == "error"
    assert "steps: expected a whole number from 1 to 5000, got 0" in browser.find_element(By.ID, "error").text
    browser.save_screenshot(str(artifacts() / "lab-page-error.png"))

    # and the page still works: a good value clears the message and draws tidu's path
    set_field(browser, "#steps", "300")
    assert run_with(browser, LR0, "0.002") == "ok"
    assert not browser.find_element(By.ID, "error").is_displayed()
    np.testing.assert_array_equal(drawn_path(browser, 0)[1], lab.trajectories(
        ["sgd"], "beale", start=start, steps=300, learning_rate=0.002)["sgd"])
    for k, name in [(1, "momentum"), (2, "adam")]:     # the untouched rows keep the lab's rates
        np.testing.assert_array_equal(drawn_path(browser, k)[1],
                                      lab.trajectories([name], "beale", start=start, steps=300)[name])
    losses = json.loads(browser.find_element(By.CSS_SELECTOR, '#losses polyline[data-index="2"]')
                        .get_attribute("data-losses"))
    np.testing.assert_allclose(losses, [fn(p) for p in drawn_path(browser, 2)[1]], rtol=1e-12)

    shot = artifacts() / "lab-page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    # no script errors (the 400 answers above log as failed resource loads, which is expected)
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and "status of 400" not in e["message"]]
    assert not severe, severe


def test_changing_the_function_resets_the_start_and_rates(browser, lab_url):
    from selenium.webdriver.support.ui import Select

    browser.get(lab_url)
    wait_for_run(browser, 0)
    before = runs(browser)
    Select(browser.find_element(By.ID, "function")).select_by_value("quadratic")
    assert wait_for_run(browser, before) == "ok"
    fn = lab.get("quadratic")
    assert browser.find_element(By.CSS_SELECTOR, LR0).get_attribute("value") == \
        str(lab.DEFAULT_LEARNING_RATES["quadratic"]["sgd"])
    for k, name in enumerate(["sgd", "momentum", "adam"]):
        np.testing.assert_array_equal(drawn_path(browser, k)[1],
                                      lab.trajectories([name], "quadratic", start=list(fn.start), steps=300)[name])

    # a diverging run is drawn up to its last finite point and marked
    assert run_with(browser, LR0, "1") == "ok"
    line = browser.find_element(By.CSS_SELECTOR, '#paths polyline.path[data-index="0"]')
    assert line.get_attribute("data-diverged") == "true"
    assert "diverged after" in browser.find_element(By.CSS_SELECTOR, '#legend div[data-index="0"]').text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#paths text.diverged")) == 1
