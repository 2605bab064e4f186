"""A grid sweep's validation losses (each job's best model's) laid out by what it varies: the
last varied key's values down the rows, the others' combinations across the columns, the
corpus's best n-gram as a last row. A sweep of model x model.layers x model.params is the
table of Karpathy, Johnson & Fei-Fei (2015), and for a sweep that varies the cell and the
depth the closing lines say which of that paper's three findings hold: gated cells ahead of
the plain RNN, two or more layers ahead of one, the best LSTM below the best n-gram."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from rnnexp.atomic import atomic_write
from rnnexp.framework.settings import override_key
from rnnexp.framework.summary import shown


def report(parent, jobs: list, swept: list[str], folder: Path, launch_dir: Path) -> list[str]:
    """The table of a sweep of two or more keys, in `folder` and among the parent run's
    artifacts; the lines it adds to the sweep's summary (where it is, the findings)."""
    number = {c.run_id: Path(c.tags.get("rnnexp.output_dir", "")).name for c in jobs}
    jobs = sorted(jobs, key=lambda c: int(n) if (n := number[c.run_id]).isdigit() else 0)
    cells = grid(jobs, swept)  # in the jobs' order: the values' order in the sweep
    if not cells:
        return []
    found = {(c.tags["rnnexp.ngram_order"], c.metrics["corpus/ngram"]) for c in jobs
             if "corpus/ngram" in c.metrics and "rnnexp.ngram_order" in c.tags}  # fmt: skip
    ngram = next(((int(k), v) for k, v in found), None) if len(found) == 1 else None
    notes = findings(cells, swept, ngram)
    title = f"the best validation loss of the {len(cells)} jobs by {', '.join(swept)}"
    for file in write(rows(cells, swept, ngram), notes, folder, title):
        parent.log_artifact(file)
    return [f"table      {shown(folder / 'table.md', launch_dir)} (.csv, .png): best validation "
            f"loss by {', '.join(swept)}", *notes]  # fmt: skip


def grid(jobs: list, swept: list[str]) -> dict[tuple[str, ...], float | str]:
    """Each job's values of the swept keys (in their order) -> its best model's validation
    loss (val/best_loss), or what stopped it (pruned, FAILED); {} unless two or more keys vary
    over a full grid."""
    out = {}
    for c in jobs:
        values = {override_key(o): o.partition("=")[2]
                  for o in json.loads(c.tags.get("rnnexp.varied") or "[]")}  # fmt: skip
        if len(swept) < 2 or set(values) != set(swept):
            return {}
        if "rnnexp.pruned" in c.tags:
            loss = "pruned"
        else:  # its best model's (the final one's, unless an earlier one did better)
            loss = c.metrics.get("val/best_loss", c.val_loss)
            loss = loss if c.status == "FINISHED" and loss is not None else c.status
        out[tuple(values[k] for k in swept)] = loss
    # every combination once (a search's sampled values are no grid)
    full = math.prod(len({k[i] for k in out}) for i in range(len(swept))) == len(out) == len(jobs)
    return out if full else {}


def rows(cells: dict, swept: list[str], ngram: tuple[int, float] | None) -> list[list[str]]:
    """The table as rows of text, its header first: the last key down, the others across."""
    across = list(dict.fromkeys(k[:-1] for k in cells))
    down = list(dict.fromkeys(k[-1] for k in cells))
    text = [[f"{swept[-1]} \\ {', '.join(swept[:-1])}", *(" ".join(a) for a in across)]]
    for d in down:
        values = [cells.get((*a, d), "") for a in across]
        text.append([d, *(f"{v:.4f}" if isinstance(v, float) else v for v in values)])
    if ngram is not None:  # what the last few characters tell, beside every column
        text.append([f"{ngram[0]}-gram (Kneser-Ney)", *[f"{ngram[1]:.4f}"] * len(across)])
    return text


def findings(cells: dict, swept: list[str], ngram: tuple[int, float] | None) -> list[str]:
    """The paper's three findings, each held, partly held or not, with its count; [] for a
    grid that does not vary the cell (model or model.cell) and model.layers."""
    cell_key = next((k for k in ("model", "model.cell") if k in swept), None)
    if cell_key is None or "model.layers" not in swept:
        return []
    at = {k: v for k, v in cells.items() if isinstance(v, float)}
    c, l = swept.index(cell_key), swept.index("model.layers")

    def compare(i: int, better: tuple[str, ...], base: str) -> list[tuple[float, float]]:
        """For each combination of the other keys: the best of the `better` values at key i,
        and the `base` value's loss."""
        pairs = []
        for rest in sorted({k[:i] + k[i + 1 :] for k in at}):
            top = [at[p] for v in better if (p := rest[:i] + (v,) + rest[i:]) in at]
            if top and (base_at := rest[:i] + (base,) + rest[i:]) in at:
                pairs.append((min(top), at[base_at]))
        return pairs

    def verdict(name: str, pairs: list[tuple[float, float]]) -> str:
        held = sum(a < b for a, b in pairs)
        word = (
            "holds" if pairs and held == len(pairs) else "partly holds" if held else "does not hold"
        )
        return f"{name}: {word} ({held} of {len(pairs)})"

    lines = [verdict("gated cells (lstm, gru) below the plain rnn at each depth and size",
                     compare(c, ("lstm", "gru"), "rnn")),
             verdict("2 or 3 layers below 1 for each cell and size",
                     compare(l, ("2", "3"), "1"))]  # fmt: skip
    lstm = min((v for k, v in at.items() if k[c] == "lstm"), default=None)
    if ngram is not None and lstm is not None:
        side = "holds" if lstm < ngram[1] else "does not hold"
        lines.append(f"the best lstm below the best n-gram: {side} ({lstm:.4f} against the "
                     f"{ngram[0]}-gram's {ngram[1]:.4f})")  # fmt: skip
    return lines


def write(table: list[list[str]], notes: list[str], folder: Path, title: str) -> list[Path]:
    """table.md (the table, then the findings), table.csv and table.png in `folder`."""
    md = ["| " + " | ".join(v.replace("|", "\\|") for v in r) + " |" for r in table]
    md.insert(1, "|" + "---|" + "---:|" * (len(table[0]) - 1))
    text = "\n".join([f"# {title}", "", *md, "", *(f"- {n}" for n in notes)]) + "\n"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table)
    files = [folder / "table.md", folder / "table.csv"]
    atomic_write(files[0], lambda f: f.write(text.encode()))
    atomic_write(files[1], lambda f: f.write(out.getvalue().encode()))
    return [*files, _figure(table, folder / "table.png", title)]


def _figure(table: list[list[str]], path: Path, title: str) -> Path:
    """The table as a heat map: darker is lower, each cell's loss (or status) written in it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    body = [r[1:] for r in table[1:]]
    grid = np.array([[float(v) if v.replace(".", "", 1).isdigit() else np.nan for v in r]
                     for r in body])  # fmt: skip
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(table[0]), 1 + 0.5 * len(body)), dpi=100)
    ax.imshow(grid, cmap="viridis", aspect="auto")  # dark: low loss
    finite = grid[np.isfinite(grid)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    for (i, j), v in np.ndenumerate(grid):
        dark = v == v and (v - low) < 0.6 * (high - low)
        ax.text(j, i, body[i][j], ha="center", va="center", fontsize=8,
                color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(range(len(table[0]) - 1), table[0][1:], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(body)), [r[0] for r in table[1:]], fontsize=8)
    ax.set_title(f"{title}\nvalidation loss, nats/char ({table[0][0]})", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", metadata={"Title": title}))
    plt.close(fig)
    return path
