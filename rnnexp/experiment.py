"""One experiment from its settings: build corpus, model and optimizer; train with periodic
logging, evaluation and samples; record everything in a tracking run; save the model.

Plain values in (Settings, Launch), the final validation loss out: no Hydra here.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnexp.checkpoint import save_model
from rnnexp.corpora import Corpus, load_corpus
from rnnexp.data import Vocab, split
from rnnexp.errors import ConfigError, CorpusError
from rnnexp.evaluate import evaluate
from rnnexp.generated import GENERATORS
from rnnexp.model import CharRNN, ModelConfig
from rnnexp.optim import make_optimizer
from rnnexp.sample import sample
from rnnexp.settings import Settings
from rnnexp.tracking import MlflowRun, NullRun, open_experiment, resolve_uri
from rnnexp.train import Trainer

log = logging.getLogger("rnnexp")
SWEEP_FILE = "rnnexp_sweep.json"  # in a sweep's folder: the tracking ids its jobs log under


@dataclass
class Launch:
    """What the entrypoint knows about this launch, as plain values."""

    output_dir: Path  # this run's folder: model, loss curve, log
    launch_dir: Path  # where the command was started: the default store lives under it
    run_name: str
    overrides: list[str] = field(default_factory=list)
    config_yaml: str = ""  # the resolved config, logged as an artifact
    params: dict[str, object] = field(default_factory=dict)  # the config as dotted keys
    sweep_dir: Path | None = None  # set for the jobs of a multirun
    track: bool = True  # False: NullRun, nothing recorded
    threads: int | None = None  # BLAS threads when settings.threads is null (parallel jobs)


@dataclass
class Built:
    corpus: Corpus
    vocab: Vocab
    train_ids: np.ndarray
    val_ids: np.ndarray
    model: CharRNN
    trainer: Trainer
    rng: np.random.Generator


def validate(s: Settings) -> None:
    """The checks that need no corpus: cheap enough to run on every job of a sweep up front."""
    ModelConfig(
        1,
        s.model.hidden_size,
        s.model.layers,
        s.model.activation,
        s.model.bptt,
        s.model.init_scale,
        s.model.dtype,
    )
    make_optimizer(s.optimizer.name, s.optimizer.lr)
    t = s.train
    keys = ("steps", "seq_length", "batch_size", "eval_every", "eval_streams", "log_every")
    for key in (*keys, "sample_length"):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key} must be >= 1, got {getattr(t, key)}")
    if t.sample_every < 0:
        raise ConfigError(f"train.sample_every must be >= 0 (0: no samples), got {t.sample_every}")
    if t.clip is not None and not t.clip > 0:
        raise ConfigError(f"train.clip must be > 0 or null (no clipping), got {t.clip}")
    if not 0 < s.corpus.val_fraction < 1:
        raise ConfigError(f"corpus.val_fraction must be in (0, 1), got {s.corpus.val_fraction}")
    if not s.sample.temperature >= 0:
        raise ConfigError(f"sample.temperature must be >= 0, got {s.sample.temperature}")
    if s.threads is not None and s.threads < 1:
        raise ConfigError(f"threads must be >= 1 or null (automatic), got {s.threads}")
    if s.corpus.name in GENERATORS or s.corpus.name == "file":  # cheap to read here: do
        _load(s.corpus)


def _load(c) -> Corpus:
    return load_corpus(c.name, path=c.path, max_chars=c.max_chars, **c.options)


def build(s: Settings) -> Built:
    """Everything a run needs, checked, before anything is logged."""
    validate(s)
    c = s.corpus
    corpus = _load(c)
    vocab = Vocab.from_text(corpus.text)
    train_ids, val_ids = split(vocab.encode(corpus.text), c.val_fraction)
    if len(val_ids) < 2:
        raise CorpusError(
            f"validation split of {corpus.name} has {len(val_ids)} characters; it needs 2 or more "
            f"(raise corpus.val_fraction or use a longer text)"
        )
    rng = np.random.default_rng(s.seed)  # the run's one source of randomness
    m = s.model
    config = ModelConfig(
        len(vocab), m.hidden_size, m.layers, m.activation, m.bptt, m.init_scale, m.dtype
    )
    model = CharRNN(config, rng)
    optimizer = make_optimizer(s.optimizer.name, s.optimizer.lr)
    trainer = Trainer(
        model,
        optimizer,
        train_ids,
        seq_length=s.train.seq_length,
        batch_size=s.train.batch_size,
        clip=s.train.clip,
        diverge_factor=s.train.diverge_factor,
    )
    return Built(corpus, vocab, train_ids, val_ids, model, trainer, rng)


def run(s: Settings, launch: Launch) -> float:
    """Train one experiment, tracked; return its final validation loss (nats/char)."""
    from threadpoolctl import threadpool_limits

    threads = s.threads or launch.threads
    with threadpool_limits(limits=threads, user_api="blas") if threads else nullcontext():
        return _run(s, launch)


def _run(s: Settings, launch: Launch) -> float:
    b = build(s)
    tracked = open_run(s, launch, b.corpus) if launch.track else NullRun()
    status, error = "FAILED", None
    try:
        tracked.log_params(launch.params)
        if launch.config_yaml:
            tracked.log_text(launch.config_yaml, "config.yaml")
        if b.corpus.entropy_floor is not None:
            tracked.log_metrics({"corpus/entropy_floor": b.corpus.entropy_floor}, step=0)
        from threadpoolctl import threadpool_info

        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        log.info(
            "%s: %s (%d chars, V=%d), %s, run %s, %s BLAS threads", launch.run_name,
            b.corpus.name, len(b.corpus.text), len(b.vocab), launch.output_dir, tracked.run_id,
            max(blas, default="no"),
        )  # fmt: skip
        val_loss = train_loop(s, b, tracked, launch.output_dir)
        status = "FINISHED"
        return val_loss
    except KeyboardInterrupt:
        status, error = "KILLED", "interrupted (Ctrl-C)"
        raise
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        tracked.finish(status, error)


def open_run(s: Settings, launch: Launch, corpus: Corpus) -> MlflowRun:
    """A sweep's job logs under the ids its launcher stored; a single run opens its own."""
    if launch.sweep_dir is not None:
        ids = json.loads((launch.sweep_dir / SWEEP_FILE).read_text())
        uri, experiment_id, parent = ids["uri"], ids["experiment_id"], ids["parent_run_id"]
    else:
        uri = resolve_uri(s.tracking.uri, launch.launch_dir)
        experiment_id, parent = open_experiment(uri, s.tracking.experiment), None
    tags = run_tags(launch.overrides) | {
        "rnnexp.corpus": corpus.name,
        "rnnexp.corpus_sha256": corpus.sha256,
        "rnnexp.output_dir": str(launch.output_dir),
    }
    return MlflowRun.start(uri, experiment_id, launch.run_name, tags, parent)


def run_tags(overrides: list[str]) -> dict[str, str]:
    """Tags every run and sweep carries: the code's git commit and the command's overrides."""
    tags = {"rnnexp.overrides": " ".join(overrides)}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def train_loop(s: Settings, b: Built, tracked: MlflowRun | NullRun, output_dir: Path) -> float:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    t, trainer = s.train, b.trainer
    chars_per_step = t.batch_size * t.seq_length
    history: dict[str, list] = {"train": [], "val": []}
    window_loss, window_steps, window_time = 0.0, 0, 0.0
    val_loss = float("nan")
    # no prime: start where every training stream starts, a zero state and the first
    # character; a random first character is a start the model may never have seen
    prime = s.sample.prime or b.corpus.text[0]
    # side-by-side streams make evaluation one batched pass; each reads >= 1000 characters,
    # so the zero-state start of each costs little (a short split is read as one stream)
    eval_streams = max(1, min(t.eval_streams, len(b.val_ids) // 1000))
    bar = tqdm(total=t.steps, unit="step", disable=not sys.stderr.isatty(), dynamic_ncols=True)
    loop_start, eval_time, sample_time = time.perf_counter(), 0.0, 0.0
    with bar, logging_redirect_tqdm():
        for step in range(1, t.steps + 1):
            start = time.perf_counter()
            r = trainer.train_step()
            window_time += time.perf_counter() - start
            window_loss += r.loss_per_char
            window_steps += 1
            last = step == t.steps
            if step % t.log_every == 0 or last:
                trainer.check_finite()  # a NaN weight shows in the loss late, if ever
                loss, rate = window_loss / window_steps, window_steps * chars_per_step / window_time
                tracked.log_metrics(
                    {
                        "train/loss": loss,
                        "train/smooth_loss": r.smooth_loss,
                        "perf/chars_per_s": rate,
                    },
                    step,
                )
                history["train"].append((step, loss))
                bar.set_postfix(loss=f"{loss:.3f}", chars_s=f"{rate:,.0f}")
                window_loss, window_steps, window_time = 0.0, 0, 0.0
            if step % t.eval_every == 0 or last:
                start = time.perf_counter()
                ev = evaluate(b.model, b.val_ids, eval_streams)
                eval_time += time.perf_counter() - start
                val_loss = ev.loss
                tracked.log_metrics({"val/loss": ev.loss, "val/bpc": ev.bpc}, step)
                tracked.flush()
                history["val"].append((step, ev.loss))
                log.info(
                    "step %d/%d  train %.4f  val %.4f nats/char (%.3f bpc)",
                    step,
                    t.steps,
                    history["train"][-1][1],
                    ev.loss,
                    ev.bpc,
                )
            if t.sample_every and (step % t.sample_every == 0 or last):
                start = time.perf_counter()
                text = sample(b.model, b.vocab, b.rng, t.sample_length, prime, s.sample.temperature)
                tracked.log_text(text, f"samples/step_{step:07d}.txt")
                sample_time += time.perf_counter() - start
            bar.update()
    loop = time.perf_counter() - loop_start
    log.info(
        "trained %d steps in %.2f s (%.0f chars/s), of which evaluation %.2f s, samples %.2f s",
        t.steps, loop, t.steps * chars_per_step / loop, eval_time, sample_time,
    )  # fmt: skip
    finish_artifacts(s, b, tracked, output_dir, history)
    return val_loss


def finish_artifacts(s, b: Built, tracked, output_dir: Path, history: dict) -> None:
    """The final model and the loss curve, in the output folder and as run artifacts."""
    from rnnexp.plots import loss_curve

    model_dir = save_model(output_dir / "model", b.model, b.vocab, b.corpus.text[0])
    tracked.log_artifact(model_dir / "model.npz", "model")
    tracked.log_artifact(model_dir / "model.json", "model")
    m, o = s.model, s.optimizer
    title = f"{m.name} H{m.hidden_size} on {b.corpus.name}, {o.name} lr {o.lr}"
    png = loss_curve(
        output_dir / "loss_curve.png",
        _xy(history["train"]),
        _xy(history["val"]),
        b.corpus.entropy_floor,
        title,
    )
    tracked.log_artifact(png)


def _xy(points: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    return [p[0] for p in points], [p[1] for p in points]


def git_commit() -> str | None:
    """The commit of the rnnexp checkout running this, '-dirty' if it has local changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")
