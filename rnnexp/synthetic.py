"""Corpora made by code, no network: the notebooks' synthetic sequences and their entropy floors.

The entropy floor is the lowest loss (nats per character) any model can reach on the text,
where it is known, so a run can show how far it still is from perfect.
"""

from __future__ import annotations

import numpy as np

from rnnexp.errors import check_fits, check_whole
from rnnexp.python_source import python


def sevenths(length: int = 6000) -> tuple[str, float]:
    """The decimal digits of 1/7 = 0.142857142857…: "142857" repeated (notebook 004).
    Fully periodic, so a model with context can predict every character: floor 0."""
    check_whole("sevenths length", length, 1)
    check_fits(f"sevenths length={length}", 16 * length)  # the text, and its ids
    return ("142857" * (length // 6 + 1))[:length], 0.0


def fizzbuzz(n: int = 100) -> tuple[str, None]:
    """FizzBuzz for 1..n, each answer followed by a newline, as printed by notebook 004's
    fizzbuzz(100) (413 characters). Deterministic, but a floor reachable by a model that has
    seen 413 characters is not known: None."""
    check_whole("fizzbuzz n", n, 1)
    check_fits(f"fizzbuzz n={n}", 16 * len(str(n)) * n)

    def answer(i: int) -> str:
        return (
            "FizzBuzz"
            if i % 15 == 0
            else "Fizz"
            if i % 3 == 0
            else "Buzz"
            if i % 5 == 0
            else str(i)
        )

    return "".join(f"{answer(i)}\n" for i in range(1, n + 1)), None


ELMAN_SYLLABLES = {"a": "ae", "b": "buu", "c": "ciii"}


def elman(
    length: int = 10_000, n_b: int = 3000, n_c: int = 3000, seed: int = 0
) -> tuple[str, float]:
    """Elman's (1990) letter sequences as notebook 003 builds them: `length` consonants 'a',
    `n_b` random positions (drawn with replacement) set to 'b', then `n_c` set to 'c' (a 'c'
    may overwrite a 'b'), then each consonant spelled out: a->"ae", b->"buu", c->"ciii".

    Vowels follow from their consonant; only the consonant after each syllable is random,
    so the floor is the source's entropy per syllable over its mean syllable length:
    0.3675 nats/char with the defaults, whatever the seed."""
    check_whole("elman length", length, 1)
    for key, n in (("n_b", n_b), ("n_c", n_c)):
        check_whole(f"elman {key}", n, 0)
    check_fits(f"elman length={length}, n_b={n_b}, n_c={n_c}",  # consonants, text, its ids
               8 * (n_b + n_c) + 64 * length)  # fmt: skip
    rng = np.random.default_rng(seed)
    consonants = np.full(length, "a")
    consonants[rng.integers(0, length, n_b)] = "b"
    consonants[rng.integers(0, length, n_c)] = "c"
    text = "".join(ELMAN_SYLLABLES[c] for c in consonants)
    return text, elman_floor(length, n_b, n_c)


def elman_floor(length: int, n_b: int, n_c: int) -> float:
    """Entropy rate (nats/char) of elman's source: a position escapes all n draws of a letter
    with probability (1 - 1/length)^n, so P(c) = 1 - q_c, P(b) = (1 - q_b) q_c, P(a) = q_b q_c."""
    q_b, q_c = (1 - 1 / length) ** n_b, (1 - 1 / length) ** n_c
    probs = np.array([q_b * q_c, (1 - q_b) * q_c, 1 - q_c])  # a, b, c
    sizes = np.array([len(ELMAN_SYLLABLES[c]) for c in "abc"])
    nz = probs > 0
    entropy = -float(np.sum(probs[nz] * np.log(probs[nz])))  # nats per syllable
    return entropy / float(probs @ sizes)


# and one read from this machine, not made up: the running Python's own source code
GENERATORS = {"sevenths": sevenths, "fizzbuzz": fizzbuzz, "elman": elman, "python": python}
