"""A run's model as MLflow loads and serves it (a pyfunc "model from code"): MLflow copies
this file into the logged model and runs it on `mlflow.pyfunc.load_model` or
`mlflow models serve`, so the model holds no pickle; its parameters are the run's
model.npz + model.json, an artifact of the MLflow model (rnnexp/checkpoint.py reads them).

`predict` takes rows of prime text, length, temperature and seed, and returns each row's
generated text, as rnnexp-sample would write it. (tracking/models.py logs it; this is the
code MLflow runs, not a second way of talking to the store.)
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from rnnexp.checkpoint import load_model
from rnnexp.sample import sample

COLUMNS = {"prime": "", "length": 200, "temperature": 1.0, "seed": 0}  # and their defaults


class CharRNNModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        # the key tracking.log_model gives the folder of the run's model.npz and model.json
        self.model, self.vocab, self.start = load_model(Path(context.artifacts["model"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """A row per request; returns a DataFrame with one column, `text`: the prime followed
        by `length` generated characters."""
        rows = pd.DataFrame(model_input)
        texts = []
        for row in rows.to_dict("records"):
            ask = {k: v if v is not None and v == v else COLUMNS[k]  # a missing cell: NaN/None
                   for k, v in {**COLUMNS, **row}.items() if k in COLUMNS}  # fmt: skip
            rng = np.random.default_rng(int(ask["seed"]))
            prime = str(ask["prime"]) or self.start
            texts.append(sample(self.model, self.vocab, rng, int(ask["length"]), prime,
                                float(ask["temperature"])))  # fmt: skip
        return pd.DataFrame({"text": texts})


mlflow.models.set_model(CharRNNModel())
