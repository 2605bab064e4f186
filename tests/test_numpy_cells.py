"""The compiled cells against their plain-numpy definitions (each cell's numpy_forward and
numpy_backward): the same h (and c) at every step, the same gradient at the projected inputs
and at every parameter the cell sees, in each batch regime of the driver; a third oracle
besides the finite differences and PyTorch (test_cells.py). And a cell is its file: no
other module of the package imports it."""

import ast
from pathlib import Path

import numpy as np
import pytest

import rnnexp
from rnnexp.cells import CELLS
from rnnexp.cells.ops import LARGE_BATCH
from rnnexp.cells.recurrence import SMALL_BATCH

H, T = 6, 5
# the whole chunk in one call; a compiled pass per step around BLAS; the transposed GEMMs
BATCHES = [1, SMALL_BATCH, LARGE_BATCH, 32]
# each cell with its options (the rnn's sigmoid without BPTT: Elman's srn)
CASES = [(name, {}) for name in CELLS] + [("rnn", {"activation": "sigmoid", "bptt": False})]
IDS = [name + "".join(f"-{v}" for v in options.values()) for name, options in CASES]
# against numpy in float64: the kernels' float64 only rounding apart; float32 its own
# rounding through T steps
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}  # seen: 8e-16, 4e-7


def run_both(name: str, options: dict, B: int, dtype: str, seed: int = 0):
    """One chunk through the kernels (the driver) in `dtype` and through numpy in float64,
    from the same parameters, inputs, state and outside gradient."""
    rng = np.random.default_rng(seed)
    cell = CELLS[name](H, **options)
    shapes = cell.param_shapes(H)
    p = {k: (rng.standard_normal(s) * 0.5).astype(dtype) for k, s in shapes.items()}
    a = rng.standard_normal((T, B, cell.gates * H)).astype(dtype)
    state = [rng.uniform(-0.9, 0.9, (B, H)).astype(dtype) for _ in cell.parts]
    dh = rng.standard_normal((T, B, H)).astype(dtype)

    ws = cell.workspace(B, T, dtype)  # the gradients the cell writes: all but the network's
    grads = {k: np.empty(s, dtype) for k, s in shapes.items() if k not in ("Wxh", "bh")}
    last = [x.copy() for x in cell.forward(p, a, state, ws)]
    hs = ws.hs[1:].copy()
    da = cell.backward(p, dh, ws, grads).copy()

    p, a, dh = (
        {k: v.astype(np.float64) for k, v in p.items()},
        a.astype(np.float64),
        dh.astype(np.float64),
    )
    saved = cell.numpy_forward(p, a, [x.astype(np.float64) for x in state])
    want_da, want_grads = cell.numpy_backward(p, dh, saved)
    want_last = [saved[part][-1] for part in cell.parts]
    return (hs, last, da, grads), (saved["h"][1:], want_last, want_da, want_grads)


def close(got: np.ndarray, want: np.ndarray, dtype: str, what: str) -> None:
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape, what
    scale = max(np.abs(want).max(), 1e-30)
    error = np.abs(got.astype(np.float64) - want).max() / scale
    assert error < TOLERANCE[dtype], f"{what}: relative error {error:.1e}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("B", BATCHES)
@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_the_kernels_compute_the_numpy_cell(name, options, B, dtype):
    (hs, last, da, grads), (want_hs, want_last, want_da, want_grads) = run_both(
        name, options, B, dtype
    )
    close(hs, want_hs, dtype, "h_1 .. h_T")
    for k, (got, want) in enumerate(zip(last, want_last, strict=True)):
        close(got, want, dtype, f"state part {k} at T")
    close(da, want_da, dtype, "da")
    assert grads.keys() == want_grads.keys()
    for key, want in want_grads.items():
        close(grads[key], want, dtype, key)


def test_no_module_but_its_own_file_imports_a_cell():
    package = Path(rnnexp.__file__).parent
    cell_modules = {f"rnnexp.cells.{name}" for name in CELLS}
    classes = {cell.__name__ for cell in CELLS.values()}
    for path in package.rglob("*.py"):
        module = "rnnexp." + ".".join(path.relative_to(package).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                named = {alias.name for alias in node.names} & cell_modules
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = {f"{node.module}.{alias.name}" for alias in node.names}
                named = ({node.module} | names) & cell_modules
                if node.module == "rnnexp.cells":
                    named |= {alias.name for alias in node.names} & classes
            else:
                continue
            assert not named - {module}, f"{path.relative_to(package)} imports {named}"
