"""The framework around the engine: the Hydra entrypoint and its checks, the settings, a
run's lifecycle and its folder, MLflow tracking, sweeps, figures and `rnnexp-sample`.

The engine (the rest of the package: cells, network, optimizers, data, training, sampling)
imports none of this and runs from a notebook without Hydra or MLflow.
"""
