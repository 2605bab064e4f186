"""A test-only way to kill rnnexp at a named moment of a run's life, as a power cut or the
OOM killer would: with RNNEXP_KILL_AT=PHASE (or PHASE@N, its Nth time in the process) set,
`point(PHASE)` sends the process SIGKILL there (or the signal RNNEXP_KILL_WITH names, e.g.
SIGTERM: a stop asked for at that very moment). Unset, a point costs one dict lookup.

The phases, in the order a run meets them: startup, claimed (its folder), store (a new
sqlite store half made), hydra (Hydra's .hydra/ files written), opened (its MLflow run made,
nothing else), write:NAME (an atomic write of file NAME, before its rename: checkpoint.npz,
step_0000010.txt, model.npz, ...), checkpointed, model-logged, artifacts (all made, run not
closed), sweep-job (a sweep's next job about to start: sweep-job@2 is its second).
"""

from __future__ import annotations

import os
import signal

ENV = "RNNEXP_KILL_AT"
SIGNAL_ENV = "RNNEXP_KILL_WITH"
_seen: dict[str, int] = {}


def point(phase: str) -> None:
    """Signal this process if RNNEXP_KILL_AT names `phase` (and this is its Nth time)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition("@")
    if name != phase:
        return
    _seen[phase] = _seen.get(phase, 0) + 1
    if _seen[phase] == int(nth or 1):
        os.kill(os.getpid(), signal.Signals[os.environ.get(SIGNAL_ENV, "SIGKILL")])
