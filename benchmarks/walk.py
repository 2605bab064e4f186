"""How far a setting travels: the walk of a value from the command line to its use, as the
modules of the package whose functions receive it, in call order, consecutive calls in one
module counted once. Two ways of counting: `settings`, a function receiving the value
itself or a Settings, config or dict that holds it; `value`, the value itself only (a str
that contains it, a float equal to it): how often it is handed on as a bare value.

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/walk.py

prints, for each way and for `tracking.uri` and `optimizer.lr`, the hops, the modules, and
those entered more than once, for a tiny tracked run in a temporary folder (in-process,
under sys.setprofile).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
import tempfile

MARKERS = {"optimizer.lr": "0.0123"}  # tracking.uri: the run's own store, set below
RUN = ["model=rnn", "model.hidden_size=8", "corpus=sevenths", "train.steps=3",
       "inspect.enabled=false", "train.sample_every=0"]  # fmt: skip


MODES = ("settings", "value")


def holds(value, marker: str, depth: int = 0, inside: bool = True) -> bool:
    """Whether `value` is, or (`inside`) holds within a few levels, the marked value."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(value, str):
        return marker in value
    if isinstance(value, float):
        return repr(value) == marker
    if not inside or depth > 3:
        return False
    if isinstance(value, DictConfig):
        return marker in OmegaConf.to_yaml(value, resolve=False)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(holds(getattr(value, f.name, None), marker, depth + 1)
                   for f in dataclasses.fields(value))  # fmt: skip
    if isinstance(value, dict):
        return any(holds(v, marker, depth + 1) for v in list(value.values())[:50])
    if isinstance(value, list | tuple):
        return any(holds(v, marker, depth + 1) for v in value[:50])
    return False


def walk(markers: dict[str, str], args: list[str]) -> dict[tuple[str, str], list[str]]:
    """The modules entered, in order, while `rnnexp ARGS` runs in this process: by each key
    of `markers` (its value marked) and each of MODES; one run for all."""
    from rnnexp.framework import cli

    walks: dict[tuple[str, str], list[str]] = {(k, m): [] for k in markers for m in MODES}

    def profile(frame, event, arg) -> None:
        module = frame.f_globals.get("__name__", "")
        if event != "call" or not module.startswith("rnnexp."):
            return
        code = frame.f_code
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        given = [frame.f_locals[n] for n in names if n != "self" and n in frame.f_locals]
        for (key, mode), modules in walks.items():
            if any(holds(v, markers[key], inside=mode == "settings") for v in given) and (
                    not modules or modules[-1] != module):  # fmt: skip
                modules.append(module)

    quiet = io.StringIO()  # the run's own log and summary
    sys.setprofile(profile)
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            cli.execute(args)
    finally:
        sys.setprofile(None)
    return {where: [m.removeprefix("rnnexp.") for m in ms] for where, ms in walks.items()}


def main() -> None:
    from rnnexp.framework import cli

    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        markers = {"tracking.uri": f"{scratch}/walk.db", **MARKERS}
        overrides = [f"tracking.uri=sqlite:///{scratch}/walk.db",
                     f"optimizer.lr={MARKERS['optimizer.lr']}"]  # fmt: skip
        # a first run, not walked, makes the store and loads what a run imports and compiles:
        # the walk is a run's as users run it, and under a profiler 5x faster
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            cli.execute([*RUN, *overrides, f"hydra.run.dir={scratch}/first"])
        walks = walk(markers, [*RUN, *overrides, f"hydra.run.dir={scratch}/run"])
        for mode in MODES:
            print(f"{mode}:")
            for key in markers:
                modules = walks[key, mode]
                twice = sorted({m for m in modules if modules.count(m) > 1})
                print(f"{key}: {len(modules)} hops, {len(set(modules))} modules, entered more "
                      f"than once: {len(twice)} ({', '.join(twice)})")  # fmt: skip
                print("  " + " -> ".join(modules))


if __name__ == "__main__":
    main()
