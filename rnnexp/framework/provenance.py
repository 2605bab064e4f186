"""What made a run, recorded on it: its name (what it is), the commit of the code (with
-dirty for local changes) and the command's overrides.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from rnnexp.framework.settings import Settings


def run_tags(overrides: list[str]) -> dict[str, str]:
    """Tags every run and sweep carries: the code's git commit, the command's overrides, the
    machine, and MLflow's own source and user tags (its UI's Source and User columns)."""
    tags = {
        "rnnexp.overrides": " ".join(overrides),
        "mlflow.source.name": "rnnexp",  # the command that made the run
        "mlflow.source.type": "LOCAL",
        # the machine whose process holds its folder: only there can a dead run be told apart
        "rnnexp.host": socket.gethostname(),
    }
    user = _user()
    if user:
        tags["mlflow.user"] = user
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def _user() -> str | None:
    """The login name, as MLflow's own runs record it (None where the system has none)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        return None


def git_commit() -> str | None:
    """The commit of the rnnexp checkout running this, '-dirty' if it has local changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def run_name(s: Settings, corpus: str, experiment: str | None) -> str:
    """`gru-shakespeare-adam`: what the run is, model, corpus and optimizer; a preset's runs
    lead with its name (`min_char_rnn rnn-shakespeare-adagrad`)."""
    name = f"{s.model.name}-{corpus}-{s.optimizer.name}"
    return f"{experiment} {name}" if experiment else name
