"""Figures: a run's loss curves (train and validation loss per character, and the corpus's
entropy floor where it is known), and a sweep's validation curves side by side."""

from __future__ import annotations

import textwrap
from pathlib import Path

from rnnexp.atomic import atomic_write

Points = list[tuple[int, float]]  # (step, nats/char)


def loss_curve(
    path: Path, train: Points, val: Points, floor: float | None, title: str,
    unigram: float | None = None, ngram: tuple[int, float] | None = None,
) -> Path:  # fmt: skip
    """Save a PNG of the train and validation curves, with the corpus's entropy floor where
    known, the unigram cross-entropy of the validation split (what character frequencies
    alone score: a run below it learned something about sequences) and the best n-gram's
    (`ngram`: its order and cross-entropy); return its path."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(*_xy(train), label="train/loss", color="tab:blue", linewidth=1)
    if val:
        ax.plot(*_xy(val), "o-", label="val/loss", color="tab:orange", markersize=3)
    if floor is not None:
        ax.axhline(
            floor, color="gray", linestyle="--", linewidth=1, label=f"entropy floor {floor:.4f}"
        )
    if unigram is not None:
        ax.axhline(unigram, color="tab:red", linestyle=":", linewidth=1,
                   label=f"unigram baseline {unigram:.4f}")  # fmt: skip
    if ngram is not None:  # the best Kneser-Ney order: what the last k - 1 characters tell
        ax.axhline(ngram[1], color="tab:green", linestyle="-.", linewidth=1,
                   label=f"{ngram[0]}-gram baseline {ngram[1]:.4f}")  # fmt: skip
    ax.set_xlabel("step")
    ax.set_ylabel("nats per character")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    # MLflow may copy it at any time: written whole; the title also as the PNG's Title text
    atomic_write(path, lambda f: fig.savefig(f, format="png", metadata={"Title": title}))
    plt.close(fig)
    return path


LEGEND_ROWS = 20  # runs a comparison's legend lists inside the chart; more go beside it


def compare_curves(
    path: Path, series: dict[str, Points], title: str, failed: dict[str, str] | None = None
) -> Path:
    """Save one PNG with a validation curve per run (name -> points); the runs in `failed`
    (name -> reason) are drawn dashed, marked FAILED with their reason, points or not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    failed = failed or {}
    # a sweep of many runs: the legend beside the chart, in columns of LEGEND_ROWS at most
    columns = -(-len(series) // LEGEND_ROWS) if len(series) > LEGEND_ROWS else 0
    fig, ax = plt.subplots(figsize=(8 + 2.2 * columns, 4.5), dpi=100)
    for name, points in sorted(series.items(), key=lambda item: _natural(item[0])):
        if name in failed:
            reason = textwrap.shorten(failed[name], 70, placeholder="…")
            line = ax.plot(*_xy(points), "x--", markersize=4, linewidth=1, color="tab:red")
            line[0].set_label(f"{name}: FAILED ({reason})")
        else:
            ax.plot(*_xy(points), "o-", markersize=3, linewidth=1, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("val/loss (nats per character)")
    ax.set_title(textwrap.fill(title, 95), fontsize=9)  # long override lists wrap
    ax.grid(alpha=0.3)
    if columns:
        legend = ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1), ncol=columns)
    else:
        legend = ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    # the legend also as the PNG's Description text: readable without looking at the image
    labels = "\n".join(t.get_text() for t in legend.get_texts())
    atomic_write(path, lambda f: fig.savefig(f, format="png", metadata={"Description": labels}))
    plt.close(fig)
    return path


def _natural(name: str) -> list:
    """seed=2 before seed=10: the numbers in a name compared as numbers."""
    import re

    return [float(p) if i % 2 else p for i, p in enumerate(re.split(r"(\d+(?:\.\d+)?)", name))]


def _xy(points: Points) -> tuple[list[int], list[float]]:
    return [p[0] for p in points], [p[1] for p in points]
