"""Everything rnnexp says to MLflow goes through this package, over MlflowClient: a store, its
experiments, look-ups, one-line errors and client (store.py: `Store`, made once from the
resolved URI and handed down); one run (mlflow_run.py); a run's model (models.py, and
pyfunc_model.py, the code MLflow runs to load it); runs whose process died (abandoned.py).
What needs no MLflow is in plain.py (and serving.py, what a served model does with a
request).
"""

from __future__ import annotations

import re

from rnnexp.framework.tracking.mlflow_run import MlflowRun
from rnnexp.framework.tracking.plain import Child, NullRun, flatten
from rnnexp.framework.tracking.store import Store

RUN_ID = re.compile(r"[0-9a-f]{32}")  # an MLflow run id

__all__ = ["Child", "MlflowRun", "NullRun", "RUN_ID", "Store", "flatten"]
