"""The framework around the engine: the Hydra entrypoint and its checks, the settings, a
run's lifecycle and its folder, MLflow tracking, sweeps, figures and `rnnexp-sample`.

The engine (the rest of the package: cells, network, optimizers, data, training, sampling)
imports none of this and runs from a notebook without Hydra or MLflow.
"""

import sys
from pathlib import Path

# rnnexp's Hydra sweeper (hydra_plugins.rnnexp_sweeper): a wheel installs it in Hydra's
# hydra_plugins namespace; a clone's editable install maps it with an import hook that
# Hydra's listing of plugins (pkgutil) cannot read, so its folder goes on the path here
_PLUGINS = str(Path(__file__).parents[1] / "plugins")
if Path(_PLUGINS).is_dir() and _PLUGINS not in sys.path:
    sys.path.append(_PLUGINS)
