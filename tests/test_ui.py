"""The MLflow UI in a real browser: `mlflow server` serves a store holding a real sweep, and
headless Chromium (Debian's chromium and chromedriver, `make system-deps`; nothing downloaded)
shows the parent with its children, a child's loss metric and sample artifact, and the
children's validation curves side by side, saved as a screenshot.

RNNEXP_UI_SCREENSHOTS=docs/images makes this test refresh the site's screenshots there:
mlflow-ui-runs.png (the sweep's parent and children) and mlflow-ui-sweep.png (compared).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import serve_mlflow
from helpers import run_here, runs

SWEEP = [
    "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "corpus=elman",
    "model.hidden_size=16,32,64", "optimizer.lr=0.03,0.1", "train.steps=600",
    "train.log_every=10", "train.eval_every=50", "train.sample_every=300",
    "train.batch_size=8", "train.seq_length=25",
]  # fmt: skip


@pytest.mark.slow
def test_the_mlflow_ui_shows_a_sweep(tmp_path, browser):
    from mlflow import MlflowClient
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    (tmp_path / "server").mkdir()
    with serve_mlflow(tmp_path / "server", f"sqlite:///{tmp_path / 'server' / 'db'}") as uri:
        r = run_here(*SWEEP, f"tracking.uri={uri}", cwd=tmp_path, timeout=600)
        assert r.returncode == 0, r.stderr
        parent, *children = runs(uri)
        exp = parent.info.experiment_id
        names = sorted(c.info.run_name for c in children)
        assert names[0] == "hidden_size=16 lr=0.03 · gru-elman-adam"
        assert len(names) == 6

        def text() -> str:
            return browser.find_element(By.TAG_NAME, "body").text

        def wait_for(*words: str) -> None:
            try:
                WebDriverWait(browser, 60).until(lambda _: all(w in text() for w in words))
            except TimeoutException:
                browser.save_screenshot(str(tmp_path / "failed.png"))
                missing = [w for w in words if w not in text()]
                pytest.fail(f"not on {browser.current_url}: {missing} (failed.png)\n{text()}")

        def click(css: str) -> None:
            WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))
            browser.find_element(By.CSS_SELECTOR, css).click()

        def close_assistant() -> None:  # MLflow's chat panel takes a third of the page
            for b in browser.find_elements(
                By.CSS_SELECTOR, 'button[aria-label="Close"][data-component-id^="mlflow.assistant"]'
            ):
                b.click()

        def keep(name: str) -> None:
            """A screenshot of the page as it is, for the site when asked."""
            shot = tmp_path / name
            assert browser.save_screenshot(str(shot))
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
            if os.environ.get("RNNEXP_UI_SCREENSHOTS"):
                shutil.copy(shot, Path(os.environ["RNNEXP_UI_SCREENSHOTS"]) / name)

        def unfold() -> None:
            """Show the parent's children: the UI remembers unfolded parents, so only if folded."""
            try:
                WebDriverWait(browser, 5).until(lambda _: names[0] in text())
            except TimeoutException:
                click('button[data-component-id$="runnamecellrenderer.tsx_46"]')  # the [+]
            wait_for(*names)

        # MLflow 3.17's UI picks its GenAI or model-training pages by the URL's workflowType
        # (the sidebar's switch; GenAI by default), not by the experiment's kind tag: the
        # link rnnexp logs opens the runs table: the parent, and its six children unfolded
        kind = MlflowClient(uri).get_experiment(exp).tags["mlflow.experimentKind"]
        assert kind == "custom_model_development"
        browser.get(f"{uri}/#/experiments/{exp}?workflowType=machine_learning")
        wait_for(parent.info.run_name[:40])
        close_assistant()
        assert not any(n in text() for n in names)  # nested under the parent, folded
        unfold()
        keep("mlflow-ui-runs.png")

        # a child's page: its loss metric, and its parent
        best = next(c for c in children if c.data.tags.get("rnnexp.best") == "true")
        browser.get(f"{uri}/#/experiments/{exp}/runs/{best.info.run_id}")
        wait_for("val/loss", "train/loss", "Parent run")
        val = f"{best.data.metrics['val/loss']:.4f}"[:5]
        assert val in text() and parent.info.run_name[:40] in text()

        # its sample artifact, opened in the artifact browser
        sample_path = "samples/step_0000600.txt"
        sample = Path(MlflowClient(uri).download_artifacts(best.info.run_id, sample_path))
        browser.get(f"{uri}/#/experiments/{exp}/runs/{best.info.run_id}/artifacts")
        wait_for("samples", "loss_curve.png", "inspect.html")
        browser.find_element(By.XPATH, '//*[text()="samples"]').click()
        wait_for("step_0000600.txt")
        browser.find_element(By.XPATH, '//*[text()="step_0000600.txt"]').click()
        wait_for(sample.read_text()[:60])

        # the sweep compared, by the link its summary printed: its children alone (a filter on
        # their parent) in the chart view, the validation curves one chart, a line per run
        (link,) = re.findall(r"MLflow UI +(http://\S+)", r.stdout)
        assert "compareRunsMode=CHART" in link and parent.info.run_id in unquote(link)
        other = run_here("corpus=elman", "train.steps=5", f"tracking.uri={uri}", cwd=tmp_path)
        assert other.returncode == 0, other.stderr  # a run beside the sweep: filtered out
        browser.get(link)
        wait_for(*names)
        close_assistant()
        wait_for(f"{len(names) + 1} matching runs")  # the jobs, and their parent that holds them
        click('input[placeholder="Search metric charts"]')
        browser.find_element(
            By.CSS_SELECTOR, 'input[placeholder="Search metric charts"]'
        ).send_keys("val/loss", Keys.ENTER)
        wait_for("val/loss")
        click('[data-component-id="fullscreen_button_chartcard"]')  # the chart, full size
        wait_for("val/loss", *names)  # its legend: a line per child, named by what varies
        keep("mlflow-ui-sweep.png")
