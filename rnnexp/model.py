"""One network around interchangeable cells: the input gather for layer 0, the stacking,
the softmax readout and the loss are written here once; each layer's recurrence is a cell
(rnnexp/cells/: `rnn` for min-char-rnn's tanh and Elman's sigmoid units, `lstm`, `gru`).

For layer l (layer 0 reads characters, layer l > 0 reads the layer below), step t:

    a_t^l = x_t^l Wxh^l + bh^l           x_t^0 = one_hot(c_t): a row of Wxh^0, gathered
    h_t^l = cell(a_t^l, state_{t-1}^l)   (rnnexp/cells/*.py give each cell's equations)
    y_t   = h_t^top Why + by             logits over the vocabulary
    loss  = mean over streams of sum_t -log softmax(y_t)[c_{t+1}]   (summed over the chunk)

Everything outside the recurrences (the input projections of all gates, the readout, the
loss and their gradients) is one gather or GEMM per chunk. Rows are batch entries, so
weights are (in, out): Wxh^0 is (V, G), the transpose of min-char-rnn's (H, V).
"""

from __future__ import annotations

import math

import numpy as np

from rnnexp.cells.jit import IN_ORDER, kernel, zero
from rnnexp.cells.ops import xty
from rnnexp.cells.scalars import exp
from rnnexp.config import ModelConfig
from rnnexp.init import init_weights
from rnnexp.params import FlatParams
from rnnexp.stepping import Stepper

Params = dict[str, np.ndarray]
# the carried state: the (B, H) arrays of every layer in order, its cell's parts each
# (h for rnn and gru, h then c for lstm)
State = list[np.ndarray]


def init_params(config: ModelConfig, rng: np.random.Generator) -> Params:
    """Each layer's parameters as its cell initialises them, then the readout's, by the
    scheme model.init (rnnexp/init.py), drawn in key order."""
    how = (config.init, config.init_scale, config.dtype)
    V, H = config.vocab_size, config.hidden_size
    params: Params = {}
    for l, cell in enumerate(config.make_cells()):
        shapes = cell.param_shapes(V if l == 0 else H)
        params |= {f"l{l}.{k}": v for k, v in cell.init(shapes, rng, *how).items()}
    return params | init_weights({"Why": (H, V), "by": (V,)}, rng, *how)


class _Workspace:
    """Buffers for one (B, T) chunk shape, reused step after step: a training step then
    allocates nothing large (fresh large arrays cost page faults every time)."""

    def __init__(self, config: ModelConfig, cells: list, B: int, T: int):
        H, V, dt = config.hidden_size, config.vocab_size, np.dtype(config.dtype)
        self.a = np.empty((T, B, cells[0].gates * H), dt)  # projected inputs, layer by layer
        self.table = np.empty((V, cells[0].gates * H), dt)  # Wxh + bh of layer 0, per row
        self.cells = [cell.workspace(B, T, dt) for cell in cells]  # each layer's own
        self.logits = np.empty((T * B, V), dt)  # then probs, then dy
        self.dh = np.empty((T, B, H), dt)  # gradient reaching h_t from outside the recurrence
        # dropout (training only): each layer's scaled mask, and its output after the mask
        self.masks = [np.empty((T, B, H), dt) for _ in cells] if config.dropout else []
        self.dropped = [np.empty((T, B, H), dt) for _ in cells] if config.dropout else []


class CharRNN:
    """A character-level language model: cells stacked under a softmax readout. `params` and
    the grads it returns share keys, `l{l}.Wxh`, `l{l}.Whh`, `l{l}.bh` (and a cell's own) per
    layer, then `Why`, `by`, each a view into one buffer (FlatParams: one call updates all):
    `CharRNN(preset("gru", len(vocab), hidden_size=128), np.random.default_rng(0))`."""

    def __init__(self, config: ModelConfig, rng: np.random.Generator):
        self.config = config
        self.cells = config.make_cells()
        self._params = FlatParams.of(init_params(config, rng), config.dtype)
        self._layers = self._layer_views(self._params)
        self._grad_views: tuple = (None, [])  # a grads buffer and its _layer_views
        self._workspaces: dict[tuple[int, int], _Workspace] = {}

    def _layer_views(self, p: FlatParams) -> list[dict[str, np.ndarray]]:
        """Each layer's parameters under its cell's local keys (views, not copies)."""
        return [
            {k.split(".", 1)[1]: v for k, v in p.items() if k.startswith(f"l{l}.")}
            for l in range(self.config.layers)
        ]

    @property
    def params(self) -> FlatParams:
        return self._params

    @params.setter
    def params(self, values: dict[str, np.ndarray]) -> None:
        """Copy `values` in (same keys and shapes as the config implies)."""
        if values.keys() != self._params.keys():
            raise ValueError(f"parameters {sorted(values)} are not {sorted(self._params)}")
        for k, v in values.items():
            if np.shape(v) != self._params[k].shape:
                raise ValueError(f"{k} has shape {np.shape(v)}, expected {self._params[k].shape}")
            self._params[k][...] = v

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.config.dtype)

    def zero_state(self, batch_size: int) -> State:
        """The carried state at the start of a stream: every layer's parts, each (B, H)."""
        H = self.config.hidden_size
        return [np.zeros((batch_size, H), self.dtype) for c in self.cells for _ in c.parts]

    def _split(self, state: State) -> list[State]:
        """The flat state as one list of parts per layer."""
        out, i = [], 0
        for cell in self.cells:
            out.append(state[i : i + len(cell.parts)])
            i += len(cell.parts)
        return out

    def new_grads(self) -> FlatParams:
        """A gradient buffer for loss_and_grads(..., grads=) to fill step after step."""
        return self._params.like()

    def _workspace(self, B: int, T: int) -> _Workspace:
        ws = self._workspaces.get((B, T))
        if ws is None:
            if len(self._workspaces) >= 4:  # evaluation's last short chunk adds shapes
                self._workspaces.clear()
            ws = self._workspaces[(B, T)] = _Workspace(self.config, self.cells, B, T)
        return ws

    def forward(
        self, inputs: np.ndarray, hprev: State, rng: np.random.Generator | None = None
    ) -> tuple[State, np.ndarray, _Workspace]:
        """inputs (B, T) ints, hprev the carried state. Returns the state after the chunk
        (views into workspace buffers), the logits (T*B, V) in time-major rows (row t*B + b
        is stream b at step t), and the workspace, overwritten by the next call of that
        shape (what each layer's cell.observe reads). With `rng` (training), model.dropout
        applies after every layer."""
        B, T = inputs.shape
        H = self.config.hidden_size
        ws = self._workspace(B, T)
        a, below, last = ws.a, None, []
        for l, (cell, p, state) in enumerate(zip(self.cells, self._layers, self._split(hprev),
                                                 strict=True)):  # fmt: skip
            # everything that does not depend on the recurrence: one gather or GEMM per chunk
            if l == 0:  # rows of Wxh + bh, never a one-hot product: (T, B, G)
                # the bias is added to the V rows, not to the T*B gathered ones (the same
                # sums); ids come from a Vocab, so in range; mode="clip" skips the
                # bounds-checking copy that "raise" makes with out=, 4-5x faster
                np.add(p["Wxh"], p["bh"], out=ws.table)
                np.take(ws.table, inputs.T, axis=0, out=a, mode="clip")
            else:
                np.matmul(below.reshape(T * B, H), p["Wxh"], out=a.reshape(T * B, -1))
                a += p["bh"]
            last += cell.forward(p, a, state, ws.cells[l])  # the only step-by-step part
            below = ws.cells[l].hs[1:]
            if rng is not None and self.config.dropout:  # char-rnn's: after every layer
                below = _dropout(below, self.config.dropout, rng, ws.masks[l], ws.dropped[l])
        logits = np.matmul(below.reshape(T * B, H), self._params["Why"], out=ws.logits)
        logits += self._params["by"]
        return last, logits, ws

    def advance(self, inputs: np.ndarray, hprev: State) -> State:
        """Feed inputs (B, T) ints through the layers; the state after the last."""
        return [x.copy() for x in self.forward(inputs, hprev)[0]]

    def loss(self, inputs: np.ndarray, targets: np.ndarray, hprev: State) -> tuple[float, State]:
        """Forward only: (summed chunk loss averaged over streams, next state)."""
        last, logits, ws = self.forward(inputs, hprev)
        loss = _softmax_xent(logits, targets, 1.0, False)
        return loss / inputs.shape[0], [x.copy() for x in last]

    def loss_and_grads(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        hprev: State,
        grads: FlatParams | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[float, FlatParams, State]:
        """inputs, targets (B, T) ints; hprev the carried state.
        Returns the loss (nats summed over the chunk, mean over the B streams), gradients
        under the keys of `params` (written into `grads` when given, see new_grads), and the
        state after the chunk. `rng` draws the dropout masks (model.dropout > 0)."""
        p = self._params
        B, T = inputs.shape
        H = self.config.hidden_size
        g = self.new_grads() if grads is None else grads
        drop = rng is not None and self.config.dropout > 0
        last, logits, ws = self.forward(inputs, hprev, rng if drop else None)
        loss = _softmax_xent(logits, targets, 1.0 / B, True)
        dy = logits  # (T*B, V): (probs - one_hot) / B, the gradient of the mean over streams
        outputs = ws.dropped if drop else [c.hs[1:] for c in ws.cells]  # each layer's, dropped

        xty(outputs[-1].reshape(T * B, H), dy, out=g["Why"])
        np.add.reduce(dy, axis=0, out=g["by"])  # np.sum's wrapper costs more than the sum
        dh, dh2 = ws.dh, ws.dh.reshape(T * B, H)
        np.matmul(dy, p["Why"].T, out=dh2)  # dloss/dh_t of the top layer, from the readout
        if drop:
            dh *= ws.masks[-1]
        if self._grad_views[0] is not g:  # the same buffer step after step (Trainer)
            self._grad_views = (g, self._layer_views(g))
        layer_grads = self._grad_views[1]
        for l in reversed(range(self.config.layers)):
            da = self.cells[l].backward(self._layers[l], dh, ws.cells[l], layer_grads[l])
            da2 = da.reshape(T * B, -1)
            np.add.reduce(da2, axis=0, out=layer_grads[l]["bh"])
            if l > 0:
                xty(outputs[l - 1].reshape(T * B, H), da2, out=layer_grads[l]["Wxh"])
                # into the layer below through this layer's gates (in da): the notebook's
                # two-layer net skipped the activation derivative here
                np.matmul(da2, self._layers[l]["Wxh"].T, out=dh2)
                if drop:
                    dh *= ws.masks[l - 1]
            else:
                _scatter_add_rows(g["l0.Wxh"], inputs.T.reshape(-1), da2)
        return loss / B, g, [x.copy() for x in last]

    def stepper(self) -> Stepper:
        """step(x, state) -> logits (1, V): one character through every layer, updating the
        carried state (a list of (1, H) arrays) in place, each layer with its cell's own
        step kernel, the one the chunk forward runs; step.generate() is sampling's loop, one
        compiled call (rnnexp/stepping.py)."""
        return Stepper(self)


def _dropout(h: np.ndarray, rate: float, rng: np.random.Generator, mask: np.ndarray,
             out: np.ndarray) -> np.ndarray:  # fmt: skip
    """out = h * mask with mask = keep / (1 - rate), keep ~ Bernoulli(1 - rate) from `rng`
    (inverted dropout: evaluation and sampling use the weights as they are)."""
    rng.random(dtype=mask.dtype, out=mask)  # float32 masks draw float32 numbers
    np.greater_equal(mask, rate, out=mask)
    mask *= 1.0 / (1.0 - rate)
    return np.multiply(h, mask, out=out)


@kernel
def _scatter_add_rows(out, index, rows):
    """out = 0, then out[index[k]] += rows[k] for every k, in order of k: the gradient of a
    row gather, one compiled pass (the sorted reduceat it replaces took 35 us for the 25 rows
    of a min-char-rnn step, 2.1 ms for 2,048 rows of 1,024)."""
    zero(out)
    last = out.shape[0] - 1
    for k in range(index.shape[0]):
        v = min(max(index[k], 0), last)  # the row the forward's gather read (mode="clip")
        o, r = out[v], rows[k]  # 1-D views: the inner loop vectorizes
        for j in range(r.shape[0]):
            o[j] += r[j]


@kernel
def _softmax_xent(logits, targets, scale, grad):
    """logits (T*B, V) in time-major rows (row t*B + b: stream b at step t), targets (B, T)
    ints. Returns the summed cross-entropy (nats, in float64); with grad, logits become its
    gradient times `scale`, (softmax - one_hot) * scale, in place. One pass a row: the numpy
    form (max, subtract, exp, sum, log, divide, pick) was 8 calls, 18 us a chunk, against ~4."""
    B, T = targets.shape
    terms = np.empty(T * B)
    for t in range(T):
        for b in range(B):
            terms[t * B + b] = _row_softmax_xent(logits[t * B + b], targets[b, t], scale, grad)
    return _compensated_sum(terms)


@kernel(fastmath=IN_ORDER)  # the compensation below must not be simplified away
def _compensated_sum(terms):
    """The sum of the rows' losses with Neumaier's compensation: the gradient checks
    difference the loss at 1e-4 apart, and a plain running sum's rounding showed in them
    (1.5e-6 relative error where numpy's pairwise sum gave 2.4e-7)."""
    total = compensation = 0.0
    for term in terms:
        t = total + term
        if abs(total) >= abs(term):
            compensation += (total - t) + term
        else:
            compensation += (term - t) + total
        total = t
    return total + compensation


@kernel
def _row_softmax_xent(row, c, scale, grad):
    """One row of _softmax_xent: its loss, and its gradient in place (a 1-D view: the loops
    over it vectorize)."""
    V = row.shape[0]
    zero, step = row.dtype.type(0), row.dtype.type(scale)
    c = min(max(c, 0), V - 1)  # ids come from a Vocab: in range
    top = row[0]
    for j in range(1, V):
        top = row[j] if row[j] > top else top  # stable: exp never overflows
    picked = row[c] - top
    total = zero
    for j in range(V):
        row[j] = exp(row[j] - top)
        total += row[j]
    if grad:
        k = step / total
        for j in range(V):
            row[j] *= k
        row[c] -= step
    return math.log(np.float64(total)) - np.float64(picked)  # a NaN stays NaN
