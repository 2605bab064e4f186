"""Nothing a run or an install generates is committed: no tracking store, no outputs/, no
virtual environment, no build folder. They differ per machine and grow with every run."""

import shutil
import subprocess

import pytest
from conftest import ROOT

GENERATED = (".venv/", "outputs/", "multirun/", "mlruns/", "mlartifacts/", "build/", "dist/")
STORES = (".db", ".db.lock", ".sqlite", ".sqlite3")


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an installed copy has no history to check)")
    r = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return r.stdout.splitlines()


def generated(path: str) -> bool:
    inside = any(path.startswith(g) or f"/{g}" in path for g in GENERATED)
    return inside or path.endswith(STORES) or "__pycache__/" in path or ".egg-info/" in path


def test_no_generated_file_is_tracked():
    files = tracked_files()
    assert "pyproject.toml" in files  # the listing is the repository's
    assert [f for f in files if generated(f)] == []


@pytest.mark.parametrize(
    "path", ["mlflow.db", "outputs/runs/x/model.npz", ".venv/bin/python", "a/mlruns/0/meta.yaml"]
)
def test_the_check_knows_a_generated_file(path):
    assert generated(path)
