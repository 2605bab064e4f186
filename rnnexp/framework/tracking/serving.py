"""What a served model does with a request (`mlflow models serve`, `mlflow.pyfunc`): read and
check its rows, bounded, then generate each row's text. Here in the package, not in the
file MLflow copies into each logged model (tracking/pyfunc_model.py calls this), so a fix
reaches models logged before it.

A bad request is a BadRequest, one line, which pyfunc_model.py hands MLflow as its 400 answer,
with no stack trace. LIMITS bound what one
request may ask for, so each ends in seconds and a client asking for a billion characters
cannot hold the server, nor keep it from stopping on SIGTERM.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from rnnexp.errors import RnnexpError, check_whole
from rnnexp.sample import check_temperature, sample

COLUMNS = {"prime": "", "length": 200, "temperature": 1.0, "seed": 0}  # and their defaults
EXAMPLE = {"prime": ["ROMEO:"], "length": [100], "temperature": [0.8], "seed": [0]}  # logged
# rows one request may hold, and the characters it may ask for over all its rows: the
# primes read, the text written (the serving process's environment variables change them)
MAX_ROWS = ("RNNEXP_SERVE_MAX_ROWS", 100)
LIMITS = {
    "prime": ("RNNEXP_SERVE_MAX_PRIME", 10_000),
    "length": ("RNNEXP_SERVE_MAX_LENGTH", 10_000),
}


def requirements() -> list[str]:
    """What loading a logged model needs: rnnexp (installed as it runs here) and its pins."""
    from importlib.metadata import version

    return [f"rnnexp=={version('rnnexp')}", f"mlflow=={version('mlflow')}",
            f"numpy=={version('numpy')}"]  # fmt: skip


class BadRequest(ValueError):
    """A request the model refuses: its line is MLflow's 400 answer (pyfunc_model.py)."""


def requests(frame: pd.DataFrame) -> list[dict]:
    """The rows of a request, each checked: a column left out takes its default; a value
    given must be valid (a NaN temperature is refused, not taken for 1.0); the whole request
    within LIMITS."""
    variable, default = MAX_ROWS
    most = int(os.environ.get(variable, default))
    if len(frame) > most:
        raise BadRequest(f"the request has {len(frame):,} rows; this server takes at most {most:,} "
                     f"({variable})")  # fmt: skip
    given = [c for c in COLUMNS if c in frame.columns]
    rows = []
    for i, row in enumerate(frame.to_dict("records")):
        ask = dict(COLUMNS)
        for key in given:
            value = row[key]
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            if missing and key != "prime":
                raise BadRequest(f"row {i}: {key} is missing or NaN; give it, or leave the column "
                                 f"out")  # fmt: skip
            if isinstance(value, float) and value.is_integer() and key in ("length", "seed"):
                value = int(value)  # a whole-number column with a gap is read as floats
            ask[key] = "" if missing else value
        try:
            ask["length"] = check_whole("length", ask["length"], 0)
            ask["seed"] = check_whole("seed", ask["seed"], 0)
            ask["temperature"] = check_temperature(ask["temperature"])
        except RnnexpError as e:
            raise BadRequest(f"row {i}: {e}") from None
        ask["prime"] = str(ask["prime"])
        rows.append(ask)
    for key, (variable, default) in LIMITS.items():
        most = int(os.environ.get(variable, default))
        total = sum(len(r[key]) if key == "prime" else r[key] for r in rows)
        if total > most:
            raise BadRequest(f"the request asks for {total:,} characters of {key} in all; this "
                         f"server takes at most {most:,} ({variable})")  # fmt: skip
    return rows


def predict(model, vocab, start: str, model_input) -> pd.DataFrame:
    """A row per request; a DataFrame with one column, `text`: each row's prime followed by
    `length` generated characters, as rnnexp-sample writes them with the same seed."""
    texts = []
    for ask in requests(pd.DataFrame(model_input)):
        rng = np.random.default_rng(ask["seed"])
        try:
            texts.append(sample(model, vocab, rng, ask["length"], ask["prime"] or start,
                                ask["temperature"]))  # fmt: skip
        except RnnexpError as e:  # a prime character the model never saw
            raise BadRequest(str(e)) from None
    return pd.DataFrame({"text": texts})
