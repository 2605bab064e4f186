"""The one description of a model, `ModelConfig`: the schema of the `model` config node, what
the presets in conf/model/*.yaml fill in (`preset` reads them), and what a saved model.json
holds. Every value is checked here, where it is defined; the parameters' shapes follow.
"""

from __future__ import annotations

import copy
import math
from dataclasses import MISSING, dataclass, fields

import numpy as np

from rnnexp.cells import CELLS, make_cell
from rnnexp.errors import ConfigError, check_fits, check_interval, check_keys, check_whole
from rnnexp.init import INITS
from rnnexp.resources import CONF_DIR

DTYPES = ("float32", "float64")


@dataclass(kw_only=True)
class ModelConfig:
    """The one description of a model: what conf/model/*.yaml set (the `model` node of the
    settings), what `preset` reads, and what a saved model.json holds: the keys every cell
    has; a cell with keys of its own (its Options) has a subclass, MODEL_CONFIGS by cell.
    vocab_size comes from the corpus when the model is built (0 until then)."""

    name: str = ""  # the preset it came from: the label runs are filed under
    cell: str  # a file of rnnexp/cells: rnn | lstm | gru
    hidden_size: int = 100
    layers: int = 1
    dropout: float = 0.0  # char-rnn's -dropout: on each layer's output while training
    init: str = "normal"  # how weights are drawn: normal | uniform | xavier | orthogonal
    init_scale: float = 0.01  # normal's std, uniform's bound (rnnexp/init.py)
    dtype: str = "float64"
    vocab_size: int = 0  # set from the corpus's vocabulary
    # a parameter budget: hidden_size becomes the width whose count is nearest it (at the
    # corpus's vocabulary once known), so cells and depths compare at one size (as Karpathy
    # et al. 2015); checked up front as that width
    params: int | None = None

    def __post_init__(self) -> None:
        """Every value checked here, where it is defined: from YAML, a notebook or a file."""
        for key in ("vocab_size", "hidden_size", "layers"):
            least = 0 if key == "vocab_size" else 1  # 0: not known yet
            check_whole(f"model.{key}", getattr(self, key), least)
        if self.params is not None:  # solved again once the vocabulary is known
            check_whole("model.params", self.params, 1)
            self.hidden_size = matched_width(self)
        if self.cell not in CELLS:
            raise ConfigError(f"unknown model.cell {self.cell!r}; valid: {', '.join(CELLS)}")
        if MODEL_CONFIGS[self.cell] is not type(self):  # model.cell=gru in an rnn's preset
            raise ConfigError(
                f"model.cell={self.cell} in a {type(self).__name__}: choose the model of that "
                f"cell (model=NAME) rather than its cell"
            )
        check_interval("model.dropout", self.dropout, 0, 1)
        if self.init not in INITS:
            raise ConfigError(f"unknown model.init {self.init!r}; valid: {', '.join(INITS)}")
        if str(self.dtype) not in DTYPES:
            raise ConfigError(f"unknown model.dtype {self.dtype!r}; valid: {', '.join(DTYPES)}")
        if not np.isfinite(self.init_scale) or self.init_scale <= 0:
            raise ConfigError(
                f"model.init_scale must be a positive number, got {self.init_scale!r}"
            )
        largest = float(np.finfo(self.dtype).max)  # a float: comparing casts, with a warning
        if self.init_scale > largest:  # drawn weights would be inf
            raise ConfigError(
                f"model.init_scale={self.init_scale:g} overflows {self.dtype} (largest "
                f"{largest:.3g}); scales that learn are near 0.01-0.1"
            )
        _check_fits_in_memory(self)

    def make_cells(self) -> list:
        return [self.new_cell() for _ in range(self.layers)]

    def new_cell(self):
        """One layer's cell (rnnexp/cells), with this model's options."""
        return make_cell(self.cell, self.hidden_size, **self.cell_options())

    def cell_options(self) -> dict:
        """The cell's own keys and their values (none: a gated cell has its own gates)."""
        return {}


def _with_options(cell: type) -> type[ModelConfig]:
    """The ModelConfig of a cell with keys of its own (its Options dataclass: their types,
    defaults and checks, in the cell's file), else ModelConfig."""
    options = cell.Options
    if options is None:
        return ModelConfig

    def __post_init__(self) -> None:
        options.__post_init__(self)  # the cell's keys first, as its file checks them
        ModelConfig.__post_init__(self)

    def cell_options(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(options)}

    body = {"__post_init__": __post_init__, "cell_options": cell_options, "__module__": __name__}
    return dataclass(kw_only=True)(type(f"{cell.__name__}Config", (options, ModelConfig), body))


MODEL_CONFIGS = {name: _with_options(cell) for name, cell in CELLS.items()}
# each a name of this module (RNNConfig, ...), as if written here: pickled by reference
globals().update({c.__name__: c for c in MODEL_CONFIGS.values()})
# each cell's own keys and their defaults: a model saved before they were its cell's own
# holds them whatever its cell
_OWN_KEYS = {f.name: f.default for cell in CELLS.values() if cell.Options
             for f in fields(cell.Options) if f.default is not MISSING}  # fmt: skip


def model_config(**values) -> ModelConfig:
    """The ModelConfig of `values` (a preset's, model.json's): its cell's class. Keys of
    another cell's, holding their defaults, are dropped (a model saved before they were that
    cell's own has them whatever its cell)."""
    cls = MODEL_CONFIGS.get(values.get("cell"), ModelConfig)
    keys = {f.name for f in fields(cls)}
    values = {k: v for k, v in values.items()
              if k in keys or k not in _OWN_KEYS or v != _OWN_KEYS[k]}  # fmt: skip
    check_keys("model", str(values.get("cell")), [f.name for f in fields(cls)], values)
    return cls(**values)


def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter, by key (`l{l}.` + the cell's keys, then Why, by),
    without allocating any."""
    V, H = max(config.vocab_size, 1), config.hidden_size
    shapes: dict[str, tuple[int, ...]] = {}
    for l, cell in enumerate(config.make_cells()):
        shapes |= {f"l{l}.{k}": s for k, s in cell.param_shapes(V if l == 0 else H).items()}
    return shapes | {"Why": (H, V), "by": (V,)}


def param_count(config: ModelConfig) -> int:
    """How many numbers the parameters hold, by arithmetic: no cell made per layer, so an
    absurd model.layers costs nothing to refuse."""
    V, H, L = max(config.vocab_size, 1), config.hidden_size, config.layers
    cell = config.new_cell()
    first, deeper = (sum(map(math.prod, cell.param_shapes(n).values())) for n in (V, H))
    return first + (L - 1) * deeper + H * V + V


def matched_width(config: ModelConfig) -> int:
    """The hidden_size whose parameter count (at the config's cell, depth and vocabulary) is
    nearest config.params: the count grows with the width, so a doubling then a bisection."""
    probe = copy.copy(config)  # not re-checked at each width

    def count(h: int) -> int:
        probe.hidden_size = h
        return param_count(probe)

    low, high = 1, 2
    while count(high) < config.params:
        low, high = high, high * 2
    while high - low > 1:  # count(low) < params <= count(high), or low = 1
        mid = (low + high) // 2
        low, high = (mid, high) if count(mid) < config.params else (low, mid)
    return min((low, high), key=lambda h: abs(count(h) - config.params))


# bytes a layer costs beyond its numbers: its cell, and its arrays' headers in the
# parameters, gradients and optimizer state
LAYER_OVERHEAD = 16 * 1024


def step_bytes(config: ModelConfig, batch: int, length: int, vocab: int = 256) -> int:
    """About the bytes one forward and backward pass over `batch` streams of `length`
    characters keeps: each layer's gate pre-activations, states and their gradients, and the
    logits, probabilities and their gradient (`vocab`: a guess until the corpus is read)."""
    per_char = config.layers * config.hidden_size * (CELLS[config.cell].gates + 4) + 3 * vocab
    return batch * length * per_char * np.dtype(config.dtype).itemsize


def _check_fits_in_memory(config: ModelConfig) -> None:
    """Refuse, before allocating, a model whose parameters, gradients, optimizer state and
    float64 initial draw (4 copies) cannot fit in this machine's memory."""
    n = param_count(config)
    need = 4 * n * max(np.dtype(config.dtype).itemsize, 8) + config.layers * LAYER_OVERHEAD
    size = f"model.hidden_size={config.hidden_size}"
    size = size if config.params is None else f"model.params={config.params} ({size})"
    check_fits(f"{size} with {config.layers} layer(s) has {n:,} parameters, with gradients "
               f"and optimizer state", need)  # fmt: skip


MODELS_DIR = CONF_DIR / "model"  # the presets, in YAML
PRESETS = tuple(sorted(p.stem for p in MODELS_DIR.glob("*.yaml")))  # rnn, stacked2, srn, ...
"""The model presets `preset` reads, one per file of conf/model/: gru, lstm, rnn, srn, stacked2."""


def preset(name: str, vocab_size: int, hidden_size: int, **overrides) -> ModelConfig:
    """The ModelConfig of a named model, read from conf/model/NAME.yaml (the one place the
    presets are written), with the vocabulary, H and optional overrides.

    Examples:
        >>> config = preset("lstm", vocab_size=65, hidden_size=256, layers=2)
        >>> config.cell, config.layers, config.dtype
        ('lstm', 2, 'float64')
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown model {name!r}; valid: {', '.join(PRESETS)}")
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(OmegaConf.load(MODELS_DIR / f"{name}.yaml"))
    values = {k: v for k, v in values.items() if k != "defaults"}  # the YAML's schema line
    return model_config(**{**values, "vocab_size": vocab_size, "hidden_size": hidden_size,
                           **overrides})  # fmt: skip
