"""A finished run named on the command line, by its output folder, its MLflow run id, or an
MLflow model URI (models:/<model id>, models:/<name>/<version>, models:/<name>@<alias>), and
the files the commands that read runs (rnnexp-sample, rnnexp-inspect) take from it: its model
and the config it ran with. Files of a run id or model URI are downloaded from the store.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from rnnexp.checkpoint import BEST_MODEL_DIR, MODEL_DIR
from rnnexp.errors import RnnexpError
from rnnexp.framework import rundir
from rnnexp.framework.tracking import RUN_ID, Store
from rnnexp.framework.tracking.models import download_model

HINT = "run this from the folder the run was launched from, or pass --tracking-uri"
FINAL_IS_BEST = "the run's final model is its best (it has no model_best/): using it"


def seed(text: str) -> int:
    """--seed: a whole number >= 0 (numpy's generators take no other), said in argparse's line."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments that name a run, its model and its store (rnnexp-sample, rnnexp-inspect)."""
    p.add_argument("source", help="the run's output folder (or its model/ folder), its MLflow "
                   "run id, or an MLflow model URI: models:/<model id>, models:/<name>/<version>, "
                   "models:/<name>@<alias>")  # fmt: skip
    p.add_argument("--best", action="store_true",
                   help="the model of the run's lowest validation loss (model_best/), not its "
                   "final one")  # fmt: skip
    p.add_argument("--tracking-uri", help="MLflow store to find a run id in (default: "
                   "$MLFLOW_TRACKING_URI, else sqlite outputs/mlflow.db)")  # fmt: skip


class RunSource:
    """What the command line named (`source`), read through the store at `tracking_uri`
    (default: $MLFLOW_TRACKING_URI, else sqlite outputs/mlflow.db here), resolved once and
    only if needed; downloads go into `scratch`."""

    def __init__(self, source: str, tracking_uri: str | None, scratch: Path):
        self.source, self.scratch, self._tracking_uri = source, scratch, tracking_uri
        self._model: tuple[Path, str] | None = None  # a models:/ URI's folder and run
        self.note = ""  # what the command should tell about the model it got, if anything

    @functools.cached_property
    def store(self) -> Store:
        """The store (a password in it refused: MLFLOW_TRACKING_PASSWORD or PGPASSWORD), checked
        as a run's is: one that does not answer is one line at once, not MLflow's retries."""
        from rnnexp.framework.settings import check_no_password
        from rnnexp.framework.store import resolve_uri

        check_no_password(resolve_uri(self._tracking_uri, Path.cwd()))  # before it is said
        return Store.named(self._tracking_uri, Path.cwd(), writes=False)  # a look-up reads

    def _mlflow_model(self) -> tuple[Path, str]:
        if self._model is None:
            where = self.scratch / "mlflow-model"
            self._model = download_model(self.store, self.source, where, HINT)
        return self._model

    def _run_id(self) -> str:
        if self.source.startswith("models:/"):
            return self._mlflow_model()[1]  # the run that logged the model
        if not RUN_ID.fullmatch(self.source):
            raise RnnexpError(f"{self.source} is neither a folder, an MLflow run id nor a models:/ "
                              f"URI")  # fmt: skip
        return self.source

    def model_dir(self, best: bool = False) -> Path:
        """The folder holding model.npz and model.json, downloaded first from the store;
        with `best`, the run's model of its lowest validation loss."""
        name = BEST_MODEL_DIR if best else MODEL_DIR
        if self.source.startswith("models:/"):
            if best:
                raise RnnexpError(f"--best picks a run's best model; {self.source} is one model")
            return self._mlflow_model()[0]
        path = Path(self.source)
        if path.is_dir():
            if (path / name / "model.json").exists():
                return path / name
            if best and (path / MODEL_DIR / "model.json").exists():
                self.note = FINAL_IS_BEST  # no model_best/: the final model is the best
                return path / MODEL_DIR
            if (path / "model.json").exists():  # a model's own folder
                return path
            return self._no_model(path)
        run_id = self._run_id()
        tags = self.store.run_record(run_id, HINT)[2]
        if best and tags.get("rnnexp.best_model") == BEST_MODEL_DIR:
            return self.store.download_artifacts(run_id, BEST_MODEL_DIR, self.scratch, HINT)
        if best:
            self.note = FINAL_IS_BEST
        if "rnnexp.model_id" not in tags:  # not finished, or logged before models were MLflow's
            return self.store.download_artifacts(run_id, MODEL_DIR, self.scratch, HINT)
        # the final model's one copy in the store: the run's MLflow model
        where = self.scratch / "mlflow-model"
        return download_model(self.store, f"models:/{tags['rnnexp.model_id']}", where, HINT)[0]

    @staticmethod
    def _no_model(path: Path) -> Path:
        """A folder without a model: a run still training, a run that stopped before its end,
        or no run's folder; said in one line."""
        if not (path / rundir.CHECKPOINT_FILE).is_file():
            raise RnnexpError(f"{path} holds no rnnexp model (model/model.json) and is no run's "
                              f"folder")  # fmt: skip
        if rundir.is_held(path):
            raise RnnexpError(f"{path} is still training: its model is written when it ends")
        raise RnnexpError(f"{path} stopped before its end and has no model yet: finish it with "
                          f"rnnexp resume={path}")  # fmt: skip

    def corpus_sha256(self) -> str | None:
        """The sha256 of the text the run trained on, as the run recorded it (its checkpoint,
        or its tag in the store); None where it recorded none."""
        path = Path(self.source)
        if path.is_dir():
            from rnnexp.checkpoint import load_checkpoint

            checkpoint = path / rundir.CHECKPOINT_FILE
            return (
                load_checkpoint(checkpoint)[1].get("corpus_sha256")
                if checkpoint.is_file()
                else None
            )
        return self.store.run_record(self._run_id(), HINT)[2].get("rnnexp.corpus_sha256")

    def config(self) -> Path | None:
        """The resolved config.yaml the run ran with, downloaded first from the store; None
        for a folder that holds a model but is no run's folder."""
        path = Path(self.source)
        if path.is_dir():
            saved = path / ".hydra" / "config.yaml"
            return saved if saved.is_file() else None
        return self.store.download_artifacts(self._run_id(), "config.yaml", self.scratch, HINT)
