"""Running the real entrypoints in subprocesses, and reading back what a store holds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

# small steps: the default run (a GRU at B32 T64) is the first run's minute of training; the
# framework's tests run every part of a run at B4 T16
SMALL = ["train.batch_size=4", "train.seq_length=16"]
# a few steps of everything: logging, evaluation, samples. Evaluation reads little: 2 % of
# the text is the validation split (the default's 10 % of shakespeare took ~3/4 of a run)
TINY = [
    *SMALL,
    "train.steps=30",
    "train.log_every=5",
    "train.eval_every=10",
    "train.eval_chars=2048",
    "train.sample_every=15",
    "train.sample_length=20",
    "corpus.val_fraction=0.02",
]


THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def env(**extra: str) -> dict[str, str]:
    """This process's environment (RNNEXP_DATA_DIR included) without any MLflow run or store,
    or thread limit, of the caller's leaking in."""
    e = {
        k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k not in THREAD_VARS
    }
    e.update(extra)
    return e


_TEMPLATE: list[Path] = []  # the migrated empty store, made once per test session


def migrated_store() -> Path:
    """An empty MLflow sqlite store with every table made and stamped: MLflow's migrations
    take ~6 s per fresh store, so a test's commands start from a copy of this one unless the
    making of a store is what the test is about (fresh=True)."""
    if not _TEMPLATE:
        import tempfile

        from mlflow import MlflowClient

        path = Path(tempfile.mkdtemp(prefix="rnnexp-template-")) / "mlflow.db"
        MlflowClient(f"sqlite:///{path}").search_experiments()
        _TEMPLATE.append(path)
    return _TEMPLATE[0]


def place_store(cwd: Path, args: tuple[str, ...], extra_env: dict) -> None:
    """The default store of a command in `cwd` (outputs/mlflow.db), copied from the
    migrated one if the command uses it and it is not there yet."""
    import shutil

    if any(a.startswith(("tracking.uri=", "resume=")) for a in args) or extra_env.get(
        "MLFLOW_TRACKING_URI"
    ):
        return
    if "--cfg" in args or "--help" in args:
        return
    store = cwd / "outputs" / "mlflow.db"
    if not store.exists():
        store.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_store(), store)


def rnnexp(*args: str, cwd: Path, timeout: float = 180, fresh: bool = False, **extra_env: str):
    """`python -m rnnexp ARGS` in `cwd`; returns the CompletedProcess (text). Its default
    store starts as a copy of the migrated one unless `fresh` (the test makes a store)."""
    if not fresh:
        place_store(cwd, args, extra_env)
    return subprocess.run(
        [sys.executable, "-m", "rnnexp", *args],
        cwd=cwd,
        env=env(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def refusal(*args: str, cwd: Path) -> str:
    """`rnnexp ARGS` run in this process from `cwd`, which must refuse the command line: its
    stderr, after checking it exits 2 with one line and writes nothing."""
    import contextlib
    import io

    from rnnexp.framework.cli import main

    before = set(cwd.rglob("*"))
    err = io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code
    text = err.getvalue()
    assert code == 2 and text.startswith("rnnexp: error: "), (code, text)
    assert len(text.strip().splitlines()) == 1, text
    assert set(cwd.rglob("*")) == before, "a refused command wrote files"
    return text.strip().removeprefix("rnnexp: error: ")


def run_here(
    *args: str, cwd: Path, fresh: bool = False, timeout: float = 0, **extra_env: str
) -> subprocess.CompletedProcess:
    """`rnnexp ARGS` run in this process from `cwd`: the whole framework (Hydra's parsing and
    composition, the checks, the run, its store) without a process's start-up (~4 s), for
    what the process boundary does not change (signals, exit on a kill, concurrency and the
    installed command are tested with processes). Its exit code, stdout and stderr as a
    process's; this process's environment as it was before."""
    from rnnexp.framework.cli import main

    assert "RNNEXP_KILL_AT" not in extra_env, "a kill test runs a process: it would kill this one"
    if not fresh:
        place_store(cwd, args, extra_env)
    return _here(main, ["rnnexp", *args], cwd, extra_env)


def _here(main, argv: list[str], cwd: Path, extra_env: dict) -> subprocess.CompletedProcess:
    """main(argv[1:]) in this process from `cwd`, in the environment a process would have."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env(**extra_env))
    try:
        with (
            contextlib.chdir(cwd),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                code = main(argv[1:]) or 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def launch(*args: str, cwd: Path, fresh: bool = False) -> subprocess.Popen:
    """`python -m rnnexp ARGS` started in `cwd`, not waited for (its store as rnnexp's)."""
    if not fresh:
        place_store(cwd, args, {})
    return subprocess.Popen([sys.executable, "-m", "rnnexp", *args], cwd=cwd, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def one_line(r) -> str:
    """The one line a refused command printed on stderr (asserted: one, no traceback)."""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def wait_for(proc: subprocess.Popen, path: Path, text: str = "", timeout: float = 60) -> None:
    """Until `path` exists (and holds `text`), while `proc` runs."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text(errors="replace")):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.01)


def wait_for_metric(
    proc: subprocess.Popen,
    db: Path,
    folder: Path | None = None,
    key: str = "train/loss",
    timeout: float = 120,
) -> None:
    """Until the store `db` (a sqlite file) holds a point of metric `key` (of the run whose
    folder is `folder`, if given), while `proc` runs: the event a test of an interruption
    needs (a step trained and logged), not a time."""
    import sqlite3

    query, args = "SELECT 1 FROM metrics m WHERE m.key = ?", [key]
    if folder is not None:
        query += (" AND m.run_uuid IN (SELECT run_uuid FROM tags WHERE key = "
                  "'rnnexp.output_dir' AND value = ?)")  # fmt: skip
        args.append(str(folder.resolve()))
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        if db.is_file():
            try:
                with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=1) as c:
                    if c.execute(query + " LIMIT 1", args).fetchone():
                        return
            except sqlite3.OperationalError:  # not created yet, or busy: look again
                pass
        time.sleep(0.05)


def command(module: str, *args: str, cwd: Path, timeout: float = 120):
    """rnnexp's command `python -m rnnexp.framework.MODULE ARGS` (besides the entrypoint),
    run in this process from `cwd` (test_wheel runs the installed ones); the
    CompletedProcess-like result (text)."""
    import importlib

    main = importlib.import_module(f"rnnexp.framework.{module}").main
    return _here(main, [module, *args], cwd, {})


def sample_cmd(*args: str, cwd: Path, timeout: float = 120):
    return command("sample_command", *args, cwd=cwd, timeout=timeout)


def inspect_cmd(*args: str, cwd: Path, timeout: float = 120):
    return command("inspect_command", *args, cwd=cwd, timeout=timeout)


def page_data(page: str) -> dict:
    """The data an inspect.html page draws, read back from its JSON script."""
    import json
    import re

    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))


def runs(uri: str, experiment: str = "rnnexp") -> list:
    """All runs of an experiment, oldest first."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} in {uri}"
    return list(reversed(client.search_runs([exp.experiment_id], max_results=1000)))


def history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow import MlflowClient

    return sorted((m.step, m.value) for m in MlflowClient(uri).get_metric_history(run_id, key))


def artifacts(uri: str, run_id: str, path: str = "") -> list[str]:
    """Artifact paths under `path`, recursively."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)  # MLflow lists a run's logged models through its global URI
    client = MlflowClient(uri)
    out = []
    for f in client.list_artifacts(run_id, path or None):
        out.extend(artifacts(uri, run_id, f.path) if f.is_dir else [f.path])
    return out
