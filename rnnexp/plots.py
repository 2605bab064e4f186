"""Figures: a run's loss curves (train and validation loss per character, and the corpus's
entropy floor where it is known), and a sweep's validation curves side by side."""

from __future__ import annotations

import textwrap
from pathlib import Path


def loss_curve(
    path: Path,
    train: tuple[list[int], list[float]],
    val: tuple[list[int], list[float]],
    floor: float | None,
    title: str,
) -> Path:
    """Save a PNG of (steps, nats/char) series; return its path."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(*train, label="train/loss", color="tab:blue", linewidth=1)
    if val[0]:
        ax.plot(*val, "o-", label="val/loss", color="tab:orange", markersize=3)
    if floor is not None:
        ax.axhline(
            floor, color="gray", linestyle="--", linewidth=1, label=f"entropy floor {floor:.4f}"
        )
    ax.set_xlabel("step")
    ax.set_ylabel("nats per character")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def compare_curves(
    path: Path, series: dict[str, tuple[list[int], list[float]]], title: str
) -> Path:
    """Save one PNG with a validation curve per run (name -> (steps, nats/char))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for name, (steps, values) in sorted(series.items()):
        ax.plot(steps, values, "o-", markersize=3, linewidth=1, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("val/loss (nats per character)")
    ax.set_title(textwrap.fill(title, 95), fontsize=9)  # long override lists wrap
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
