"""Ctrl-C, SIGTERM and SIGHUP (a closed terminal or ssh session): before a run starts they
stop the command at once (it leaves no folder behind); once its MLflow run is open they wait
for the end of the current step, so a checkpoint and the run's status say where it stopped (a
second Ctrl-C stops at once).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# what stops a command as SIGTERM does: the terminal or ssh session that ran it closed (SIGHUP)
STOPS = (signal.SIGTERM, signal.SIGHUP)


def _hung_up(signum: int) -> None:
    """After SIGHUP the terminal is gone and writing to it fails (EIO): the command's output
    goes to /dev/null from here on, as under nohup; the run's log file still has it all."""
    if signum == signal.SIGHUP:
        import os

        null = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            os.dup2(null, fd)
        os.close(null)


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal after a finished step and a written checkpoint; or,
    `step` None, the command stopped by SIGTERM before its run started."""

    def __init__(self, signum: int, step: int | None = None):
        at = "" if step is None else f" at step {step}"
        super().__init__(f"{signal.Signals(signum).name}{at}")
        self.signum = signum
        self.step = step

    def __reduce__(self) -> tuple:  # a joblib worker's stop reaches its sweep as itself
        return Interrupted, (self.signum, self.step)


# a stop Python dropped: a signal's handler runs wherever the main thread is, and when that is
# a finalizer (a GC callback of SQLAlchemy's, say) its exception is printed as "Exception
# ignored" and the command goes on; kept here, the next check_dropped() raises it
_dropped: list[KeyboardInterrupt] = []


def _keep_dropped(unraisable, python_hook=sys.unraisablehook) -> None:
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _dropped.append(unraisable.exc_value)
    else:
        python_hook(unraisable)


def check_dropped() -> None:
    """Raise the interrupt a finalizer swallowed, if one did."""
    if _dropped:
        e = _dropped[-1]
        _dropped.clear()
        raise e


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP raise Interrupted (as Ctrl-C raises KeyboardInterrupt), so a
    command stopped before its run starts still says so and leaves no folder; the run defers both; a
    stop a finalizer swallowed waits for check_dropped(). After, the handler before it is
    back: a SIGTERM once the command is over, while Python shuts down, ends the process
    without a traceback."""

    def handler(signum, frame):
        _hung_up(signum)
        raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, handler) for s in STOPS}
    hook, sys.unraisablehook = sys.unraisablehook, _keep_dropped
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)
        sys.unraisablehook = hook
        _dropped.clear()


@contextmanager
def deferred_interrupts() -> Iterator[dict]:
    """Within: SIGINT and SIGTERM stop the command at once (Interrupted) until the run is
    started (flag["armed"] set: its MLflow run open, its folder kept), then only set
    flag["signum"]: the loop stops between steps. A second Ctrl-C raises at once. Signal
    handlers exist only in the main thread."""
    flag: dict = {"signum": None, "armed": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        _hung_up(signum)
        if not flag["armed"]:  # nothing to save yet: the command stops, its folder goes
            raise Interrupted(signum)
        if flag["signum"] == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        flag["signum"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, *STOPS)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)
