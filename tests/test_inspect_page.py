"""A run's inspect.html in a real browser (headless Chromium, as the MLflow UI test): opened
from disk and from the MLflow artifact browser, it draws the text and the units, re-colours
the text for a unit chosen by number, and shows the model's guesses on hover.

RNNEXP_INSPECT_SCREENSHOT=docs/images/inspect-shakespeare.png makes this test refresh the
site's screenshot (an LSTM trained ~20 s on tiny shakespeare).
"""

from __future__ import annotations

import os

import pytest
from conftest import serve_mlflow
from helpers import run_here, runs

RUN = [
    "model=lstm", "model.dtype=float32", "corpus=shakespeare", "optimizer=adam",
    "optimizer.lr=0.005", "train.batch_size=16", "train.seq_length=50", "train.steps=2500",
    "train.eval_every=500", "inspect.units=6",
]  # fmt: skip


def colours(browser, panel: str, n: int = 300) -> list[str]:
    return browser.execute_script(
        f"return [...document.querySelectorAll('#{panel} span')].slice(0, {n})"
        ".map(s => s.style.background)"
    )


def check_page(browser, tmp_path, name: str) -> None:
    """What the page must do wherever it is opened; a screenshot to tmp_path/name."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    find = browser.find_elements
    try:
        WebDriverWait(browser, 30).until(lambda _: len(find(By.CSS_SELECTOR, "#chosen span")))
    except TimeoutException:
        browser.save_screenshot(str(tmp_path / f"failed-{name}"))
        pytest.fail(f"the page drew no text ({tmp_path / f'failed-{name}'})")
    # the text, in the surprisal panel, the chosen unit's and each ranked unit's
    n = len(find(By.CSS_SELECTOR, "#surprisal span"))
    assert n == 2000 == len(find(By.CSS_SELECTOR, "#chosen span"))
    panels = find(By.CSS_SELECTOR, "#ranked .unit")
    assert len(panels) == 6 and all(len(p.find_elements(By.TAG_NAME, "span")) == n for p in panels)
    titles = [h.text for h in find(By.CSS_SELECTOR, "#ranked h3")]
    assert all("tracks" in t and "r = " in t for t in titles), titles
    assert len(set(colours(browser, "surprisal"))) > 10  # coloured, not blank
    # a unit chosen by number re-colours the text
    unit = find(By.ID, "unit")[0]
    first = int(unit.get_attribute("value"))
    before = colours(browser, "chosen")
    other = (first + 1) % 128
    unit.clear()
    unit.send_keys(str(other))
    WebDriverWait(browser, 10).until(lambda _: colours(browser, "chosen") != before)
    assert f"unit {other} of 128" in find(By.ID, "unit-label")[0].text
    # clicking a ranked unit's title chooses it
    find(By.CSS_SELECTOR, "#ranked h3")[1].click()
    assert f"unit {find(By.CSS_SELECTOR, '#ranked .unit')[1].get_attribute('data-unit')} of" in (
        find(By.ID, "unit-label")[0].text
    )
    # hovering a character shows the model's top guesses for the next one
    span = find(By.CSS_SELECTOR, "#chosen span")[120]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", span)
    ActionChains(browser).move_to_element(span).perform()
    tip = find(By.ID, "tip")[0]
    WebDriverWait(browser, 10).until(lambda _: tip.is_displayed())
    assert "next character" in tip.text and len(tip.find_elements(By.TAG_NAME, "tr")) == 5
    assert "surprisal" in tip.text and f"unit {find(By.ID, 'unit')[0].get_attribute('value')}" in (
        tip.text
    )
    assert browser.save_screenshot(str(tmp_path / name))


@pytest.mark.slow
def test_a_runs_inspection_page_works_in_a_browser(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (tmp_path / "server").mkdir()
    with serve_mlflow(tmp_path / "server", f"sqlite:///{tmp_path / 'server' / 'db'}") as uri:
        r = run_here(*RUN, f"tracking.uri={uri}", "hydra.run.dir=outputs/run", cwd=tmp_path,
                   timeout=600)  # fmt: skip
        assert r.returncode == 0, r.stderr
        (run,) = runs(uri)

        # from disk: no server, no network
        browser.get((tmp_path / "outputs" / "run" / "inspect.html").as_uri())
        browser.execute_script("window.scrollTo(0, 0)")
        check_page(browser, tmp_path, "inspect.png")
        assert browser.find_elements(By.CSS_SELECTOR, 'img[alt="gate saturation"]')
        shot = tmp_path / "inspect.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("RNNEXP_INSPECT_SCREENSHOT"):  # the top of the page, a guess shown
            from selenium.webdriver.common.action_chains import ActionChains

            browser.execute_script("window.scrollTo(0, 0)")
            span = browser.find_elements(By.CSS_SELECTOR, "#chosen span")[60]
            ActionChains(browser).move_to_element(span).perform()
            browser.save_screenshot(os.environ["RNNEXP_INSPECT_SCREENSHOT"])

        # from MLflow's artifact browser: the page in its sandboxed frame, scripts running
        exp = run.info.experiment_id
        browser.get(f"{uri}/#/experiments/{exp}/runs/{run.info.run_id}/artifacts")
        WebDriverWait(browser, 60).until(
            lambda d: d.find_elements(By.XPATH, '//*[text()="inspect.html"]')
        )
        browser.find_element(By.XPATH, '//*[text()="inspect.html"]').click()
        WebDriverWait(browser, 60).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "iframe.mlflow-html-iframe")
        )
        browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, "iframe.mlflow-html-iframe"))
        check_page(browser, tmp_path, "inspect-in-mlflow.png")
        browser.switch_to.default_content()
