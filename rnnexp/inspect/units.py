"""Which hidden units track which simple features of the text: the ranking behind the
interpretable cells of Karpathy, Johnson & Fei-Fei (2015), done for every run.

Each feature is a number per character, computed from the text read up to and including it
(as the unit's value after that character is), except "characters left in line", which
counts ahead: the line-length cells of the paper track exactly that. A unit's match with a
feature is the Pearson correlation r of its values with the feature's over the text; a
unit's score is its largest |r|.

Ranking: first the strongest unit of each feature that some unit tracks strongly
(|r| >= STRONG), strongest features first, so different features are shown side by side;
then the remaining units by score. Features constant on the text are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

STRONG = 0.5  # |r| from which a unit counts as tracking a feature
OPEN, CLOSE = "([{", ")]}"


def _running(text: str, step: Callable[[float, str], float]) -> np.ndarray:
    """value_t = step(value_{t-1}, c_t) from 0: a feature with memory of the text before."""
    out, value = np.empty(len(text)), 0.0
    for i, c in enumerate(text):
        value = step(value, c)
        out[i] = value
    return out


def _left_in_line(text: str) -> np.ndarray:
    """Characters until the next newline (0 at a newline itself)."""
    out, value = np.empty(len(text)), 0.0
    for i in range(len(text) - 1, -1, -1):
        value = 0.0 if text[i] == "\n" else value + 1
        out[i] = value
    return out


def _in_string(text: str) -> np.ndarray:
    """1 inside a string literal of code, '...' or "..." (a triple-quoted one opens and closes
    three times, so ends inside), from its opening quote to before its closing one; a # out of
    strings comments the rest of its line out (a "don't" there opens nothing)."""
    out, quote, comment = np.empty(len(text)), "", False
    for i, c in enumerate(text):
        if comment:
            comment = c != "\n"
        elif quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        else:
            comment = c == "#"
        out[i] = quote != ""
    return out


def _each(text: str, test: Callable[[str], bool]) -> np.ndarray:
    return np.fromiter((test(c) for c in text), float, len(text))


FEATURES: dict[str, Callable[[str], np.ndarray]] = {
    "position in line": lambda t: _running(t, lambda v, c: 0.0 if c == "\n" else v + 1),
    "characters left in line": _left_in_line,
    "after a newline": lambda t: _each(t, lambda c: c == "\n"),
    "after a space": lambda t: _each(t, lambda c: c == " "),
    "inside a word": lambda t: _each(t, lambda c: c.isalpha() or c == "'"),
    "position in word": lambda t: _running(t, lambda v, c: v + 1 if c.isalpha() else 0.0),
    "upper case": lambda t: _each(t, str.isupper),
    "after a digit": lambda t: _each(t, str.isdigit),
    "end of sentence": lambda t: _each(t, lambda c: c in ".!?"),
    "inside quotes": lambda t: _running(t, lambda v, c: 1.0 - v if c == '"' else v),
    "inside a string": _in_string,
    "bracket depth": lambda t: _running(
        t, lambda v, c: v + 1 if c in OPEN else max(v - 1, 0.0) if c in CLOSE else v
    ),
}


def period(text: str, longest: int = 100, tolerance: float = 0.01) -> int | None:
    """The shortest p <= `longest` with text[i] == text[i + p] for all but `tolerance` of the
    text (1/7's digits repeat "142857": 6), or None."""
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    for p in range(1, min(longest, len(codes) // 3) + 1):
        if np.mean(codes[p:] != codes[:-p]) <= tolerance:
            return p
    return None


def text_features(text: str) -> dict[str, np.ndarray]:
    """Every feature that varies on `text`, by name, each (N,); for a text that repeats, also
    the position in its period."""
    feats = {name: f(text) for name, f in FEATURES.items()}
    p = period(text)
    if p is not None and p > 1:
        feats[f"position in the period of {text[:p]!r}"] = np.arange(len(text), dtype=float) % p
    return {name: v for name, v in feats.items() if np.ptp(v) > 0}


def correlations(values: np.ndarray, feats: dict[str, np.ndarray]) -> np.ndarray:
    """Pearson r of every unit (values (N, U)) with every feature: (F, U). A unit or feature
    that does not vary correlates with nothing: 0."""

    def standardise(x: np.ndarray) -> np.ndarray:  # columns to mean 0, norm 1
        x = x - x.mean(0)
        norm = np.linalg.norm(x, axis=0)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm > 1e-9 * len(x) ** 0.5)

    if not feats:
        return np.zeros((0, values.shape[1]))
    f = standardise(np.stack(list(feats.values()), axis=1))  # (N, F)
    return f.T @ standardise(values.astype(np.float64))


@dataclass
class Match:
    unit: int  # numbered across layers: layer * H + index
    feature: str
    r: float  # Pearson correlation over the text


def best_matches(r: np.ndarray, names: list[str]) -> list[Match]:
    """Each unit's strongest feature: r (F, U) -> U matches."""
    if not names:
        return [Match(u, "", 0.0) for u in range(r.shape[1])]
    f = np.abs(r).argmax(0)
    return [Match(u, names[f[u]], float(r[f[u], u])) for u in range(r.shape[1])]


def strongest_units(r: np.ndarray, names: list[str]) -> list[Match]:
    """Each feature's strongest unit: r (F, U) -> F matches, in the features' order."""
    top = np.abs(r).argmax(1) if names else []
    return [Match(int(top[f]), name, float(r[f, top[f]])) for f, name in enumerate(names)]


def rank_units(r: np.ndarray, names: list[str], k: int) -> list[Match]:
    """The k most interpretable units (the module's docstring says how they are ranked)."""
    chosen: dict[int, Match] = {}
    for m in sorted(strongest_units(r, names), key=lambda m: -abs(m.r)):  # stable: ties keep order
        if abs(m.r) >= STRONG and m.unit not in chosen and len(chosen) < k:
            chosen[m.unit] = m
    best = best_matches(r, names)
    for u in np.argsort(-np.abs([m.r for m in best]), kind="stable"):
        if len(chosen) >= k:
            break
        chosen.setdefault(int(u), best[u])
    return list(chosen.values())
