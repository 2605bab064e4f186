"""The Kneser-Ney baselines (rnnexp/ngram.py) against a plain reference written from the
definitions (Chen & Goodman 1998, interpolated Kneser-Ney), count by count in dicts."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from rnnexp.ngram import cross_entropies


def reference(train: list[int], val: list[int], V: int, N: int) -> list[float]:
    """Interpolated Kneser-Ney of orders 1..N: raw counts at the top order, continuation
    counts N1+(. h w) below, one discount n1 / (n1 + 2 n2) per order and kind, uniform 1/V
    at the bottom; val[j] predicted from the longest history that fits (at most N - 1)."""
    raw = {k: Counter(tuple(train[i : i + k]) for i in range(len(train) - k + 1))
           for k in range(1, N + 1)}  # fmt: skip
    cont = {k: Counter(g[1:] for g in raw[k + 1]) for k in range(1, N)}
    tables = {}
    for k in range(1, N + 1):
        for top, counts in ((True, raw[k]), (False, cont.get(k))):
            if counts is None:
                continue
            total, types = Counter(), Counter()
            for g, c in counts.items():
                total[g[:-1]] += c
                types[g[:-1]] += 1
            values = list(counts.values())
            n1, n2 = values.count(1), values.count(2)
            tables[k, top] = counts, total, types, n1 / (n1 + 2 * n2) if n1 else 0.5

    def prob(k: int, hist: tuple, w: int, top: bool) -> float:
        if k == 0:
            return 1.0 / V
        counts, total, types, d = tables[k, top]
        lower = prob(k - 1, hist[1:], w, False)
        if total[hist] == 0:
            return lower
        return (max(counts[(*hist, w)] - d, 0) + d * types[hist] * lower) / total[hist]

    out = []
    for n in range(1, N + 1):
        losses = []
        for j in range(1, len(val)):
            k = min(n, j + 1)
            losses.append(-math.log(prob(k, tuple(val[j - k + 1 : j]), val[j], True)))
        out.append(sum(losses) / len(losses))
    # the reference's own check: each distribution sums to 1 over the vocabulary
    for hist in ((), tuple(train[:2]), tuple(val[:3]), (V - 1, V - 1)):
        k = len(hist) + 1
        assert sum(prob(k, hist, w, True) for w in range(V)) == pytest.approx(1.0)
    return out


def test_every_order_agrees_with_the_reference():
    rng = np.random.default_rng(0)
    text = "the cat sat on the mat. the dog sat on the log. a cat, a dog, a mat. " * 3
    chars = sorted(set(text)) + ["#"]  # a symbol the training split never holds
    ids = [chars.index(c) for c in text]
    flips = rng.integers(0, len(ids), 20)  # some noise: unseen contexts in the val split
    for i in flips:
        ids[i] = int(rng.integers(0, len(chars)))
    train, val = ids[:160], ids[160:] + [len(chars) - 1]
    ours = cross_entropies(np.array(train), np.array(val), len(chars), max_order=7)
    np.testing.assert_allclose(ours, reference(train, val, len(chars), 7), rtol=1e-12)


def test_a_longer_context_learns_a_repeating_text():
    ids = np.tile(np.arange(5), 400)  # 0 1 2 3 4 0 1 ...: a bigram model knows it
    ce = cross_entropies(ids[:1500], ids[1500:], 5, max_order=4)
    assert ce[0] == pytest.approx(math.log(5), abs=0.01) and ce[1] < 0.05 and ce[3] < 0.05


def test_a_short_text_has_only_the_orders_it_holds_and_the_cache_gives_them_back(
        tmp_path, monkeypatch):  # fmt: skip
    """The cache holds each order's cross-entropy and the best order's probability of each
    validation character; what is read back is the file, and a damaged file is computed again."""
    from rnnexp.ngram import _orders, baseline

    ids = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 2])
    assert len(cross_entropies(ids[:7], ids[7:], 3)) == 4  # the val split: 4 characters
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ce, p = baseline(ids[:7], ids[7:], 3)
    np.testing.assert_array_equal(ce, cross_entropies(ids[:7], ids[7:], 3))
    best = int(np.argmin(ce))  # its p: the best order's, for val[1:]
    np.testing.assert_allclose(p, list(_orders(ids[:7], ids[7:], 3, 4))[best], rtol=1e-6)
    [kept] = (tmp_path / "rnnexp" / "ngram").glob("*.npz")
    np.savez(kept, cross_entropy=[9.0, 8.0, 7.0, 6.0], probs=np.full(3, 0.5))
    assert baseline(ids[:7], ids[7:], 3)[0].tolist() == [9.0, 8.0, 7.0, 6.0]  # read: the file
    for damaged in (b"PK\x03", b""):
        kept.write_bytes(damaged)
        np.testing.assert_array_equal(baseline(ids[:7], ids[7:], 3)[0], ce)
    for odd in (dict(cross_entropy=np.array(["a", "b", "c", "d"]), probs=np.full(3, 0.5)),
                dict(cross_entropy=[1.0, 2.0, 3.0, 4.0], probs=np.array(["x", "y", "z"])),
                dict(cross_entropy=[0.1, 0.2], probs=np.full(3, 0.5))):  # fmt: skip
        np.savez(kept, **odd)  # foreign, or another number of orders: computed again
        np.testing.assert_array_equal(baseline(ids[:7], ids[7:], 3)[0], ce)
    np.savez(kept, cross_entropy=[9.0], probs=np.full(2, 0.5))  # probabilities of another text
    np.testing.assert_array_equal(baseline(ids[:7], ids[7:], 3)[0], ce)


def test_a_second_process_waits_for_the_first_and_reads_its_table(tmp_path, monkeypatch):
    """Jobs of a sweep that start together count the n-grams once: the lock beside the cache
    file is held while one computes; the others wait, then read what it wrote."""
    import fcntl
    import threading

    from rnnexp.ngram import baseline

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ids = np.tile(np.arange(4), 50)
    first, _ = baseline(ids[:150], ids[150:], 4)
    [kept] = (tmp_path / "rnnexp" / "ngram").glob("*.npz")
    kept.unlink()
    got = []
    with open(kept.with_suffix(".lock"), "a") as lock:  # as a job computing it would hold it
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiter = threading.Thread(target=lambda: got.append(baseline(ids[:150], ids[150:], 4)))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and not got  # waiting, not computing
        np.savez(kept, cross_entropy=np.arange(20.0), probs=np.ones(49))  # the first job's
    waiter.join(10)
    np.testing.assert_array_equal(got[0][0], np.arange(20.0))
    np.savez(kept, cross_entropy=[], probs=np.ones(49))  # an empty or odd table: again
    np.testing.assert_array_equal(baseline(ids[:150], ids[150:], 4)[0], first)


def test_the_command_prints_each_order_and_marks_the_one_runs_log(capsys):
    """`rnnexp-ngram OVERRIDES`: the corpus of the composed config (a preset's too), split as a
    run splits it; a mistake in the command line is one line, exit 2."""
    from rnnexp import Vocab, load_corpus, split
    from rnnexp.framework.ngram_command import main
    from rnnexp.ngram import best

    assert main(["corpus=elman", "corpus.val_fraction=0.2"]) == 0
    table = capsys.readouterr().out
    text = load_corpus("elman").text
    vocab = Vocab.from_text(text)
    ce = cross_entropies(*split(vocab.encode(text), 0.2), len(vocab))
    rows = [line.split() for line in table.splitlines() if line[:5].strip().isdigit()]
    assert [int(r[0]) for r in rows] == list(range(1, 21))
    np.testing.assert_allclose([float(r[1]) for r in rows], ce, atol=5e-5)
    order, _ = best(ce)
    assert (
        rows[order - 1][3:] == ["<-", "best", "(corpus/ngram)"]
        and sum(len(r) > 3 for r in rows) == 1
    )
    for argv, said in ((["corpus=nope"], "unknown corpus 'nope'; valid: alice,"),
                       (["corpus.val_fraction=2"], "corpus.val_fraction"),
                       (["--cfg", "job"], "--cfg: rnnexp-ngram takes overrides")):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"rnnexp-ngram: error: {said}") or said in err, err
        assert err.count("\n") == 1


def test_a_cache_that_cannot_be_written_costs_only_the_time(tmp_path, monkeypatch):
    from rnnexp.ngram import MAX_CHARS, baseline

    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-folder"))
    ids = np.tile(np.arange(3), 30)
    np.testing.assert_array_equal(
        baseline(ids[:80], ids[80:], 3)[0], cross_entropies(ids[:80], ids[80:], 3)
    )
    assert baseline(np.zeros(MAX_CHARS + 1, np.int64), ids, 3) is None  # too long to count


def test_a_table_that_cannot_be_written_is_one_line(tmp_path):
    """Standard output on a full disk: one line, exit 2, no traceback (and --help too)."""
    import subprocess
    import sys

    for args in (["corpus=sevenths"], ["--help"]):
        with open("/dev/full", "w") as full:
            command = [sys.executable, "-m", "rnnexp.framework.ngram_command", *args]
            r = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path)  # fmt: skip
        assert r.returncode == 2 and r.stderr == (
            "rnnexp-ngram: error: cannot write the table to standard output: No space left on "
            "device\n"), r.stderr  # fmt: skip
