"""Continuing a run from its checkpoint: put the built run back where the checkpoint left it,
reopen its tracking run (in the store it was tracked in, and nowhere else), and decide how far
it still trains, a run trained further (more steps or seconds) included."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rnnexp.checkpoint import MODEL_DIR, load_checkpoint
from rnnexp.errors import CorpusError, RnnexpError
from rnnexp.framework.build import Built
from rnnexp.framework.settings import Settings
from rnnexp.framework.store import redact
from rnnexp.framework.tracking import MlflowRun, NullRun
from rnnexp.framework.training import LoopState

if TYPE_CHECKING:
    from rnnexp.framework.experiment import Launch


# the keys of train that set how far a run trains: resume= may raise them to train it further,
# and each checkpoint keeps the values the run trains to (LoopState.limits)
LIMITS = ("steps", "max_seconds")


def limits(s: Settings) -> dict[str, object]:
    """The values of LIMITS the run trains to, by name."""
    return {name: getattr(s.train, name) for name in LIMITS}


def train_further(s: Settings, state: LoopState, requested: dict[str, object]) -> str:
    """Set s.train's limits to those the run last trained to (a run trained further keeps
    its new limits in its checkpoints), then to the `requested` ones, which may only grow;
    returns what grew, `train.steps: 1000 -> 2000`, or ''."""
    for name, value in state.limits.items():
        setattr(s.train, name, value)
    grown = []
    for name, new in requested.items():
        old = getattr(s.train, name)
        if new == old:
            continue
        if old is not None and (new is None or new < old):
            raise RnnexpError(f"train.{name}={new} would cut the run short: it trains to {old}")
        setattr(s.train, name, new)
        grown.append(f"train.{name}: {old} -> {new}")
    return ", ".join(grown)


def can_train(s: Settings, b: Built, state: LoopState) -> bool:
    """Whether the run has steps and seconds left (a resumed run may have been given more)."""
    t = s.train
    return b.trainer.step < t.steps and (t.max_seconds is None or state.train_time < t.max_seconds)


def restore(b: Built, path: Path, launch: Launch) -> tuple[LoopState, MlflowRun | NullRun, str]:
    """Put a built run back where its checkpoint left it; its tracking run (not yet
    reopened) and that run's status (FINISHED when nothing is left to do)."""
    arrays, meta = load_checkpoint(path)
    if meta.get("corpus_sha256") != b.corpus.sha256:
        raise CorpusError(f"the corpus text changed since {path} was written: cannot resume")
    try:
        b.trainer.load_state_dict(arrays)
    except (KeyError, ValueError) as e:
        raise RnnexpError(f"checkpoint {path} does not fit the run's config: {e}") from None
    try:
        b.rng.bit_generator.state = meta["rng"]
        state = LoopState(**meta["loop"])
        missing = {"run_id", "uri"} - meta.keys()  # None for an untracked run, but there
        if missing:
            raise KeyError(sorted(missing)[0])
    except (KeyError, TypeError, ValueError) as e:
        raise RnnexpError(f"checkpoint {path} is not a whole rnnexp checkpoint: {e!r}") from None
    if not launch.track or not meta.get("run_id"):
        done = (launch.output_dir / MODEL_DIR / "model.npz").exists()
        return state, NullRun(), "FINISHED" if done else "KILLED"
    if meta["uri"] != launch.uri:  # never write to a store the user did not name
        raise RnnexpError(
            f"{launch.output_dir} is tracked in {redact(meta['uri'])}, not in this command's "
            f"store {redact(launch.uri)}: resume it with tracking.uri={redact(meta['uri'])}"
        )
    tracked = MlflowRun(meta["uri"], meta["run_id"])
    return state, tracked, tracked.status()
