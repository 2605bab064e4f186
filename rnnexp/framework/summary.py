"""What a finished run or sweep tells the person who started it, in a few lines: how far it
got and how good it is against the unigram and n-gram baselines, where its files are, how to
open it in the MLflow UI, a sample of its text; for a sweep, a table of its jobs and the best."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

RULE = "-" * 72


def say(line: str) -> None:
    """A line on stderr, if it can still be written (a terminal closed by SIGHUP cannot)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def print_out(text: str, prog: str, what: str) -> int:
    """`text` on standard output, and 0; a full disk or a closed pipe there: one line on
    stderr (`prog: error: cannot write WHAT ...`), and 2."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except OSError as e:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush
        say(f"{prog}: error: cannot write {what} to standard output: {e.strerror or e}")
        return 2
    return 0


def field(label: str, text: str, indent: str = "") -> str:
    """`label` then `text`, its further lines aligned under its first."""
    head = f"{indent}{label:<10} "
    return head + text.replace("\n", "\n" + " " * len(head))


def shown(path: Path, launch_dir: Path) -> str:
    """A path as the user typed it: relative to the launch folder when inside it."""
    path = Path(path)
    return str(path.relative_to(launch_dir)) if path.is_relative_to(launch_dir) else str(path)


def run_summary(
    name: str, steps: tuple[int, int], stopped_by: str, chars_per_s: float,
    val: tuple, folder: str, link: str, sample: str,
) -> str:  # fmt: skip
    """The closing lines of a run. steps: (done, planned); val: (final, best, best step,
    unigram baseline, (order, cross-entropy) of the best n-gram or None), nats/char over the
    whole validation split."""
    done, planned = steps
    final, best, best_step, unigram, ngram = val
    why = {"max_seconds": "train.max_seconds reached", "patience": "train.patience reached",
           "pruned": "pruned"}.get(stopped_by, "all steps")  # fmt: skip
    lines = [
        RULE,
        f"{name}: step {done:,} of {planned:,} ({why}), {chars_per_s:,.0f} chars/s",
        f"  val loss   {final:.4f} nats/char ({final / math.log(2):.3f} bpc) over the whole "
        f"validation split; unigram baseline {unigram:.4f}",
    ]
    if ngram:  # what the network knows beyond the last few characters, or does not yet
        k, ce = ngram
        side = "below" if final < ce else "above"
        lines.append(f"  n-gram     {ce:.4f} ({k}-gram, Kneser-Ney): the run ended "
                     f"{abs(final - ce):.4f} {side} it")  # fmt: skip
    if best_step != done:
        lines.append(f"  best       {best:.4f} at step {best_step:,} (model_best/)")
    lines.append(field("run folder", folder, "  "))
    lines.append(field("MLflow UI", link or "not tracked (tracking.enabled=false)", "  "))
    if sample:
        lines += ["  sample:", *("    " + line for line in sample.splitlines())]
    return "\n".join([*lines, RULE])


def sweep_table(rows: list[dict], swept: list[str]) -> str:
    """Its jobs, one line each: what varies, status, final and best validation loss."""
    width = max([len("job"), *(len(r["label"]) for r in rows)])
    wide = max([8, *(len(r["status"]) for r in rows)])  # "pruned at 1,350"
    head = f"  {'job':<{width}}  {'status':<{wide}}  {'val':>8}  {'best':>8}"
    lines = [f"varied: {', '.join(swept) or 'nothing'}", head]
    for r in rows:
        val = "-" if r["val"] is None else f"{r['val']:.4f}"
        best = "-" if r["best"] is None else f"{r['best']:.4f}"
        mark = "  <- best" if r.get("is_best") else ""
        lines.append(f"  {r['label']:<{width}}  {r['status']:<{wide}}  {val:>8}  {best:>8}{mark}")
    return "\n".join(lines)


def sweep_summary(table: str, best: str | None, figure: Path | None, registered: str | None,
                  link: str, launch_dir: Path, study: str = "") -> str:  # fmt: skip
    """The closing lines of a sweep (`study`: its pruned count and where its study is)."""
    lines = [RULE, table]
    lines.append(f"best job   {best}" if best else "best job   none finished with a val loss")
    if study:
        lines.append(field("study", study))
    if figure is not None:
        lines.append(f"comparison {shown(figure, launch_dir)}")
    if registered:
        lines.append(f"registered models:/{registered}")
    if link:
        lines.append(field("MLflow UI", link))
    return "\n".join([*lines, RULE])
