"""Every model, optimizer and corpus learns with the groups' defaults: 30 combinations that
hold every pair of model and optimizer (the pairs conf/tuning/ tunes), of model and corpus and
of optimizer and corpus, each composed by Hydra from conf/ as `rnnexp model=M optimizer=O
corpus=C` composes it and trained 300 steps (614,400 characters at the default B32 T64): each
must end below the unigram cross-entropy of its validation split (what character frequencies
alone score), none blow up. `benchmarks/matrix.py` without --pairwise runs all 120
(docs/performance.md)."""

import itertools
import subprocess
import sys

import pytest
from conftest import ROOT
from helpers import env

sys.path.insert(0, str(ROOT / "benchmarks"))
from matrix import group, pairwise  # noqa: E402


def test_the_pairwise_combinations_hold_every_pair():
    models, optimizers, corpora = group("model"), group("optimizer"), group("corpus")
    assert len(models) >= 5 and len(optimizers) >= 4 and len(corpora) >= 6
    chosen = pairwise(models, optimizers, corpora)
    assert len(chosen) == len(models) * len(corpora)
    for a, b in itertools.combinations(range(3), 2):
        values = (models, optimizers, corpora)
        assert {(c[a], c[b]) for c in chosen} == set(itertools.product(values[a], values[b]))


@pytest.mark.slow
def test_every_model_optimizer_and_corpus_learns_with_the_defaults():
    r = subprocess.run([sys.executable, "benchmarks/matrix.py", "--pairwise", "--workers", "2"],
                       cwd=ROOT, env=env(), capture_output=True, text=True,
                       timeout=1200)  # fmt: skip
    print(r.stdout)
    assert r.returncode == 0, r.stderr[-2000:]
    failed = [line for line in r.stdout.splitlines() if " FAIL " in line or "DIVERGED" in line]
    assert not failed, "\n".join(failed)
    assert r.stdout.rstrip().endswith("35 of 35 learned"), r.stdout[-500:]  # 5 models x 7 corpora
