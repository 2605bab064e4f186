"""rnnexp as a user installs it: the wheel built from this checkout, installed with its
dependencies into a fresh virtual environment, every command run from an empty folder far
from the checkout (the config travels inside the package), a user's own presets included."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from helpers import env

SHORT = ["train.steps=20", "train.eval_every=10", "train.sample_every=10", "inspect.length=200"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh venv holding the wheel of this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", root / "dist", ROOT], check=True,
                   capture_output=True)  # fmt: skip
    wheel = next((root / "dist").glob("rnnexp-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", root / "venv"], check=True)
    r = subprocess.run([root / "venv/bin/python", "-m", "pip", "install", "-q", wheel],
                       capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    return root / "venv" / "bin"


def run(cmd: list, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env(), capture_output=True,
                       text=True, timeout=timeout)  # fmt: skip
    assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-3000:])
    return r


@pytest.mark.slow
def test_the_installed_wheel_works_from_an_empty_folder(installed, tmp_path):
    bin_, here = installed, tmp_path / "empty"
    here.mkdir()
    # the installed package, not this checkout's
    where = run([bin_ / "python", "-c", "import rnnexp; print(rnnexp.__file__)"], here).stdout
    assert str(ROOT) not in where and "site-packages" in where
    assert "model: gru, lstm, rnn, srn, stacked2" in run([bin_ / "rnnexp", "--help"], here).stdout
    run([bin_ / "rnnexp", *SHORT], here)
    run([bin_ / "rnnexp", "experiment=min_char_rnn", *SHORT], here)
    run([bin_ / "python", "-m", "rnnexp", *SHORT, "tracking.enabled=false"], here)
    folders = sorted((here / "outputs" / "runs").iterdir())
    assert len(folders) == 3
    text = run([bin_ / "rnnexp-sample", folders[0], "--length", "30"], here).stdout
    assert len(text) == 1 + 30 + 1  # the prime (the text's first character), 30 more, \n
    run([bin_ / "rnnexp-inspect", folders[1], "--length", "100", "--out", here / "p.html"], here)
    assert "<html" in (here / "p.html").read_text()
    table = run([bin_ / "rnnexp-ngram", "corpus=sevenths"], here).stdout
    assert "    2     0.0005      0.001  <- best (corpus/ngram)" in table, table
    code = "from rnnexp import preset; print(preset('rnn', 65, 32).hidden_size)"
    assert run([bin_ / "python", "-c", code], here).stdout.strip() == "32"
    # the search's sweeper, found by Hydra in its hydra_plugins namespace of site-packages
    out = run([bin_ / "rnnexp", "search=optuna", "hydra.sweeper.n_trials=2", "corpus=elman",
               "train.batch_size=4", "train.seq_length=16", *SHORT], here).stdout  # fmt: skip
    assert re.search(r"\b\d+ jobs? pruned; optuna-dashboard sqlite:///", out), out


@pytest.mark.slow
def test_a_users_own_presets_join_the_installed_ones(installed, tmp_path):
    mine = tmp_path / "my_conf"
    (mine / "model").mkdir(parents=True)
    (mine / "experiment").mkdir()
    (mine / "model" / "tiny.yaml").write_text(
        "name: tiny\ncell: gru\nhidden_size: 8\nlayers: 1\n"
        "dropout: 0.0\ninit: uniform\ninit_scale: 0.08\ndtype: float64\n"
    )
    (mine / "experiment" / "quick.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: tiny\ntrain:\n  steps: 12\n"
    )
    r = run([installed / "rnnexp", "--config-dir", mine, "--help"], tmp_path)
    assert "quick" in r.stdout and "tiny" in r.stdout
    run([installed / "rnnexp", "--config-dir", mine, "experiment=quick", "train.eval_every=6",
         "tracking.enabled=false", "inspect.length=100"], tmp_path)  # fmt: skip
    (folder,) = (tmp_path / "outputs" / "runs").iterdir()
    config = (folder / ".hydra" / "config.yaml").read_text()
    assert "name: tiny" in config and "hidden_size: 8" in config and "steps: 12" in config
    bad = subprocess.run([installed / "rnnexp", "--config-dir", mine, "model=huge"],
                         cwd=tmp_path, env=env(), capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2
    assert "unknown model 'huge'; valid: gru, lstm, rnn, srn, stacked2, tiny" in bad.stderr
