"""Every run and every sweep writes into a folder of its own, whatever the timing: commands
launched at the same moment, a folder named twice, a folder resumed while it runs."""

import re
import signal

import pytest
import yaml
from helpers import SMALL, TINY, artifacts, launch, run_here, runs, wait_for

PNG = b"\x89PNG\r\n\x1a\n"


def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"


@pytest.mark.slow
def test_eight_runs_started_at_once_get_eight_folders(tmp_path):
    procs = [launch(*TINY, f"seed={i}", cwd=tmp_path) for i in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    folders = sorted((tmp_path / "outputs" / "runs").iterdir())
    assert len(folders) == 8
    by_folder = {str(r.data.tags["rnnexp.output_dir"]): r for r in runs(store(tmp_path))}
    assert sorted(by_folder) == [str(f) for f in folders]  # one run per folder
    for folder in folders:
        run = by_folder[str(folder)]
        seed = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())["seed"]
        assert str(seed) == run.data.params["seed"]  # the folder's config is its run's
        log = (folder / "rnnexp.log").read_text()
        assert log.count("BLAS threads") == 1 and run.info.run_id in log  # one run's log
        assert (folder / "loss_curve.png").read_bytes().startswith(PNG)
        assert "loss_curve.png" in artifacts(store(tmp_path), run.info.run_id)
    for f in folders:  # named by their start time, a suffix where that second was taken
        assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(_[2-8])?", f.name), f.name


def test_two_sweeps_started_at_once_keep_their_own_jobs(tmp_path):
    procs = [launch("-m", *TINY, f"seed={2 * i},{2 * i + 1}", cwd=tmp_path) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err  # neither names the other's jobs as failed
    sweeps = sorted((tmp_path / "outputs" / "multiruns").iterdir())
    assert len(sweeps) == 2
    all_runs = runs(store(tmp_path))
    parents = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    for parent in parents:
        children = [r for r in all_runs
                    if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]  # fmt: skip
        assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
        folder = parent.data.tags["rnnexp.sweep_dir"]
        assert {c.data.tags["rnnexp.output_dir"] for c in children} == {
            f"{folder}/0",
            f"{folder}/1",
        }
        seeds = {c.data.params["seed"] for c in children}
        assert seeds in ({"0", "1"}, {"2", "3"})


def test_a_folder_that_holds_a_run_is_never_written_into(tmp_path):
    first = run_here(*TINY, "hydra.run.dir=outputs/mine", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    config = (tmp_path / "outputs" / "mine" / ".hydra" / "config.yaml").read_bytes()
    log = (tmp_path / "outputs" / "mine" / "rnnexp.log").read_bytes()
    again = run_here(*TINY, "seed=7", "hydra.run.dir=outputs/mine", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"rnnexp: error: {tmp_path}/outputs/mine already holds a run (.hydra): choose another "
        f"folder, or continue that run with resume={tmp_path}/outputs/mine"
    ]
    assert (tmp_path / "outputs" / "mine" / ".hydra" / "config.yaml").read_bytes() == config
    assert (tmp_path / "outputs" / "mine" / "rnnexp.log").read_bytes() == log
    assert len(runs(store(tmp_path))) == 1


@pytest.mark.slow
def test_a_running_folder_cannot_be_resumed_and_resume_writes_only_there(tmp_path):
    # long enough to be killed, held and killed again while it trains; the last resume
    # trains only what is left of its 15 s
    proc = launch(*SMALL, "train.steps=20000", "train.max_seconds=15", "hydra.run.dir=outputs/cut",
                  cwd=tmp_path)  # fmt: skip
    log = tmp_path / "outputs" / "cut" / "rnnexp.log"
    wait_for(proc, log, "BLAS threads")
    busy = run_here("resume=outputs/cut", cwd=tmp_path)
    assert busy.returncode == 2
    assert (
        f"{tmp_path}/outputs/cut is in use by a running rnnexp (pid {proc.pid} on " in busy.stderr
    )
    proc.send_signal(signal.SIGKILL)  # as the OOM killer would: the marker names it still
    proc.communicate(timeout=60)
    again = launch("resume=outputs/cut", cwd=tmp_path)
    wait_for(again, log, "resumed at step")
    busy = run_here("resume=outputs/cut", cwd=tmp_path)  # the holder named is the live one
    assert f"is in use by a running rnnexp (pid {again.pid} on " in busy.stderr
    again.send_signal(signal.SIGTERM)
    again.communicate(timeout=60)
    assert again.returncode == 143
    stale = tmp_path / "outputs" / "cut" / ".checkpoint.npz.999999.tmp"  # a dead writer's
    stale.write_bytes(b"half a checkpoint")
    resumed = run_here("resume=outputs/cut", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert not stale.exists()
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir() if p.is_dir()) == [
        "cut",
        "mlartifacts",
    ]  # no stray outputs/runs/<now>/ of the resume
    text = log.read_text()
    assert "stopped by SIGTERM" in text and "resumed at step" in text  # one log, both parts
    (run,) = runs(store(tmp_path))  # finished: what stopped it before is no longer its error
    assert run.info.status == "FINISHED" and "rnnexp.error" not in run.data.tags
    saved = yaml.safe_load((tmp_path / "outputs" / "cut" / ".hydra" / "config.yaml").read_text())
    assert saved["resume"] is None and saved["train"]["steps"] == 20000  # the run's own config
