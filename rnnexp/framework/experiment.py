"""One experiment's run, start to end: its folder held, its parts built (rnnexp/framework/build.py),
its tracking run opened (or reopened to resume), trained with periodic metrics, evaluation,
samples and checkpoints, its final artifacts made (rnnexp/framework/artifacts.py), the run
closed with its status.

Plain values in (Settings, Launch), the final validation loss out: no Hydra here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from rnnexp import faults
from rnnexp.cells import CELLS
from rnnexp.checkpoint import save_checkpoint
from rnnexp.config import ModelConfig
from rnnexp.corpora import Corpus
from rnnexp.errors import RnnexpError
from rnnexp.framework import rundir
from rnnexp.framework.artifacts import finish_artifacts
from rnnexp.framework.build import Built, build
from rnnexp.framework.provenance import run_tags
from rnnexp.framework.resume import can_train, limits, restore, train_further
from rnnexp.framework.rundir import CHECKPOINT_FILE, SWEEP_FILE
from rnnexp.framework.settings import Settings, override_key
from rnnexp.framework.summary import run_summary, shown
from rnnexp.framework.tracking import (
    MlflowRun,
    NullRun,
    find_sweep_parent,
    open_experiment,
)
from rnnexp.framework.tracking.abandoned import delete_runs_of
from rnnexp.framework.training import Interrupted, LoopState, deferred_interrupts, train_loop

log = logging.getLogger("rnnexp")
# set while `rnnexp -m resume=FOLDER` runs, to the sweep's folder: its parent run is reopened,
# and each job finished before is kept, one interrupted resumed, one never started run
RESUMING = "RNNEXP_RESUMING_SWEEP"
DIGEST = 16  # hex digits of the text's sha256 that name its dataset (all 64: rnnexp.corpus_sha256)


@dataclass
class Launch:
    """What the entrypoint knows about this launch, as plain values."""

    output_dir: Path  # this run's folder: model, loss curve, log
    launch_dir: Path  # where the command was started: the default store lives under it
    run_name: str = ""  # "": named by what it is (run_name), when its corpus is read
    experiment: str | None = None  # the preset it was started from (experiment=NAME)
    uri: str = ""  # the tracking store of the command, resolved once by its entrypoint; a
    # sweep's job uses the one its launcher opened
    overrides: list[str] = field(default_factory=list)
    config_yaml: str = ""  # the resolved config, logged as an artifact
    params: dict[str, object] = field(default_factory=dict)  # the config as dotted keys
    sweep_dir: Path | None = None  # set for the jobs of a multirun
    track: bool = True  # tracking.enabled of the run: False: NullRun, nothing recorded
    threads: int | None = None  # BLAS threads when settings.threads is null (parallel jobs)
    resume: bool = False  # continue the run in output_dir from its checkpoint
    further: dict[str, object] = field(default_factory=dict)  # resume: steps, max_seconds


def run(s: Settings, launch: Launch) -> float:
    """Train one experiment, tracked; return its final validation loss (nats/char)."""
    from threadpoolctl import threadpool_limits

    threads = s.threads or launch.threads or default_threads(s)
    with threadpool_limits(limits=threads, user_api="blas") if threads else nullcontext():
        return _run(s, launch)


# below this many multiply-adds in a step's recurrent product (B x H x gates*H), a second BLAS
# thread gains at most ~20 % on a quiet machine and loses when a neighbour takes a core;
# above, 2 threads train 1.5-1.7x faster (measured: README, Performance)
ONE_THREAD_BELOW = 1_000_000


def recurrent_work(model: ModelConfig, batch_size: int) -> int:
    """Multiply-adds of one step's recurrent product, (B, H) x (H, gates * H)."""
    return batch_size * model.hidden_size * CELLS[model.cell].gates * model.hidden_size


def default_threads(s: Settings) -> int | None:
    """BLAS threads of a single run when `threads` is null: 1 for small models, else None
    (BLAS's own: every core)."""
    return 1 if recurrent_work(s.model, s.train.batch_size) < ONE_THREAD_BELOW else None


def _run(s: Settings, launch: Launch) -> float:
    rundir.hold(launch.output_dir)  # no other process writes here while this run lives
    rundir.remove_stale_temporaries(launch.output_dir)
    path = launch.output_dir / CHECKPOINT_FILE
    if not launch.resume and path.exists():
        raise RnnexpError(
            f"{launch.output_dir} holds another run's {CHECKPOINT_FILE}: choose another "
            f"folder, or continue that run with resume={launch.output_dir}"
        )
    b = build(s)
    launch.run_name = launch.run_name or run_name(s, b.corpus.name, launch.experiment)
    # SIGINT/SIGTERM wait for the end of a step (or of the final artifacts), so a checkpoint
    # and the run's status always say where it stopped
    with deferred_interrupts() as interrupt:
        val_loss = _track(s, b, launch, path, interrupt)
    if interrupt["signum"] is not None:  # arrived after the last step: the run is complete
        raise Interrupted(interrupt["signum"], b.trainer.step)
    return val_loss


def _track(s: Settings, b: Built, launch: Launch, path: Path, interrupt: dict) -> float:
    """The tracked part of a run: open (or reopen) its tracking run, train, save, close."""
    if launch.resume:
        state, tracked, was = restore(b, path, launch)
        grown = train_further(s, state, launch.further)
        if was == "FINISHED" and not can_train(s, b, state):
            timed_out = state.stopped_by == "max_seconds"
            why = "train.max_seconds reached" if timed_out else "all steps done"
            raise RnnexpError(
                f"{launch.output_dir} finished at step {b.trainer.step} ({why}): nothing to "
                f"resume; to train it further, raise train.steps (or train.max_seconds)"
            )
        tracked.reopen()
        if grown:  # its params stay those it started with; the tag says what grew
            tracked.set_tags({"rnnexp.trained_further": grown})
    else:
        state = LoopState()
        tracked = open_run(s, launch, b.corpus, len(b.vocab)) if launch.track else NullRun()
    state.limits = limits(s)
    rundir.started(launch.output_dir)  # from here on its folder stays, whatever follows
    interrupt["armed"] = True  # and a signal waits for the end of a step
    faults.point("opened")
    status, error = "FAILED", None
    try:
        if not launch.resume:
            tracked.log_params(launch.params)  # the config as composed (model.vocab_size 0)
            if launch.config_yaml:
                tracked.log_text(launch.config_yaml, "config.yaml")
            if b.corpus.entropy_floor is not None:
                tracked.log_metrics({"corpus/entropy_floor": b.corpus.entropy_floor}, step=0)
            # what character frequencies alone score on the validation split: the baseline
            tracked.log_metrics({"corpus/unigram": b.unigram}, step=0)
            # what it trained on, in the UI's dataset column: the text's own digest
            c = b.corpus
            tracked.log_dataset(
                c.name,
                c.source,
                c.sha256[:DIGEST],
                context="training",
                profile={"chars": len(c.text), "vocabulary": len(b.vocab)},
            )
            # what every val/ metric is measured on: the last corpus.val_fraction of the text
            val = b.vocab.decode(b.val_ids)
            digest = hashlib.sha256(val.encode()).hexdigest()[:DIGEST]
            tracked.log_dataset(f"{c.name}-validation", c.source, digest, context="evaluation",
                                profile={"chars": len(val), "of": c.name})  # fmt: skip
        if s.tracking.system_metrics:
            tracked.monitor_system(resume=launch.resume)
        from threadpoolctl import threadpool_info

        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        log.info(
            "%s: %s (%d chars, V=%d), %s, run %s, %s BLAS threads%s", launch.run_name,
            b.corpus.name, len(b.corpus.text), len(b.vocab), launch.output_dir,
            tracked.run_id or "untracked",
            max(blas, default="no"), f", resumed at step {b.trainer.step}" if launch.resume else "",
        )  # fmt: skip

        def checkpoint(loop_state: LoopState) -> None:
            meta = {
                "step": b.trainer.step,
                "run_id": tracked.run_id,
                "uri": getattr(tracked, "uri", None),
                "corpus_sha256": b.corpus.sha256,
                "rng": b.rng.bit_generator.state,  # the samples' generator, mid-stream
                "loop": loop_state.to_json(),
            }
            save_checkpoint(path, b.trainer.state_dict(), meta)
            faults.point("checkpointed")

        if not launch.resume:  # from its first moment, a kill leaves a run to resume
            checkpoint(state)
        if can_train(s, b, state):
            state.val_loss = train_loop(s, b, tracked, state, checkpoint, interrupt,
                                        launch.output_dir)  # fmt: skip
        # else: killed after its last checkpoint, before its model was saved: finish that
        tracked.set_tags({"rnnexp.stopped_by": state.stopped_by or "steps"})
        # a sweep registers its best child's model when it ends, not every job's
        register = s.tracking.register if launch.sweep_dir is None else None
        finish_artifacts(s, b, tracked, launch.output_dir, state, register)
        faults.point("artifacts")
        status = "FINISHED"
        if launch.sweep_dir is None:  # a sweep's job is one row of the sweep's own summary
            log.info("\n%s", _summary(s, b, launch, tracked, state))
        return state.val_loss
    except Interrupted as e:
        status = "KILLED"
        error = f"stopped by {e}; continue with: rnnexp resume={launch.output_dir}"
        log.info(error)
        raise
    except KeyboardInterrupt:
        status, error = "KILLED", "interrupted (Ctrl-C twice: no checkpoint of the last step)"
        raise
    except OSError as e:  # disk full, read-only folder: one line, and the run is FAILED
        where = f" ({e.filename})" if e.filename else ""
        error = f"cannot write the run's files: {e.strerror or e}{where}"
        raise RnnexpError(
            f"{error}; the last checkpoint is whole: free space, then rnnexp "
            f"resume={launch.output_dir}"
        ) from None
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        try:
            tracked.finish(status, error)
        except RnnexpError:
            if status == "FINISHED":
                raise
            # the store failed too (a full disk): the error in flight is the one to report


def _summary(s: Settings, b: Built, launch: Launch, tracked, state: LoopState) -> str:
    done = b.trainer.step
    rate = done * s.train.batch_size * s.train.seq_length / max(state.train_time, 1e-9)
    return run_summary(
        launch.run_name, (done, s.train.steps), state.stopped_by, rate,
        (state.val_loss, state.best_val_loss, state.best_step, b.unigram),
        shown(launch.output_dir, launch.launch_dir), tracked.ui_link(launch.launch_dir),
        state.sample,
    )  # fmt: skip


def run_name(s: Settings, corpus: str, experiment: str | None) -> str:
    """`gru-shakespeare-adam`: what the run is, model, corpus and optimizer; a preset's runs
    lead with its name (`min_char_rnn rnn-shakespeare-adagrad`)."""
    name = f"{s.model.name}-{corpus}-{s.optimizer.name}"
    return f"{experiment} {name}" if experiment else name


def open_run(s: Settings, launch: Launch, corpus: Corpus, vocab_size: int) -> MlflowRun:
    """A sweep's job logs under the ids its launcher stored; a single run opens its own."""
    name, varied = launch.run_name, []
    if launch.sweep_dir is not None:
        ids = sweep_ids(launch.uri, s.tracking.experiment, launch.sweep_dir)
        uri, experiment_id, parent = ids["uri"], ids["experiment_id"], ids["parent_run_id"]
        # named by what it is and what varies across the sweep (every override is in the
        # rnnexp.overrides tag); what varies, as a list, in the rnnexp.varied tag
        swept = set(ids["swept"])
        varied = [o for o in launch.overrides if override_key(o) in swept]
        name = " ".join([name, *varied])
        if os.environ.get(RESUMING):  # an attempt killed before its first step: replaced
            delete_runs_of(uri, experiment_id, parent, str(launch.output_dir))
    else:
        uri = launch.uri
        experiment_id, parent = open_experiment(uri, s.tracking.experiment), None
    tags = run_tags(launch.overrides) | {
        "rnnexp.corpus": corpus.name,
        "rnnexp.corpus_sha256": corpus.sha256,  # of the text trained on, not of the file
        "rnnexp.corpus_source": corpus.source,
        "rnnexp.vocab_size": str(vocab_size),  # the V the model was built with
        "rnnexp.output_dir": str(launch.output_dir),
        "rnnexp.varied": json.dumps(varied),
    }
    if corpus.part:  # e.g. the story without Project Gutenberg's licence after it
        tags["rnnexp.corpus_part"] = corpus.part
    run = MlflowRun.start(uri, experiment_id, name, tags, parent)
    if uri.startswith(("http://", "https://")):  # the UI's model-training pages, not GenAI's
        log.info("in the MLflow UI: %s/#/experiments/%s/runs/%s?workflowType=machine_learning",
                 uri, experiment_id, run.run_id)  # fmt: skip
    return run


def sweep_ids(uri: str, experiment: str, sweep_dir: Path) -> dict:
    """uri, experiment_id, parent_run_id and swept keys of a sweep's job, from the file its
    launcher wrote in the sweep folder; a job on another machine of a cluster, where that
    folder is not, asks the tracking server for the running parent tagged with the folder."""
    path = sweep_dir / SWEEP_FILE
    if path.is_file():
        return json.loads(path.read_text())
    experiment_id = open_experiment(uri, experiment)
    parent = find_sweep_parent(uri, experiment_id, str(sweep_dir))
    swept = parent.tags.get("rnnexp.swept", "")
    return {
        "uri": uri,
        "experiment_id": experiment_id,
        "parent_run_id": parent.run_id,
        "swept": swept.split(",") if swept else [],
    }
