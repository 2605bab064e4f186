"""Every model x optimizer x corpus learns with the groups' defaults: one real parallel Hydra
sweep over all of them, 300 steps each (614,400 characters at the default B32 T64), tracked in
MLflow; every child must finish and end below the unigram cross-entropy of its validation
split (what character frequencies alone score). benchmarks/matrix.py is the quick in-process
version used to choose the defaults."""

from pathlib import Path

import pytest
from helpers import rnnexp, runs

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    names = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    return [n for n in names if n != "file"]  # corpus=file needs a path: any text, not a default


@pytest.mark.slow
def test_every_combination_learns_with_the_defaults(tmp_path):
    models, optimizers, corpora = options("model"), options("optimizer"), options("corpus")
    assert len(models) >= 5 and len(optimizers) >= 4 and len(corpora) >= 6
    r = rnnexp(
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        f"model={','.join(models)}", f"optimizer={','.join(optimizers)}",
        f"corpus={','.join(corpora)}", "train.steps=300", "train.eval_every=300",
        "train.sample_every=0", "train.checkpoint_every=300",
        cwd=tmp_path, timeout=3600,
    )  # fmt: skip
    uri = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    children = [c for c in runs(uri) if "mlflow.parentRunId" in c.data.tags]
    expected = len(models) * len(optimizers) * len(corpora)
    report, failed = [], []
    for c in sorted(children, key=lambda c: c.data.tags["mlflow.runName"]):
        m, name = c.data.metrics, c.data.tags["mlflow.runName"]
        val, base = m.get("val/loss", float("inf")), m.get("corpus/unigram", 0.0)
        ok = c.info.status == "FINISHED" and val < base
        report.append(f"{name:45s} {c.info.status:9s} val {val:7.3f} unigram {base:6.3f}")
        if not ok:
            failed.append(report[-1])
    print("\n" + "\n".join(report))
    assert len(children) == expected, (r.returncode, r.stderr[-2000:])
    assert not failed, "\n".join(failed)
    assert r.returncode == 0, r.stderr[-2000:]
