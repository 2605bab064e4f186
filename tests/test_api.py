"""rnnexp from a notebook: rnnexp.run does what the command line does, in this process, and
returns the run (or the sweep and its jobs); rnnexp.runs reads the store as a DataFrame."""

import math
import os

import pytest
from helpers import TINY, env, place_store

import rnnexp
from rnnexp.errors import RnnexpError


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A notebook's kernel started in an empty folder, with a store ready."""
    monkeypatch.chdir(tmp_path)
    for k in list(os.environ):
        if k not in env():
            monkeypatch.delenv(k)
    place_store(tmp_path, (), {})
    return tmp_path


def test_a_run_returns_its_id_folder_and_final_metrics(here):
    result = rnnexp.run(["model=lstm", *TINY])
    assert result.status == "FINISHED" and len(result.run_id) == 32
    assert result.folder.is_relative_to(here / "outputs" / "runs")
    assert (result.folder / "model" / "model.json").is_file()
    assert math.isfinite(result.metrics["val/loss"]) and result.metrics["val/loss"] < 4.2
    assert result.tags["rnnexp.output_dir"] == str(result.folder)
    import logging  # the notebook's later log lines do not go into the finished run's log

    assert not [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    frame = rnnexp.runs()
    assert list(frame["run_id"]) == [result.run_id]
    assert frame["metrics.val/loss"][0] == result.metrics["val/loss"]
    assert frame["params.model.name"][0] == "lstm"


def test_a_sweep_returns_its_parent_and_jobs_and_a_refusal_raises(here):
    result = rnnexp.run(["seed=0,1", *TINY], multirun=True)
    assert result.status == "FINISHED" and len(result.jobs) == 2
    assert [j.tags["rnnexp.varied"] for j in result.jobs] == ['["seed=0"]', '["seed=1"]']
    assert result.best is not None
    assert result.metrics["sweep/best_val_loss"] == result.best.metrics["val/loss"]
    assert all(j.folder.parent == result.folder for j in result.jobs)
    assert len(rnnexp.runs(where="attributes.status = 'FINISHED'")) == 3
    with pytest.raises(RnnexpError, match=r"^unknown model 'lsmt'; valid: gru, lstm, rnn"):
        rnnexp.run(["model=lsmt"])
    with pytest.raises(RnnexpError, match=r"^overrides are strings like 'model=lstm', got \[5\]"):
        rnnexp.run([5])
