"""A finished run named on the command line, by its output folder or its MLflow run id, and
the files the commands that read runs (rnnexp-sample, rnnexp-inspect) take from it: its model
and the config it ran with. A run id's files are downloaded from its tracking store.
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnexp.checkpoint import BEST_MODEL_DIR, MODEL_DIR
from rnnexp.errors import RnnexpError
from rnnexp.framework.tracking import RUN_ID, download_artifacts

HINT = "run this from the folder the run was launched from, or pass --tracking-uri"


def _store(tracking_uri: str | None) -> str:
    """The store a run id is looked up in; its password, if any, moved to the environment
    (read from there by MLflow, never printed)."""
    from rnnexp.framework.store import move_credentials, resolve_uri

    uri, credentials = move_credentials(resolve_uri(tracking_uri, Path.cwd()))
    os.environ.update(credentials)
    return uri


def _run_id(source: str) -> str:
    if not RUN_ID.fullmatch(source):
        raise RnnexpError(f"{source} is neither a folder nor an MLflow run id")
    return source


def model_dir(source: str, tracking_uri: str | None, scratch: Path, best: bool = False) -> Path:
    """The folder holding model.npz and model.json, downloaded first for a run id; with
    `best`, the run's model of its lowest validation loss."""
    name = BEST_MODEL_DIR if best else MODEL_DIR
    path = Path(source)
    if path.is_dir():
        if (path / name / "model.json").exists():
            return path / name
        if best and (path / MODEL_DIR / "model.json").exists():
            raise RnnexpError(f"{path} has no {BEST_MODEL_DIR}/: it was never evaluated")
        return path
    return download_artifacts(_store(tracking_uri), _run_id(source), name, scratch, HINT)


def run_config(source: str, tracking_uri: str | None, scratch: Path) -> Path | None:
    """The resolved config.yaml the run ran with, downloaded first for a run id; None for a
    folder that holds a model but is no run's folder."""
    path = Path(source)
    if path.is_dir():
        saved = path / ".hydra" / "config.yaml"
        return saved if saved.is_file() else None
    return download_artifacts(_store(tracking_uri), _run_id(source), "config.yaml", scratch, HINT)
