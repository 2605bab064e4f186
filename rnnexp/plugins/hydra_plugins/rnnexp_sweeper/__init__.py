"""rnnexp's Hydra sweeper plugin, installed as hydra_plugins.rnnexp_sweeper (pyproject.toml)."""
