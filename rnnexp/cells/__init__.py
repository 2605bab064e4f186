"""Recurrent cells: one file each, behind one contract, chosen by name from `CELLS`.

A cell is one layer's recurrence. The network (rnnexp/model.py) projects a layer's inputs
for the whole chunk first, `a = x Wxh + bh` of shape (T, B, G) with G = gates * H, and hands
it over; the cell owns everything else of the layer:

- `param_shapes(n_in)`: its parameters by local key (`Wxh`, `Whh`, `bh`, and its own), and
  `init(shapes, rng, scheme, scale, dtype)` their first values (rnnexp/init.py), drawn in
  key order;
- `parts`: the names of the (B, H) arrays it carries from chunk to chunk (`h`, or `h, c`);
- `workspace(B, T, dtype)`: its buffers for one chunk shape, made once;
- `forward(p, a, state, ws)`: the chunk, step by step, keeping in `ws` what backward needs;
  `ws.hs` (T+1, B, H) holds h_0 .. h_T, the layer's output;
- `backward(p, dh, ws, g)`: dh (T, B, H), the gradient reaching each h_t from outside the
  recurrence; returns da (T, B, G), the gradient at the projected inputs, and writes the
  gradients of the parameters only it sees (`Whh`, …) into the dict `g`;
- `step(p, a_t, state, out, scratch)`: one character, (B, G) -> `out`, the new state. The
  chunk forward runs this very method for each t; each recurrence is written once;
- the work of a step past its big products is one compiled pass (`_cell`, numba, with
  rnnexp/cells/jit.py), written beside the cell's equations; at batch 1 a step is
  `small_step` (its product included), which the chunk forward runs for every t in one call
  (`_steps`, and `_back_steps` backward) and sampling for every character
  (rnnexp/stepping.py). The products stay in BLAS where BLAS is faster;
- `observe(ws)`: what a look inside shows of the chunk just run (rnnexp/inspect/trace.py): the
  (T, B, H) values the text is coloured by (its memory: tanh(c) for the LSTM, h otherwise)
  and each gate's (T, B, H) values in (0, 1), by name.
"""

from __future__ import annotations

from rnnexp.cells.gru import GRU
from rnnexp.cells.lstm import LSTM
from rnnexp.cells.rnn import RNN
from rnnexp.errors import ConfigError

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def make_cell(name: str, hidden_size: int, **options):
    """The cell `name` for layers of `hidden_size` units, with its options."""
    if name not in CELLS:
        raise ConfigError(f"unknown model.cell {name!r}; valid: {', '.join(sorted(CELLS))}")
    return CELLS[name](hidden_size, **options)
