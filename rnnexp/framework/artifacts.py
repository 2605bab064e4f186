"""What a run leaves when it ends, in its folder and as artifacts of its tracking run: the
final model (beside the best one, saved when it was evaluated), the loss curve, and a look
inside the network (inspect.html, gate_saturation.png for gated cells: rnnexp/inspect/page.py).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from rnnexp import faults
from rnnexp.checkpoint import BEST_MODEL_DIR, MODEL_DIR, save_model
from rnnexp.config import ModelConfig
from rnnexp.framework.build import Built
from rnnexp.framework.loop import LoopState
from rnnexp.framework.settings import Settings
from rnnexp.inspect.page import GATES, PAGE

log = logging.getLogger("rnnexp")


def describe(m: ModelConfig) -> str:
    """`rnn: 1 tanh layer H100`, `lstm: 2 lstm layers H128, context units (no BPTT)`."""
    kind = m.cell_options().get("activation", m.cell)
    depth = f"{m.layers} {kind} layer{'s' if m.layers > 1 else ''}"
    context = "" if m.cell_options().get("bptt", True) else ", context units (no BPTT)"
    return f"{m.name}: {depth} H{m.hidden_size}{context}"


def finish_artifacts(s: Settings, b: Built, tracked, output_dir: Path, state: LoopState,
                     register: str | None = None) -> None:  # fmt: skip
    """The final model, the loss curve and the inspection, in the output folder and as run
    artifacts; the model registered under `register` if given."""
    from rnnexp.framework.plots import loss_curve

    save_model(output_dir / MODEL_DIR, b.model, b.vocab, b.corpus.text[0])
    # the final model as an MLflow model, its one copy in the store: load it, register it,
    # serve it with MLflow's tools (rnnexp-sample RUN_ID reads its parameters from there)
    model_id = tracked.log_model(output_dir / MODEL_DIR, b.trainer.step)
    faults.point("model-logged")
    # and the model of the best evaluation, where it is not the final one (train_loop)
    best = output_dir / BEST_MODEL_DIR
    if (best / "model.npz").exists():
        for file in ("model.npz", "model.json"):
            tracked.log_artifact(best / file, BEST_MODEL_DIR)
    tracked.set_tags({"rnnexp.best_model": BEST_MODEL_DIR if best.exists() else MODEL_DIR})
    if register and model_id:
        from rnnexp.framework.tracking.models import register_model

        version = register_model(tracked.store, register, model_id, tracked.run_id)
        log.info("registered as models:/%s/%s", register, version)
    o = s.optimizer
    title = f"{describe(b.model.config)} on {b.corpus.name}, {o.name} lr {o.lr:g}"
    png = loss_curve(
        output_dir / "loss_curve.png",
        state.train,
        state.val,
        b.corpus.entropy_floor,
        title,
        b.unigram,
        b.ngram,
    )
    tracked.log_artifact(png)
    if s.inspect.enabled:
        inspect_run(s, b, tracked, output_dir, title)


def inspect_run(s: Settings, b: Built, tracked, output_dir: Path, title: str) -> None:
    """inspect.html (and gate_saturation.png) over the start of the validation split; the seconds it
    took are the metric perf/inspect_s."""
    from rnnexp.inspect.page import write

    start = time.perf_counter()
    ids = b.val_ids[: s.inspect.length]
    about = (
        f"The first {len(ids):,} characters of {b.corpus.name}'s validation split, read "
        f"from a zero state by the model of step {b.trainer.step}"
    )
    # the best n-gram's p of each character, for the page's error breakdown
    reference = (f"{b.ngram[0]}-gram", b.ngram_p) if b.ngram else None
    files = write(output_dir / PAGE, b.model, b.vocab, ids, title, about, s.inspect.units,
                  gates=output_dir / GATES, reference=reference)  # fmt: skip
    took = time.perf_counter() - start
    for file in files:
        tracked.log_artifact(file)
    tracked.log_metrics({"perf/inspect_s": took}, b.trainer.step)
    log.info("inspected %d characters in %.2f s: %s", len(ids), took, files[0])
