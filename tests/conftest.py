"""Shared test set-up: tests import their helpers from this folder, and find the pre-placed
corpora through RNNEXP_DATA_DIR when ../shared/corpora exists (no network here)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

_shared = ROOT.parent / "shared" / "corpora"
if "RNNEXP_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["RNNEXP_DATA_DIR"] = str(_shared)


import contextlib  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402


def pytest_configure(config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, before xdist's workers start
        _compile_kernels()


def _compile_kernels() -> None:
    """Compile (or load from the cache) the kernels the suite uses, once, here: on a fresh
    clone xdist's workers would otherwise compile the same ones side by side (the default
    suite took ~5:30 so, against 3:34 with the cache warm)."""
    import numpy as np

    from rnnexp import CharRNN, Trainer, Vocab, make_optimizer, preset, sample

    vocab, ids = Vocab("abcdefgh"), np.arange(400) % 8
    for dtype in ("float32", "float64"):
        for cell in ("rnn", "lstm", "gru"):
            model = CharRNN(preset(cell, 8, 4, dtype=dtype), np.random.default_rng(0))
            for B, opt in ((1, "adagrad"), (16, "adam"), (2, "sgd"), (1, "rmsprop")):
                optimizer = make_optimizer(opt, lr=0.01)
                Trainer(model, optimizer, ids, seq_length=3, batch_size=B).train_step()
            sample(model, vocab, np.random.default_rng(0), 3)
            model.stepper()(1, model.zero_state(1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    """Whether `url` answers 200 within `timeout` seconds while `proc` (its server) runs."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


@contextlib.contextmanager
def serve_mlflow(root: Path, backend_store_uri: str) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 over `backend_store_uri`, one worker, artifacts
    served by it from root/artifacts; yields its URI."""
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", backend_store_uri,
            "--serve-artifacts", "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True,
        # the light set-up the guide shows (docs/tracking.md): no job runner (7 more
        # processes, ~2 GB) for GenAI features rnnexp does not use
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    if not answers(f"{uri}/health", proc, 90):
        os.killpg(proc.pid, signal.SIGKILL)
        raise RuntimeError(f"mlflow server did not start:\n{(root / 'server.log').read_text()}")
    try:
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the uvicorn worker it started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on a sqlite store; yields its URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    with serve_mlflow(root, f"sqlite:///{root / 'server.db'}") as uri:
        yield uri


@pytest.fixture(scope="session")
def postgres_mlflow_server(tmp_path_factory):
    """The team set-up: `mlflow server` on a PostgreSQL database of a real server started
    here on 127.0.0.1 (Debian's postgresql, `make system-deps`); yields the MLflow URI."""
    from pg import postgres

    root = tmp_path_factory.mktemp("mlflow-postgres")
    with postgres() as db_uri, serve_mlflow(root, db_uri) as uri:
        yield uri


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# without the background-networking flags Chromium keeps calling Google's hosts, which a
# closed network refuses; a fresh profile so nothing of a user's is read or written
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1600,1000",
]  # fmt: skip


@pytest.fixture
def browser():
    """Headless Chromium driven by Selenium (Debian's chromium and chromedriver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed: run `make system-deps`")
    profile = tempfile.mkdtemp(prefix="rnnexp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
