"""The loss-curve figure of a run: train and validation loss per character, and the corpus's
entropy floor where it is known."""

from __future__ import annotations

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
