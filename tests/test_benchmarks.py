"""The benchmark scripts still run (tiny settings): they measure speed, tests do not."""

import re
import subprocess
import sys

import pytest
from conftest import ROOT
from helpers import env

SHARED = ROOT.parent / "shared" / "corpora"


def run(*args: str) -> str:
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env(), capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs tiny shakespeare in ../shared/corpora")
def test_throughput_benchmark_runs():
    out = run("benchmarks/throughput.py", "--seconds", "0.05", "--repeats", "1", "--no-torch",
              "--only", "rnn H100 T25", "--batch", "1", "--dtype", "float32")  # fmt: skip
    assert "numpy GEMM peak: float32" in out
    assert "classic loop" in out
    assert "rnn H100 T25       float32   1" in out


def test_sampling_benchmark_runs():
    out = run("benchmarks/sampling.py", "--chars", "50", "--repeats", "1")
    assert "rnn H512 float64:" in out and "chars/s" in out


def test_kernels_benchmark_runs():
    out = run("benchmarks/kernels.py", "--cells", "gru", "--hidden", "8", "--batches", "1,2",
              "--window", "0.01", "--T", "4")  # fmt: skip
    lines = out.splitlines()
    assert lines[-4].split()[:3] == ["gru", "8", "2"]  # the crossover table's last row
    assert lines[-2].startswith("readout") and lines[-1].startswith("dWhy")  # then the GEMMs


@pytest.mark.slow  # compiles in fresh processes: 10 s
def test_compile_benchmark_runs():
    out = run("benchmarks/compile.py", "--repeats", "1", "--cells", "rnn", "--dtypes", "float32",
              "--no-command")  # fmt: skip
    assert "rnn    float32  engine" in out


def test_targets_benchmark_runs():
    """Its sampling rows run the code of an older commit from `git archive`."""
    has = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", "da0996a^{commit}"],
                         capture_output=True)  # fmt: skip
    if has.returncode != 0:
        pytest.skip("not a clone with the history the benchmark compares against")
    out = run("benchmarks/targets.py", "--only", "sampling", "--repeats", "1")
    assert "| sampling lstm H256 float32 |" in out and "at da0996a" in out


def test_startup_benchmark_runs():
    out = run("benchmarks/startup.py", "--repeats", "1")
    rows = re.findall(r"^\| `(rnnexp [^`]*)` \| ([^|]*) \|", out, re.M)
    assert [c for c, _ in rows] == ["rnnexp --help", "rnnexp --cfg job", "rnnexp model=rnm (error)"]
    assert all(imports == "neither mlflow nor numba" for _, imports in rows), out
    assert "written" not in out  # one repeat: no result for the docs


@pytest.mark.slow  # PyTorch's import and two models' compile: 10 s
@pytest.mark.skipif(not SHARED.is_dir(), reason="needs tiny shakespeare in ../shared/corpora")
def test_cells_benchmark_runs():
    pytest.importorskip("torch")
    out = run("benchmarks/cells.py", "--seconds", "0.05", "--repeats", "1", "--cells", "gru")
    assert "gru    256  64  32 float32" in out and "x" in out.splitlines()[-1]


def test_inspection_benchmark_runs():
    out = run("benchmarks/inspection.py", "--chars", "300", "--hidden", "16", "--repeats", "1",
              "--cells", "lstm")  # fmt: skip
    assert "300 characters, H16" in out and re.search(r"^\| lstm \| float64 \|", out, re.M)
    assert "written" not in out


def test_early_validation_benchmark_runs():
    out = run("benchmarks/early_validation.py", "--steps", "4", "--every", "2", "corpus=elman",
              "model.hidden_size=8")  # fmt: skip
    assert "train.batch_size=1" in out and "train.batch_size=32" in out
    assert len([line for line in out.splitlines() if line.strip().startswith("4 ")]) == 2


@pytest.mark.slow  # a run through the command and the bare loop: 10 s
def test_entrypoint_overhead_benchmark_runs():
    """It reads the run's own log line of its times: a rewording of that line broke it once."""
    out = run("benchmarks/entrypoint_overhead.py", "--preset", "basic_rnn_sevenths", "--steps",
              "30", "--repeats", "1")  # fmt: skip
    assert "framework overhead" in out and "median of 1" in out


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="needs tiny shakespeare in ../shared/corpora")
def test_best200_benchmark_runs():
    """It reads the preset's log (its val losses, its seconds of training steps) and trains
    PyTorch's GRU beside it; a short run writes nothing."""
    out = run("benchmarks/best200.py", "--seconds", "2", "--seeds", "1")
    assert re.search(r"^\| 1 \| \d\.\d{4} \| [\d,]+ \| \d\.\d{4} \| [\d,]+ \| (rnnexp|PyTorch) \|$",
                     out, re.M), out  # fmt: skip
    assert "written" not in out


@pytest.mark.slow
def test_threads_benchmark_runs(tmp_path):
    out = run("benchmarks/threads.py", "--steps", "5", "--models", "gru", "--write",
              str(tmp_path / "t.json"))  # fmt: skip
    assert "| gru | a CPU hog |" in out and not (tmp_path / "t.json").exists()  # one model


def test_walk_benchmark_runs():
    """Both ways of counting, a line per key each; as a value, the store's URI enters no module
    twice (issue 32: a Store is made once from it and handed down)."""
    out = run("benchmarks/walk.py")
    ways = dict(re.findall(r"^(settings|value):\n((?:(?!settings:|value:).*\n)*)", out, re.M))
    assert set(ways) == {"settings", "value"}, out
    for lines in ways.values():
        keys = [line.split(":")[0] for line in lines.splitlines()[::2]]  # then the walk's line
        assert keys == ["tracking.uri", "optimizer.lr"], out
    assert re.search(r"^tracking\.uri: \d+ hops, \d+ modules, entered more than once: 0 \(\)$",
                     ways["value"], re.M), ways["value"]  # fmt: skip


@pytest.mark.slow  # four small sweeps: ~60 s
def test_search_benchmark_runs():
    """Both sweeps with and without pruning, and its table; nothing written in --quick."""
    out = run("benchmarks/search.py", "--quick")
    assert "| grid | asha |" in out and "| search | none |" in out, out
    assert re.search(r"^search: asha / none wall = \d\.\d\d, best val [+-]\d\.\d{4} nats$", out,
                     re.M), out  # fmt: skip


def test_ngram_benchmark_runs():
    """A small corpus's table of orders, its best marked; nothing written but for shakespeare."""
    out = run("benchmarks/ngram.py", "--corpus", "elman")
    assert re.search(r"^\| \*\*\d+\*\* \(best\) \| \d\.\d{4} \| \d\.\d{3} \|$", out, re.M), out
    assert "| 20 |" in out and "written" not in out
