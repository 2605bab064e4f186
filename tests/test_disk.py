"""Full and read-only disks, for real: small tmpfs mounts (root only; skipped elsewhere). A
full disk ends the run with one line, FAILED where the store can still be written, and no
temporary file left behind; a read-only output folder is one line before anything runs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SMALL, TINY, launch, one_line, rnnexp, runs, wait_for


@pytest.fixture
def small_disk(tmp_path):
    """mount(size) -> a tmpfs of `size` at a new folder; unmounted after the test."""
    mounted = []

    def mount(size: str, read_only: bool = False) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                           capture_output=True, text=True)  # fmt: skip
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
        mounted.append(point)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        return point

    if os.geteuid() != 0:
        pytest.skip("mounting a small disk needs root")
    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def fill(disk: Path) -> None:
    """Take every free byte of `disk`."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for block in (65536, 1):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError:
                pass
    finally:
        os.close(fd)


@pytest.mark.slow
def test_a_full_output_disk_fails_the_run_in_one_line_and_leaves_no_temporary_file(
    tmp_path, small_disk
):
    disk = small_disk("2m")
    # a small model: the disk holds the run's files (a checkpoint is written beside the last)
    proc = launch(*SMALL, "model.hidden_size=32", "train.steps=5000", "train.checkpoint_every=200",
                  f"hydra.run.dir={disk}/run", cwd=tmp_path)  # fmt: skip
    wait_for(proc, disk / "run" / "checkpoint.npz")
    fill(disk)  # the next checkpoint finds no room
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("rnnexp: error: cannot write the run's files: No space left")
    assert f"resume={disk}/run" in lines[0]
    assert not list((disk / "run").glob(".*.tmp"))
    (run,) = runs(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    assert run.info.status == "FAILED" and "No space left" in run.data.tags["rnnexp.error"]
    (disk / "filler").unlink()  # room again: the run continues from its last whole checkpoint
    resumed = rnnexp(f"resume={disk}/run", cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert runs(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")[0].info.status == "FINISHED"


@pytest.mark.slow
def test_a_full_store_disk_is_one_line(tmp_path, small_disk):
    disk = small_disk("4m")
    uri = f"tracking.uri=sqlite:///{disk}/mlflow.db"
    assert rnnexp(*TINY, uri, cwd=tmp_path).returncode == 0  # the store exists
    fill(disk)
    r = rnnexp(*TINY, uri, cwd=tmp_path)
    assert r.returncode == 2
    assert one_line(r) == (
        f"rnnexp: error: the tracking store sqlite:///{disk}/mlflow.db failed: database or "
        f"disk is full"
    )
    (disk / "filler").unlink()
    assert [r.info.status for r in runs(f"sqlite:///{disk}/mlflow.db")] == ["FINISHED"]


def test_a_read_only_output_folder_is_one_line(tmp_path, small_disk):
    disk = small_disk("1m", read_only=True)
    r = rnnexp(*TINY, f"hydra.run.dir={disk}/run", fresh=True, cwd=tmp_path)
    assert r.returncode == 2
    assert one_line(r) == (
        f"rnnexp: error: cannot create the output folder {disk}/run: Read-only file system"
    )
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


@pytest.mark.slow
def test_a_full_disk_under_the_kernel_cache_costs_only_the_cache(tmp_path, small_disk):
    disk = small_disk("1M")
    (disk / "cache").mkdir()
    fill(disk)
    code = (
        "import numpy as np; from rnnexp import CharRNN, preset; "
        "m = CharRNN(preset('gru', 12, 8), np.random.default_rng(0)); "
        "x = np.zeros((1, 5), int); print(m.loss_and_grads(x, x, m.zero_state(1))[0])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       env=env | {"NUMBA_CACHE_DIR": str(disk / "cache")})  # fmt: skip
    assert r.returncode == 0 and r.stderr == "", r.stderr  # it trained, not a word
    assert float(r.stdout) > 0
    assert not [p for p in (disk / "cache").rglob("*") if ".tmp." in p.name]


def test_what_is_said_of_a_run_whose_folder_or_store_is_deleted_under_it(tmp_path):
    import shutil

    from helpers import place_store, wait_for_metric

    place_store(tmp_path, (), {})
    long = [*SMALL, "corpus=fizzbuzz", "model.hidden_size=16", "train.steps=300000",
            "train.checkpoint_every=500"]  # fmt: skip
    proc = launch(*long, "hydra.run.dir=outputs/r", cwd=tmp_path)
    wait_for_metric(proc, tmp_path / "outputs" / "mlflow.db")
    while (tmp_path / "outputs" / "r").exists():  # the run may write a file as it goes
        shutil.rmtree(tmp_path / "outputs" / "r", ignore_errors=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"rnnexp: error: its folder {tmp_path}/outputs/r was deleted while it trained; the run "
        "stopped: start it again"
    )
    assert not (tmp_path / "outputs" / "r").exists()  # not built again in part
    proc = launch(*long, "hydra.run.dir=outputs/s", cwd=tmp_path)
    wait_for_metric(proc, tmp_path / "outputs" / "mlflow.db", tmp_path / "outputs" / "s")
    (tmp_path / "outputs" / "mlflow.db").unlink()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"rnnexp: error: the tracking store {tmp_path}/outputs/mlflow.db was deleted while this "
        "command used it"
    )
