"""Does every model x optimizer x corpus learn with the groups' defaults? Each combination is
composed by Hydra from conf/ exactly as `rnnexp model=M optimizer=O corpus=C` would be, trained
in-process (no MLflow) for --steps, and its validation loss printed beside the unigram
cross-entropy of the validation split (what character frequencies alone score):

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/matrix.py [overrides...]

This is the tool that chose the defaults (all 120 combinations, ~10 minutes on 2 cores).
`--pairwise` runs 30 of them that hold every pair of model and optimizer, model and corpus,
optimizer and corpus (tests/test_matrix.py, in CI).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def group(name: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / "conf" / name).glob("*.yaml") if p.stem != "file")


def run(job: tuple[str, str, str, int, tuple[str, ...]]) -> tuple[str, str, str, str, float]:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rnnexp.evaluate import evaluate, unigram_cross_entropy
    from rnnexp.framework.build import build
    from rnnexp.framework.cli import register_configs
    from rnnexp.trainer import DivergedError

    model, optimizer, corpus, steps, extra = job
    register_configs()
    overrides = [f"model={model}", f"optimizer={optimizer}", f"corpus={corpus}",
                 f"train.steps={steps}", *extra]  # fmt: skip
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        s = OmegaConf.to_object(compose("config", overrides=overrides))
    b = build(s)
    start = time.perf_counter()
    try:
        for _ in range(s.train.steps):
            b.trainer.train_step()
        b.trainer.check_finite()
        streams = max(1, min(s.train.eval_streams, len(b.val_ids) // 1000))
        loss = evaluate(b.model, b.val_ids, streams).loss
        outcome = f"{loss:.3f}"
    except DivergedError as e:
        loss, outcome = float("inf"), f"DIVERGED ({str(e)[:40]})"
    base = unigram_cross_entropy(b.train_ids, b.val_ids, len(b.vocab))
    verdict = "ok" if loss < base else "FAIL"
    took = time.perf_counter() - start
    return model, optimizer, corpus, f"{outcome:>8s} {base:7.3f} {verdict:4s} {took:5.1f}s", loss


def pairwise(models: list[str], optimizers: list[str], corpora: list[str]) -> list[tuple]:
    """One combination per (model, corpus), its optimizer rotating with both indices, so
    every pair of values of any two groups is among them (when there are more models and
    corpora than optimizers): model i, corpus j, optimizer (i + j) mod len(optimizers)."""
    return [(m, optimizers[(i + j) % len(optimizers)], c)
            for i, m in enumerate(models) for j, c in enumerate(corpora)]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--models", default=",".join(group("model")))
    p.add_argument("--optimizers", default=",".join(group("optimizer")))
    p.add_argument("--corpora", default=",".join(group("corpus")))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--pairwise", action="store_true", help="30 combinations holding every pair")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every job")
    a = p.parse_args()
    groups = a.models.split(","), a.optimizers.split(","), a.corpora.split(",")
    chosen = pairwise(*groups) if a.pairwise else itertools.product(*groups)
    jobs = [(m, o, c, a.steps, tuple(a.overrides)) for m, o, c in chosen]
    print(f"{'model':9s} {'optimizer':9s} {'corpus':12s} {'val':>8s} {'unigram':>7s}")
    failed = 0
    with ProcessPoolExecutor(a.workers) as pool:
        for m, o, c, line, _ in pool.map(run, jobs):
            failed += "FAIL" in line
            print(f"{m:9s} {o:9s} {c:12s} {line}", flush=True)
    print(f"{len(jobs) - failed} of {len(jobs)} learned")


if __name__ == "__main__":
    main()
