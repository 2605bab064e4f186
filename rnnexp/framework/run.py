"""One run, start to end, top-down (`run`): its folder held, its parts built (build.py), its
MLflow run opened, or reopened where its checkpoint left it (resume.py: to resume, or to train
it further), trained (loop.py), its model, loss curve and inspection saved (artifacts.py), and
its MLflow run closed with its status: FINISHED, FAILED or KILLED, with the reason.

Plain values in (Settings, Job), the final validation loss out: no Hydra here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from rnnexp import faults
from rnnexp.checkpoint import save_checkpoint
from rnnexp.errors import RnnexpError, disk_problem
from rnnexp.framework import resume, rundir, sweep
from rnnexp.framework.artifacts import finish_artifacts
from rnnexp.framework.build import build
from rnnexp.framework.loop import Loop, LoopState, can_train, train
from rnnexp.framework.provenance import run_name, run_tags
from rnnexp.framework.resume import resume_command
from rnnexp.framework.rundir import CHECKPOINT_FILE
from rnnexp.framework.settings import Settings
from rnnexp.framework.signals import Interrupted, check_dropped, deferred_interrupts
from rnnexp.framework.study import JobTrial
from rnnexp.framework.summary import run_summary, shown
from rnnexp.framework.threads import Chooser
from rnnexp.framework.tracking import MlflowRun, NullRun, Store

log = logging.getLogger("rnnexp")
DIGEST = 16  # hex digits of the text's sha256 that name its dataset (all 64: rnnexp.corpus_sha256)


@dataclass
class Job:
    """What the entrypoint knows about this run, as plain values."""

    output_dir: Path  # this run's folder: model, loss curve, log, checkpoint
    launch_dir: Path  # where the command was started (the summary shows paths from there)
    experiment: str | None = None  # the preset it was started from (experiment=NAME)
    overrides: list[str] = field(default_factory=list)
    config_yaml: str = ""  # the resolved config, logged as an artifact
    params: dict[str, object] = field(default_factory=dict)  # the config, logged as params
    sweep_dir: Path | None = None  # set for the jobs of a multirun
    threads: int | None = None  # BLAS threads when settings.threads is null (parallel jobs)
    resume: bool = False  # continue the run in output_dir from its checkpoint
    store: Store | None = None  # the tracking store (settings' tracking.uri), made once
    further: dict[str, object] = field(default_factory=dict)  # resume: steps, max_seconds
    num: int | None = None  # a sweep's job: its number (hydra.job.num), its trial's in a study


def run(s: Settings, job: Job) -> float:
    """Train one experiment, tracked; return its final validation loss (nats/char)."""
    from threadpoolctl import threadpool_limits

    # the process's BLAS threads as they were, after the run (its Chooser changes them)
    with threadpool_limits(limits=s.threads or job.threads or 1, user_api="blas"):
        rundir.hold(job.output_dir)  # no other process writes here while this run lives
        rundir.remove_stale_temporaries(job.output_dir)
        r = Run(s, job)
        # SIGINT/SIGTERM wait for the end of a step (or of the final artifacts), so a
        # checkpoint and the run's status always say where it stopped
        with deferred_interrupts() as r.interrupt:
            try:
                r.open()
            except KeyboardInterrupt:  # its MLflow run may be open: it never gets going
                r._close("KILLED", "stopped before its first step: start it again")
                raise
            val_loss = r.finish(r.train())
        if r.interrupt["signum"] is not None:  # arrived after the last step: it is complete
            raise Interrupted(r.interrupt["signum"], r.b.trainer.step)
        return val_loss


class Run:
    """A run's parts and where it is: its settings, parts, MLflow run, loop state, folder."""

    def __init__(self, s: Settings, job: Job):
        self.s, self.job, self.folder = s, job, job.output_dir
        self.path = self.folder / CHECKPOINT_FILE
        self.had_config = (self.folder / ".hydra").is_dir()  # gone mid-run: the folder was deleted
        self.before: dict = {}  # a resumed run's steps at each BLAS count (open() reads them)
        if not job.resume and self.path.exists():
            raise RnnexpError(f"{self.folder} holds another run's {CHECKPOINT_FILE}: choose "
                              f"another folder, or continue that run with "
                              f"resume={self.folder}")  # fmt: skip
        self.b = build(s)
        # threads=N, or a parallel sweep's share of the cores; else chosen as it trains
        self.threads = Chooser.for_run(s.threads or job.threads, self.b.model, self.b.trainer)
        self.name = run_name(s, self.b.corpus.name, job.experiment)
        self.state = LoopState()
        self.tracked: MlflowRun | NullRun = NullRun()
        self.trial = None  # a sweep job's trial in the sweep's study (study.py), if it has one
        self.interrupt: dict = {"signum": None, "armed": False}

    def open(self) -> None:
        """Its MLflow run: a new one, described (params, config, datasets, baseline), or the
        one its checkpoint names, reopened where it left off. From here on the folder stays
        and a signal waits for the end of a step."""
        s, b = self.s, self.b
        if self.job.resume:
            loop, self.tracked, was = resume.restore(b, self.path, self.job.store,
                                                     s.tracking.enabled)  # fmt: skip
            self.state = LoopState(**loop)
            grown = resume.train_further(s, self.state.limits, self.job.further)
            if was == "FINISHED" and not can_train(s, b, self.state):
                why = self.state.stopped_by == "max_seconds" and "train.max_seconds reached"
                raise RnnexpError(f"{self.folder} finished at step {b.trainer.step} "
                                  f"({why or 'all steps done'}): nothing to resume; to train it "
                                  f"further, raise train.steps (or train.max_seconds)")  # fmt: skip
            self.tracked.reopen(self.folder)
            if grown:  # its params stay those it started with; the tag says what grew
                self.tracked.set_tags({"rnnexp.trained_further": grown})
        elif s.tracking.enabled:
            self.tracked = self._start_tracking()
        self.state.limits = resume.limits(s)
        if self.job.sweep_dir is not None:  # a search's, or a pruned sweep's: its trial
            self.trial = JobTrial.of(self.job.store, s, self.job.sweep_dir, self.job.num)
        self.before = dict(self.state.blas_threads)  # a resumed run's steps at each count
        check_dropped()  # a stop asked for while it opened goes now, as its folder does
        self.interrupt["armed"] = True  # a signal now waits for the end of a step
        rundir.started(self.folder)  # and from here on its folder stays, whatever follows
        faults.point("opened")

    def _start_tracking(self) -> MlflowRun:
        """A new MLflow run: a sweep's job under the parent its launcher opened, named by
        what varies across the sweep (also the rnnexp.varied tag); a single run on its own."""
        s, c, store = self.s, self.b.corpus, self.job.store
        name, varied, parent = self.name, [], None
        if self.job.sweep_dir is not None:
            experiment_id, parent, swept = sweep.job_ids(store, s.tracking.experiment,
                                                         self.job.sweep_dir)  # fmt: skip
            varied = [o for o in self.job.overrides if o.split("=")[0].lstrip("+~") in swept]
            # what varies first: the UI's name column shows a name's start
            name = f"{sweep.varied_label(varied)} · {name}" if varied else name
            # an attempt killed before its first step (the sweep is resumed): replaced
            store.delete_runs_of(experiment_id, parent, str(self.folder))
        else:
            experiment_id = store.open_experiment(s.tracking.experiment)
        tags = (
            run_tags(self.job.overrides)
            | {
                "rnnexp.corpus": c.name,
                "rnnexp.corpus_sha256": c.sha256,  # of the text trained on, not of the file
                "rnnexp.corpus_source": c.source,
                "rnnexp.vocab_size": str(len(self.b.vocab)),  # the V the model was built with
                "rnnexp.output_dir": str(self.folder),
                "rnnexp.varied": json.dumps(varied),
            }
            | ({"rnnexp.corpus_part": c.part} if c.part else {})
        )  # e.g. without the licence
        tracked = MlflowRun.start(store, experiment_id, name, tags, parent)
        if store.is_server:  # the UI's model-training pages
            log.info("in the MLflow UI: %s/#/experiments/%s/runs/%s?workflowType="
                     "machine_learning", store.uri, experiment_id, tracked.run_id)  # fmt: skip
        return tracked

    def _describe(self) -> None:
        """What the new run is: its config, the corpus it reads, the baseline it must beat."""
        import hashlib

        b, c, tracked = self.b, self.b.corpus, self.tracked
        # the config as composed (model.vocab_size 0), and the width model.params gave it
        tracked.log_params(self.job.params | {"model.hidden_size": b.model.config.hidden_size})
        if self.job.config_yaml:
            tracked.log_text(self.job.config_yaml, "config.yaml")
        if c.entropy_floor is not None:
            tracked.log_metrics({"corpus/entropy_floor": c.entropy_floor}, step=0)
        # what character frequencies alone score on the validation split: the baseline
        tracked.log_metrics({"corpus/unigram": b.unigram}, step=0)
        if b.ngram:  # and what the last few characters tell: the best n-gram, its order a tag
            tracked.log_metrics({"corpus/ngram": b.ngram[1]}, step=0)
            tracked.set_tags({"rnnexp.ngram_order": str(b.ngram[0])})
        # what it trained on, in the UI's dataset column, by the text's own digest; and what
        # every val/ metric is measured on: the last corpus.val_fraction of the text
        tracked.log_dataset(c.name, c.source, c.sha256[:DIGEST], context="training",
                            profile={"chars": len(c.text), "vocabulary": len(b.vocab)})  # fmt: skip
        val = b.vocab.decode(b.val_ids)
        digest = hashlib.sha256(val.encode()).hexdigest()[:DIGEST]
        tracked.log_dataset(f"{c.name}-validation", c.source, digest, context="evaluation",
                            profile={"chars": len(val), "of": c.name})  # fmt: skip

    def checkpoint(self) -> None:
        """Everything resume= needs, written whole (a kill mid-write leaves the last one)."""
        self.check_folder()
        self.state.blas_threads = self.threads.steps(self.before)
        meta = {
            "step": self.b.trainer.step,
            "run_id": self.tracked.run_id,
            "corpus_sha256": self.b.corpus.sha256,
            "rng": self.b.rng.bit_generator.state,  # the samples' generator, mid-stream
            "loop": self.state.to_json(),
        }
        save_checkpoint(self.path, self.b.trainer.state_dict(), meta)
        faults.point("checkpointed")

    def train(self) -> tuple[str, str | None]:
        """Train, save and log what it leaves; (status, error) to close the MLflow run with."""
        s, b, job, state = self.s, self.b, self.job, self.state
        try:
            if not job.resume:
                self._describe()
            if s.tracking.system_metrics:
                self.tracked.monitor_system(resume=job.resume)
            log.info("%s: %s (%d chars, V=%d), %s, run %s, %s%s", self.name, b.corpus.name,
                     len(b.corpus.text), len(b.vocab), self.folder,
                     self.tracked.run_id or "untracked", self.threads.describe(),
                     f", resumed at step {b.trainer.step}" if job.resume else "")  # fmt: skip
            if not job.resume:  # from its first moment, a kill leaves a run to resume
                self.checkpoint()
            # else: killed after its last checkpoint, or after its sweep's pruner stopped it
            if can_train(s, b, state) and (job.num is None or state.stopped_by != "pruned"):
                train(Loop(s, b, state, self.folder, self.tracked, self.threads, self.interrupt,
                           self.checkpoint, self.check_folder, self.trial))  # fmt: skip
            blas = self.threads.record(self.before)  # over the run's life, resumes included
            stopped = state.stopped_by or "steps"
            pruned = {"rnnexp.pruned": str(b.trainer.step)} if stopped == "pruned" else {}
            self.tracked.set_tags({"rnnexp.stopped_by": stopped, "rnnexp.blas_threads": blas}
                                  | pruned)  # fmt: skip
            # a sweep registers its best child's model when it ends, not every job's
            register = s.tracking.register if job.sweep_dir is None else None
            self.check_folder()
            with self.threads.one():  # the look inside, as evaluation: the same on any count
                finish_artifacts(s, b, self.tracked, self.folder, self.state, register)
            faults.point("artifacts")
            return "FINISHED", None
        except Interrupted as e:
            error = f"stopped by {e}; continue with: {resume_command(self.folder, job.sweep_dir)}"
            log.info(error)
            self._close("KILLED", error)
            raise
        except KeyboardInterrupt:
            self._close("KILLED", "interrupted (Ctrl-C twice: no checkpoint of the last step)")
            raise
        except OSError as e:  # disk full, read-only folder: one line, and the run is FAILED
            gone = self._folder_gone()
            error = (f"its folder {self.folder} was deleted while it trained" if gone else
                     f"cannot write the run's files: {disk_problem(e)}")  # fmt: skip
            self._close("FAILED", error)
            raise RnnexpError(f"{error}; {self._after(e, gone)}") from None
        except Exception as e:
            self._close("FAILED", f"{type(e).__name__}: {e}")
            raise

    def check_folder(self) -> None:
        """The run's folder is still there: one deleted under a run is not built again in part
        (a checkpoint and a model without the config that resumes them)."""
        if self._folder_gone():
            import errno

            raise FileNotFoundError(errno.ENOENT, "the run's folder was deleted", str(self.folder))

    def _folder_gone(self) -> bool:
        """Whether the run's folder, or the config it was started with, was deleted."""
        return not self.folder.is_dir() or (self.had_config and not (self.folder / ".hydra")
                                            .is_dir())  # fmt: skip

    def _after(self, e: OSError, gone: bool) -> str:
        """What can be done after the run's files could not be written, as far as it is true."""
        import errno

        if gone:
            return "the run stopped: start it again"
        if not self.path.is_file():
            return "it has no checkpoint to resume from: start it again"
        fix = {errno.ENOSPC: "free space", errno.EDQUOT: "free space in your quota",
               errno.EROFS: "make its folder writable", errno.EACCES: "make its folder writable",
               }.get(e.errno, "mend that")  # fmt: skip
        return f"its last checkpoint is whole: {fix}, then {resume_command(self.folder, None)}"

    def _close(self, status: str, error: str | None) -> None:
        try:
            self.tracked.finish(status, error)
        except RnnexpError:  # the store failed too (a full disk): the error in flight counts
            pass

    def finish(self, outcome: tuple[str, str | None]) -> float:
        """Close the MLflow run FINISHED; a single run ends with its summary (a sweep's job
        is one row of the sweep's own)."""
        self.tracked.finish(*outcome)
        t, state, b = self.s.train, self.state, self.b
        if self.trial is not None:  # after the run is closed: the study's record follows it
            self.trial.tell(state.val_loss, pruned=state.stopped_by == "pruned")
        if self.job.sweep_dir is None:
            done = b.trainer.step
            rate = done * t.batch_size * t.seq_length / max(state.train_time, 1e-9)
            log.info("\n%s", run_summary(
                self.name, (done, t.steps), state.stopped_by, rate,
                (state.val_loss, state.best_val_loss, state.best_step, b.unigram, b.ngram),
                shown(self.folder, self.job.launch_dir),
                self.tracked.ui_link(self.job.launch_dir), state.sample,
            ))  # fmt: skip
        return state.val_loss
