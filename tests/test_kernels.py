"""The compiled kernels' cache: runs started together on an empty cache all compile, write it
and agree, with each other and with every later run, which compiles nothing; the cache lives
in the user's cache folder, whatever the package's; a damaged or unwritable one costs only
itself."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import rnnexp
from rnnexp.resources import CONF_DIR

# trains each cell (argv 1) in each dtype (argv 2), two layers, a few steps at batch 1 (the
# whole-chunk kernels) and 16 (a pass per step), evaluates, samples, then prints the digest
# of what it computed and how many kernels it compiled (jit.compiled_here) and loaded from the
# cache (its hits). (A kernel that calls another, left a call, ran different code on a first
# run: with V 62 and chunks of 50, its float64 loss and parameters differed from a later run's)
CHILD = """
import hashlib, sys, numpy as np
from rnnexp import CharRNN, Trainer, evaluate, make_optimizer, preset
from rnnexp.cells import jit
digest = hashlib.sha256()
ids = np.random.default_rng(0).integers(0, 62, 2000)
for cell in sys.argv[1].split(","):
    for dtype in sys.argv[2].split(","):
        for B in (1, 16):
            model = CharRNN(preset(cell, 62, 40, dtype=dtype, layers=2),
                            np.random.default_rng(1))
            trainer = Trainer(model, make_optimizer("adam", lr=0.01), ids, seq_length=50,
                              batch_size=B)
            for _ in range(3):
                trainer.train_step()
            digest.update(np.float64(evaluate(model, ids[:500]).loss).tobytes())
            step, state = model.stepper(), model.zero_state(1)
            for i in range(20):  # sampling's path
                digest.update(step(i % 12, state).tobytes())
            for v in model.params.values():
                digest.update(v.tobytes())
hits = sum(sum(f.stats.cache_hits.values()) for f in jit.KERNELS)
print(digest.hexdigest(), jit.compiled_here(), hits)
"""


def child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    return env | {"OPENBLAS_NUM_THREADS": "1"} | extra


def run_children(n: int, env: dict, cwd: Path, prefix: list[str] | None = None,
                 cells: str = "rnn,lstm,gru", dtypes: str = "float32,float64"):  # fmt: skip
    """n children at once (from cwd: `python -c` imports from there first)."""
    cmd = [*(prefix or []), sys.executable, "-c", CHILD, cells, dtypes]
    procs = [subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]  # fmt: skip
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert "Warning" not in err and "Error" not in err, err  # no "cannot cache", no retry
        digest, compiled, hits = out.split()
        results.append((digest, int(compiled), int(hits)))
    return results


def package_copy(tmp_path: Path) -> Path:
    """A copy of the package (and its config), without any compiled cache: its site folder."""
    site = tmp_path / "site"
    shutil.copytree(Path(rnnexp.__file__).parent, site / "rnnexp",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    if not (site / "rnnexp" / "conf").is_dir():  # a clone's: the wheel has it inside
        shutil.copytree(CONF_DIR, site / "rnnexp" / "conf")
    return site


@pytest.mark.slow
def test_four_first_runs_at_once_share_an_empty_cache(tmp_path):
    env = child_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    first = run_children(4, env, tmp_path)
    assert len({digest for digest, _, _ in first}) == 1  # the same bits, whoever compiled
    assert all(compiled > 0 for _, compiled, _ in first)  # each started on the empty cache
    assert not [p for p in (tmp_path / "cache").rglob("*") if ".tmp" in p.name]
    [(digest, compiled, hits)] = run_children(1, env, tmp_path)
    assert (digest, compiled) == (first[0][0], 0) and hits > 0  # all loaded, nothing compiled


@pytest.mark.slow
def test_editing_a_kernel_that_others_inline_recompiles_them(tmp_path):
    # numba's own check reads only the cached function's file: the cells inline jit.py's loops
    site = package_copy(tmp_path)
    env = child_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(site))
    [(digest, compiled, _)] = run_children(1, env, tmp_path, None, "lstm", "float32")
    [(again, none, _)] = run_children(1, env, tmp_path, None, "lstm", "float32")
    assert compiled > 0 and (again, none) == (digest, 0)
    jit = site / "rnnexp" / "cells" / "jit.py"
    jit.write_text(jit.read_text() + "\n# an edit\n")
    [(edited, compiled, _)] = run_children(1, env, tmp_path, None, "lstm", "float32")
    assert compiled > 0 and edited == digest  # recompiled: the same code, the same bits


def test_a_cache_file_is_whole_only_as_complete_pickles(tmp_path):
    import pickle

    from rnnexp.kernel_cache import _whole

    whole = pickle.dumps({"a": 1}) + pickle.dumps((2, 3))  # an index is two pickles
    cases = {"whole": whole, "cut": whole[:-3], "empty": b"", "garbled": b"}(K\x01e."}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    assert {name: _whole(tmp_path / name) for name in cases} == {
        "whole": True, "cut": False, "empty": False, "garbled": False}  # fmt: skip


@pytest.mark.slow
def test_a_damaged_cache_is_compiled_again_and_rewritten(tmp_path):
    cache = tmp_path / "cache"
    env = child_env(NUMBA_CACHE_DIR=str(cache))
    [(digest, _, _)] = run_children(1, env, tmp_path, None, "gru", "float32")
    for i, path in enumerate([*cache.rglob("*.nbc"), *cache.rglob("*.nbi")]):
        damaged = (path.read_bytes()[: path.stat().st_size // 2], b"", b"}(K\x01e.")[i % 3]
        path.write_bytes(damaged)  # cut short by a kill, never written (a power cut), garbled
    [(again, compiled, _)] = run_children(1, env, tmp_path, None, "gru", "float32")
    assert again == digest and compiled > 0
    [(third, compiled, hits)] = run_children(1, env, tmp_path, None, "gru", "float32")
    assert (third, compiled) == (digest, 0) and hits > 0  # rewritten whole


@pytest.mark.slow
def test_a_first_run_says_that_its_first_step_compiled(tmp_path):
    # ~5 s of waiting on a first run: the person waiting is told why, once
    env = child_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"), RNNEXP_DATA_DIR=str(tmp_path))
    (tmp_path / "text.txt").write_text("hello world, " * 200)
    said = []
    for i in range(2):
        r = subprocess.run(
            [sys.executable, "-m", "rnnexp", "model=rnn", "corpus=file", "corpus.path=text.txt",
             "train.steps=3", "tracking.enabled=false", f"hydra.run.dir=run{i}"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        said.append(
            "numba kernels for this model" in (tmp_path / f"run{i}" / "rnnexp.log").read_text()
        )
    assert said == [True, False]  # compiled, then loaded


@pytest.mark.slow  # two cold compiles of a model's kernels: 20 s
def test_the_cache_is_the_users_whatever_the_package_folder(tmp_path):
    # a copy of the package in a folder this user may not write to; as root, without the
    # capability that lets root write anywhere (setpriv), the same folder is just as closed
    site = package_copy(tmp_path)
    for p in [site, *site.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root without setpriv: no folder is closed to root")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    home = tmp_path / "home"
    home.mkdir()
    env = child_env(HOME=str(home), PYTHONPATH=str(site))
    [(digest, compiled, _)] = run_children(1, env, tmp_path, prefix, "gru", "float32")
    assert compiled > 0
    cached = list((home / ".cache" / "rnnexp").rglob("*.nbi"))
    assert cached and not list(site.rglob("*.nbi"))
    [(again, compiled, hits)] = run_children(1, env, tmp_path, prefix, "gru", "float32")
    assert (again, compiled) == (digest, 0) and hits > 0
    # and a home folder closed too (a service user's): no cache anywhere, no error, same bits
    env = child_env(HOME=str(site), PYTHONPATH=str(site))
    [(uncached, compiled, hits)] = run_children(1, env, tmp_path, prefix, "gru", "float32")
    assert (uncached, hits) == (digest, 0) and compiled > 0
    for p in [site, *site.rglob("*")]:  # so that pytest can remove it
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_kernels_tanh_and_sigmoid_follow_numpys(dtype):
    import numba
    import numpy as np

    from rnnexp.cells.jit import FLAGS, make_all
    from rnnexp.cells.scalars import sigmoid, tanh

    make_all()  # the overloads registered: a test may run before any kernel did

    @numba.njit(fastmath=FLAGS, error_model="numpy")
    def both(x, t, s):
        for i in range(x.shape[0]):
            t[i], s[i] = tanh(x[i]), sigmoid(x[i])

    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, 0.625, -0.625, 7.9, 19.0, 30.0, -1e30, 1e-30, np.inf, -np.inf, np.nan]
    x = np.concatenate([rng.standard_normal(10_000) * 3, rng.uniform(-1, 1, 10_000),
                        rng.uniform(-40, 40, 10_000), edges]).astype(dtype)  # fmt: skip

    def tanh_of(x):
        t, s = np.empty_like(x), np.empty_like(x)
        both(x, t, s)
        return t

    t, s = np.empty_like(x), np.empty_like(x)
    both(x, t, s)
    ref = x.astype(np.float64)  # the reference in float64, for both
    want_t, want_s = np.tanh(ref), 0.5 + 0.5 * np.tanh(0.5 * ref)
    # float32: within its rounding; float64: a few units in the last place
    tol = 3e-7 if dtype == "float32" else 4 * np.spacing(np.abs(want_t[:-1]))
    assert np.isnan(t[-1]) and np.isnan(s[-1])  # a diverging run stays visible
    assert np.all(np.abs(t[:-1] - want_t[:-1]) <= tol)
    # sigmoid = (1 + tanh(x/2)) / 2: an absolute error of its float type's epsilon
    assert np.all(np.abs(s[:-1] - want_s[:-1]) <= 4 * np.finfo(x.dtype).eps)
    assert t.dtype == x.dtype and np.all(np.abs(t[:-1]) <= 1)
    big = np.array([30.0, np.inf], dtype)  # saturated exactly, as numpy's
    assert np.array_equal(tanh_of(big), [1, 1]) and np.array_equal(tanh_of(-big), [-1, -1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_kernels_exp_follows_numpys(dtype):
    # the softmax's exp: vectorized, so it builds 2^n from its bits; the edges are its risk
    import numba
    import numpy as np

    from rnnexp.cells.jit import FLAGS, make_all
    from rnnexp.cells.scalars import exp

    make_all()

    @numba.njit(fastmath=FLAGS, error_model="numpy")  # reassociating callers, as the kernels
    def each(x, out):
        for i in range(x.shape[0]):
            out[i] = exp(x[i])

    info, top = np.finfo(dtype), (88.72 if dtype == "float32" else 709.78)
    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, top, top + 0.01, -top, -top - 16, -1e30, 1e30, np.inf, -np.inf]
    x = np.concatenate([rng.uniform(-1.2 * top, 1.01 * top, 100_000), rng.standard_normal(10_000),
                        edges, [np.nan]]).astype(dtype)  # fmt: skip
    got = np.empty_like(x)
    each(x, got)
    with np.errstate(over="ignore"):
        want = np.exp(x)
    assert np.isnan(got[-1]) and got.dtype == x.dtype
    got, want = got[:-1], want[:-1]
    assert np.array_equal(np.isinf(got), np.isinf(want))  # inf exactly where numpy's is
    normal = np.isfinite(want) & (want >= info.tiny)
    tiny = np.isfinite(want) & ~normal  # below the smallest normal number: denormals or 0
    assert np.all(np.abs(got[normal] - want[normal]) <= 2 * np.spacing(want[normal]))  # 2 ulp
    assert np.all(np.abs(got[tiny] - want[tiny]) <= info.smallest_subnormal)  # one step


def test_a_kernel_copies_and_pickles_before_its_first_use():
    # a fresh process, where no kernel has been made: copied and pickled by name, as numba's
    # dispatchers are, without importing numba (Ray and joblib pickle what a job holds)
    code = (
        "import copy, pickle, sys; from rnnexp.cells import jit; k = jit.KERNELS[0]; "
        "assert copy.deepcopy(k) is k and pickle.loads(pickle.dumps(k)) is k; "
        "assert 'numba' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
