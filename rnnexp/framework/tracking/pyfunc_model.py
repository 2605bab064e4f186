"""A run's model as MLflow loads and serves it (a pyfunc "model from code"): MLflow copies
this file into the logged model and runs it on `mlflow.pyfunc.load_model` or
`mlflow models serve`, so the model holds no pickle; its parameters are the run's
model.npz + model.json, an artifact of the MLflow model (rnnexp/checkpoint.py reads them).

`predict` takes rows of prime text, length, temperature and seed, and returns each row's
generated text (tracking/serving.py: the rules live in the package, not in this copy).
(tracking/models.py logs it; this is the code MLflow runs, not a second way of talking to
the store.)
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import mlflow.exceptions
import pandas as pd

from rnnexp.checkpoint import load_model
from rnnexp.framework.tracking import serving


class CharRNNModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        # the key tracking.log_model gives the folder of the run's model.npz and model.json
        self.model, self.vocab, self.start = load_model(Path(context.artifacts["model"]))

    def predict(self, context, model_input: pd.DataFrame, params=None):
        """A DataFrame with one column, `text`, a row per row of `model_input` (the model's
        own signature checks it: the type hint only says what MLflow hands over)."""
        try:
            return serving.predict(self.model, self.vocab, self.start, model_input)
        except serving.BadRequest as e:  # MLflow's 400, with the line and no stack trace
            raise mlflow.exceptions.MlflowException.invalid_parameter_value(str(e)) from None


mlflow.models.set_model(CharRNNModel())
