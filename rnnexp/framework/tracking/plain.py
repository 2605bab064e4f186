"""The tracking layer's plain parts, no MLflow in them: a config as MLflow params
(`flatten`, `as_params`), a sweep's child run as plain values (`Child`), a corpus as a
dataset's source (`dataset_source`), MLflow's filter for a tag (`tag_is`), where the MLflow UI
shows a run (`ui_link`), `NullRun` (MlflowRun's methods doing nothing: tracking.enabled=false),
a models:/ URI's parts (`model_uri`) and the bounds of a download (`check_download`).
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from rnnexp.errors import RnnexpError
from rnnexp.framework.store import StoreUri

log = logging.getLogger("rnnexp")


def flatten(node: dict, prefix: str = "") -> dict[str, str]:
    """{"train": {"steps": 5}} -> {"train.steps": "5"}: MLflow params, one per leaf."""
    flat: dict[str, str] = {}
    for k, v in node.items():
        if isinstance(v, dict) and v:
            flat.update(flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = "null" if v is None else str(v)
    return flat


@dataclass
class Child:
    """A run under a parent (a sweep's job), as plain values."""

    run_id: str
    name: str
    status: str  # RUNNING, FINISHED, FAILED, KILLED
    metrics: dict[str, float]  # the latest value of each
    tags: dict[str, str]

    @property
    def val_loss(self) -> float | None:
        return self.metrics.get("val/loss")


MAX_PARAM_LENGTH = 6000  # the longest param value MLflow stores (its params.value column)
CUT = "… (cut: whole in config.yaml)"


def as_params(config: dict) -> dict[str, str]:
    """A config as MLflow params, one per leaf (flatten); a value longer than MLflow keeps
    is cut, with a note (MLflow would cut it without a word), and said."""
    params = flatten(config)
    for k, v in params.items():
        if len(v) > MAX_PARAM_LENGTH:
            log.warning("param %s is %d characters, over MLflow's %d: logged cut, with a note; "
                        "the whole value is in the run's config.yaml", k, len(v),
                        MAX_PARAM_LENGTH)  # fmt: skip
            params[k] = v[: MAX_PARAM_LENGTH - len(CUT)] + CUT
    return params


def dataset_source(source: str) -> tuple[str, dict]:
    """MLflow's kind of dataset source and where it is, for a corpus's `source`: a URL, a
    file's path, or `generated: ...` (the generator and its options)."""
    if source.startswith(("http://", "https://")):
        return "http", {"url": source}
    if source.startswith("generated:"):
        return "code", {"tags": {"rnnexp.generator": source.split(":", 1)[1].strip()}}
    return "local", {"uri": Path(source).as_uri()}


def tag_is(key: str, value: str) -> str:
    """MLflow's search filter for runs whose tag `key` is `value` (a path may hold a quote)."""
    quote = '"' if "'" in value else "'"
    return f"tags.`{key}` = {quote}{value}{quote}"


def ui_link(store: StoreUri, experiment_id: str, run_id: str, launch_dir: Path,
            children: bool = False) -> str:  # fmt: skip
    """How to see this run in the MLflow UI: its page on a tracking server, or the `mlflow
    ui` command that serves a local store, then the page; `children`: the runs under it
    (a sweep's jobs) side by side, in the UI's chart view (one chart a metric, val/loss
    among them, a line a run). The UI's model-training pages, not GenAI's, by the URL's
    workflowType (MLflow 3's UI chooses by it)."""
    from urllib.parse import quote

    if children:
        where = quote(tag_is("mlflow.parentRunId", run_id), safe="")
        page = (f"#/experiments/{experiment_id}/runs?searchFilter={where}"
                "&compareRunsMode=CHART&workflowType=machine_learning")  # fmt: skip
    else:
        page = f"#/experiments/{experiment_id}/runs/{run_id}"
        page += "?workflowType=machine_learning"
    if store.is_server:
        return f"{store.shown.rstrip('/')}/{page}"
    from rnnexp.framework.summary import shown

    path = store.path
    backend = store.uri if path is None else f"sqlite:///{shown(path, launch_dir)}"
    script = Path(sys.executable).with_name("mlflow")  # of this Python's venv, if it has one
    mlflow = shown(script, launch_dir) if script.is_file() else "mlflow"
    # the light UI: without its GenAI job runner (10 processes, ~2.5 GB; docs/tracking.md)
    command = f"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false {mlflow} ui --backend-store-uri "
    return f"{command}{backend} --workers 1\nthen open http://127.0.0.1:5000/{page}"


class NullRun:
    """Same methods as MlflowRun; records nothing."""

    run_id = None

    def ui_link(self, launch_dir: Path) -> str:
        return ""

    def status(self) -> str: ...
    def monitor_system(self, resume: bool) -> None: ...
    def reopen(self, folder: Path, folder_tag: str = "rnnexp.output_dir") -> None: ...
    def log_params(self, params: dict[str, object]) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...
    def flush(self) -> None: ...
    def log_dataset(self, name: str, source: str, digest: str, context: str,
                    profile: dict | None = None) -> None: ...  # fmt: skip
    def log_model(self, model_dir: Path, step: int) -> str: ...
    def log_text(self, text: str, artifact_file: str) -> None: ...
    def log_artifact(self, local_path: Path, artifact_path: str | None = None) -> None: ...
    def finish(self, status: str = "FINISHED", error: str | None = None) -> None: ...


MODEL_URI = re.compile(
    r"models:/(?P<id>m-[0-9a-f]{32})|models:/(?P<name>[^/@]+)(/(?P<version>\d+)|@(?P<alias>.+))"
)


def model_uri(uri: str) -> re.Match:
    """models:/<model id>, models:/<name>/<version> or models:/<name>@<alias>, its parts."""
    m = MODEL_URI.fullmatch(uri)
    if m is None:
        raise RnnexpError(f"{uri} is not a model URI: models:/<model id>, models:/<name>/<version> "
                          f"or models:/<name>@<alias>")  # fmt: skip
    return m


MAX_DOWNLOAD_BYTES = 2 << 30  # what one download may copy: a model that loads on a laptop
MAX_DOWNLOAD_FILES = 10_000


def check_local_download(root: Path, what: str) -> None:
    """A download from a local artifact store (a file or a folder) holds regular files only
    (a store's record could point at /dev, whose files never end), within the bounds."""
    import os
    import stat

    total = count = 0
    for path in [root] if not root.is_dir() else sorted(root.rglob("*")):
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode):
            continue
        if not stat.S_ISREG(info.st_mode):
            raise RnnexpError(f"{what}: {path} in its artifact store is not a regular file: "
                              f"not downloaded")  # fmt: skip
        total, count = total + info.st_size, count + 1
        check_download(what, total, count)


def check_download(what: str, total: int, count: int) -> None:
    """A download of `count` files, `total` bytes so far, within MAX_DOWNLOAD_*."""
    if total > MAX_DOWNLOAD_BYTES or count > MAX_DOWNLOAD_FILES:
        raise RnnexpError(f"{what} holds over {MAX_DOWNLOAD_BYTES:,} bytes or "
                          f"{MAX_DOWNLOAD_FILES:,} files: not downloaded")  # fmt: skip
