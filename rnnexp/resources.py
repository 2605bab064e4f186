"""Where rnnexp's configuration lives: conf/ (the Hydra config groups and the model presets)
and experiments/ (the named presets) at the top of a checkout, and inside the package once a
wheel is installed (pyproject.toml maps both folders to rnnexp/conf and rnnexp/experiments).
Every reader of these files finds them here, so a checkout and an install behave alike."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _folder(name: str) -> Path:
    """rnnexp/NAME in an installed wheel, else NAME beside the package (a checkout, or an
    editable install of one)."""
    inside = PACKAGE / name
    return inside if inside.is_dir() else PACKAGE.parent / name


CONF_DIR = _folder("conf")
EXPERIMENTS_DIR = _folder("experiments")


def option_values(group: str, name: str, cls: type, given: dict) -> dict:
    """The keyword arguments of `cls` (a dataclass) for option `name` of a config group:
    conf/GROUP/NAME.yaml's values (the one place they are written) but those `given`, whose
    keys are checked against the fields of `cls`."""
    from dataclasses import fields

    from omegaconf import OmegaConf

    from rnnexp.errors import check_keys

    keys = [f.name for f in fields(cls) if f.init]
    check_keys(group, name, keys, given)
    preset = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml"))
    return {k: v for k, v in preset.items() if k in keys} | given


def check_own_names(folder: Path) -> None:
    """A user's folder of presets (--config-dir DIR: DIR/model/NAME.yaml, ...): Hydra reads
    rnnexp's conf/ first, so a file of theirs named like one of rnnexp's would be silently
    unseen: refused."""
    from rnnexp.errors import RnnexpError

    for mine in sorted(folder.glob("*/*.yaml")):
        if (CONF_DIR / mine.parent.name / mine.name).is_file():
            raise RnnexpError(
                f"{mine}: rnnexp has a {mine.parent.name} of that name, which Hydra reads "
                f"first; give yours a name of its own"
            )
