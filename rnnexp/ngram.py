"""Interpolated Kneser-Ney character n-gram models (Kneser & Ney 1995; Chen & Goodman 1998):
the baseline a character-level network is measured against. Karpathy, Johnson & Fei-Fei
(2015) put their best LSTM beside a 20-gram model; `cross_entropies` gives every order from
1 to N in one pass: counted on the training split, scored on the validation split (nats/char).

An order-k model predicts a character from the k - 1 before it, interpolating down to a
uniform distribution over the vocabulary: the top order uses raw counts, the lower orders
Kneser-Ney's continuation counts (how many distinct characters precede an n-gram), each
with one absolute discount D = n1 / (n1 + 2 n2) of its own (n1, n2: n-grams seen once,
twice). The first characters of the validation split, with less history, are predicted by
the longest order that fits them.

An n-gram is a 64-bit polynomial hash of its characters (numpy's wrapping uint64 product),
so every order is sorted integers and a vectorised search: a collision, two of the ~1 M
n-grams of a corpus sharing a hash among 2^64, is negligible.
"""

from __future__ import annotations

import fcntl
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from rnnexp.atomic import atomic_write
from rnnexp.checkpoint import read_npz
from rnnexp.errors import RnnexpError
from rnnexp.kernel_cache import user_cache

PRIME = np.uint64(0x100000001B3)  # FNV's 64-bit prime: an odd multiplier mixes every byte
MAX_ORDER = 20  # the paper's n-gram: 20 characters
MAX_CHARS = 8_000_000  # training characters it counts: ~230 bytes each at its peak, < 2 GB


def baseline(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int,
             max_order: int = MAX_ORDER) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """The validation cross-entropy of each order (`cross_entropies`), and the best order's
    probability of each character of val_ids[1:] (float32), kept in the user's cache (ngram/)
    by a digest of the splits: computed once per corpus and split on a machine, then read
    back; None for a training split over MAX_CHARS. Jobs of a sweep that start together
    compute it once: the others wait for the first, by a lock beside the file. A cache that
    cannot be written costs only the time."""
    if len(train_ids) > MAX_CHARS:
        return None
    digest = hashlib.sha256()
    for part in (train_ids, val_ids):
        digest.update(np.asarray(part, np.int64).tobytes() + b"|")
    digest.update(f"{vocab_size}|{max_order}|".encode() + Path(__file__).read_bytes())  # and code
    folder = user_cache()
    path = folder and folder / "ngram" / f"{digest.hexdigest()[:32]}.npz"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 (held over the with below)
    except (OSError, AttributeError):  # no cache folder, or none that can be written
        return _table(train_ids, val_ids, vocab_size, max_order)
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
        try:
            kept = read_npz(path)  # no pickles, each member's size checked before it is read
            ce, p = kept["cross_entropy"], kept["probs"]
            shapes = (ce.shape, p.shape) == ((orders(len(train_ids), len(val_ids), max_order),),
                                             (len(val_ids) - 1,))  # fmt: skip
            if shapes and ce.dtype.kind == p.dtype.kind == "f" and np.isfinite(ce).all():
                return ce, p
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
                RnnexpError):  # none yet, or damaged  # fmt: skip
            pass
        ce, p = _table(train_ids, val_ids, vocab_size, max_order)
        try:  # whole or absent: a reader never sees half of it
            atomic_write(path, lambda f: np.savez(f, cross_entropy=ce, probs=p))
        except OSError:
            pass
    return ce, p


def orders(n: int, m: int, max_order: int) -> int:
    """The orders counted for splits of n and m characters: none longer than either."""
    return max(1, min(max_order, n - 2, m))


def _table(train_ids, val_ids, vocab_size: int, max_order: int) -> tuple[np.ndarray, np.ndarray]:
    """baseline's pair, computed: one order at a time, keeping the best one's probabilities."""
    ce, keep = [], None
    for p in _orders(train_ids, val_ids, vocab_size, max_order):
        ce.append(-np.log(p).mean())
        keep = p if ce[-1] == min(ce) else keep
    return np.array(ce), keep.astype(np.float32)


def best(ce: np.ndarray) -> tuple[int, float]:
    """The order with the lowest cross-entropy, and that cross-entropy."""
    k = int(np.argmin(ce))
    return k + 1, float(ce[k])


def _windows(ids: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """The hashes of ids' k-grams (one per start), from those of its (k-1)-grams."""
    with np.errstate(over="ignore"):  # mod 2^64: the hash wraps by design
        return keys[: len(ids) - k + 1] * PRIME + (ids[k - 1 :] + 1).astype(np.uint64)


def _counter(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct keys and how often each occurs."""
    return np.unique(keys, return_counts=True)


def _distinct(keys: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """_counter's pair, and where each distinct key first occurs."""
    unique, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return (unique, counts), first


def _lookup(counter: tuple[np.ndarray, np.ndarray], queries: np.ndarray) -> np.ndarray:
    """Each query's count in `counter` (0 for one never seen)."""
    keys, counts = counter
    if not len(keys):
        return np.zeros(len(queries))
    at = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[at] == queries, counts[at], 0).astype(np.float64)


def _discount(counts: np.ndarray) -> float:
    n1, n2 = np.count_nonzero(counts == 1), np.count_nonzero(counts == 2)
    return n1 / (n1 + 2 * n2) if n1 else 0.5


def _level(hw: np.ndarray, h: np.ndarray, types: np.ndarray, d: float, lower: np.ndarray):
    """P(w | h) at one order: the discounted count of h then w, plus the mass the discount
    freed (d for each distinct character seen after h) spread by the lower order; the lower
    order alone where h was never seen."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (np.maximum(hw - d, 0.0) + d * types * lower) / h
    return np.where(h > 0, p, lower)


def cross_entropies(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int,
                    max_order: int = MAX_ORDER) -> np.ndarray:  # fmt: skip
    """The validation cross-entropy (nats/char) of the Kneser-Ney model of each order from 1
    to `max_order` (fewer for a split shorter than that), counted on `train_ids`,
    predicting val_ids[1:] as a network's val/loss does; shape (orders,)."""
    return _table(train_ids, val_ids, vocab_size, max_order)[0]


def _orders(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int, max_order: int):
    """The probabilities of val_ids[1:] under each order from 1 to max_order, in turn."""
    x, v = np.asarray(train_ids, np.int64), np.asarray(val_ids, np.int64)
    n, m = len(x), len(v)
    max_order = orders(n, m, max_order)  # no order longer than either split
    # hashes of the (k-1)-, k- and (k+1)-grams of the training split, by start; order 0: ""
    before, keys = np.zeros(n + 1, np.uint64), _windows(x, np.zeros(n + 1, np.uint64), 1)
    after = _windows(x, keys, 2)
    v_before, v_keys = np.zeros(m + 1, np.uint64), _windows(v, np.zeros(m + 1, np.uint64), 1)
    cont = np.full(m, 1.0 / vocab_size)  # order 0's "continuation": uniform, at every position
    early = np.ones(m)  # positions with less history than an order: the longest that fits
    for k in range(1, max_order + 1):
        at = np.arange(k - 1, m)  # the val positions an order-k window ends at
        hw, h = v_keys[: m - k + 1], v_before[: m - k + 1]  # (those windows, their contexts)
        raw, first = _distinct(keys)
        top = np.full(m, np.nan)  # the order-k model, raw counts at the top
        top[at] = _level(_lookup(raw, hw), _lookup(_counter(before[: n - k + 1]), h),
                         _lookup(_counter(before[first]), h), _discount(raw[1]),
                         cont[at])  # fmt: skip
        early[k - 1] = top[k - 1]
        yield np.concatenate([early[1 : k - 1], top[max(k - 1, 1) :]])
        if k == max_order:
            break
        # continuation counts of order k, from the distinct (k+1)-grams: how many characters
        # precede each k-gram (hw), each context h in the middle, and the w seen after h
        _, nxt = np.unique(after, return_index=True)
        succ, mid = keys[nxt + 1], before[nxt + 1]
        suffixes, one = _distinct(succ)
        c = np.full(m, np.nan)
        c[at] = _level(_lookup(suffixes, hw), _lookup(_counter(mid), h),
                       _lookup(_counter(mid[one]), h), _discount(suffixes[1]),
                       cont[at])  # fmt: skip
        cont = c
        before, keys, after = keys, after, _windows(x, after, k + 2)
        v_before, v_keys = v_keys, _windows(v, v_keys, k + 1)
