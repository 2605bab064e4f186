"""Recurrent cells: one file each, found by `CELLS` (a file of this folder that sets
`CELL = ItsClass`, named for it), chosen by name, as conf/model/*.yaml's `cell:` says.

A cell is one layer's recurrence. The network (rnnexp/model.py) projects a layer's inputs
for the whole chunk first, `a = x Wxh + bh` of shape (T, B, G) with G = gates * H, and hands
it over; the cell owns everything else of the layer. Its file holds its math: the equations
in its docstring, the chunk forward and backward in plain numpy (the definition the kernels
are tested against), its compiled elementwise kernels, its parameters, options and state.
One driver (recurrence.py: the `Cell` every cell subclasses) runs those kernels in every
batch regime, for training, evaluation and sampling: `workspace(B, T, dtype)`,
`forward(p, a, state, ws)`, `backward(p, dh, ws, g)`, `observe(ws)`.

Adding a cell is its file here and its preset, conf/model/NAME.yaml.
"""

from __future__ import annotations

import importlib
import pkgutil

from rnnexp.errors import ConfigError


def _found() -> dict[str, type]:
    """Every cell of this folder, by its file's name."""
    found = {}
    for module in pkgutil.iter_modules(__path__):
        cell = getattr(importlib.import_module(f"{__name__}.{module.name}"), "CELL", None)
        if cell is not None:
            found[module.name] = cell
    return found


CELLS = _found()  # name -> class: gru, lstm, rnn
"""Each recurrent cell's class by name, one file each in rnnexp/cells/ (`model.cell`)."""


def make_cell(name: str, hidden_size: int, **options):
    """The cell `name` for layers of `hidden_size` units, with its options."""
    if name not in CELLS:
        raise ConfigError(f"unknown model.cell {name!r}; valid: {', '.join(CELLS)}")
    return CELLS[name](hidden_size, **options)
