"""Why early validation losses of a B=1 run lie far above the training loss (and above ln V):
the loss of the chunk each step trains on, from the state the trainer carried into it and
from a zero state (as evaluation and sampling read), beside the validation loss, at B=1 and
at a larger batch, every --every steps:

    .venv/bin/python benchmarks/early_validation.py [--steps 1000] [--every 100] [overrides]

The overrides replace the default set: min-char-rnn's loop (rnn, Adagrad, T25, float64) at H128.
"""

from __future__ import annotations

import argparse
import math

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from threadpoolctl import threadpool_limits

from rnnexp.evaluate import evaluate
from rnnexp.framework.build import build
from rnnexp.framework.cli import register_configs
from rnnexp.resources import CONF_DIR


def probe(overrides: list[str], steps: int, every: int) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        s = OmegaConf.to_object(compose("config", overrides=overrides))
    b = build(s)
    tr, m, T = b.trainer, b.model, s.train.seq_length
    print(f"\n{' '.join(overrides)}  (ln V = {math.log(len(b.vocab)):.2f})")
    print(f"{'step':>6} {'train (carried h)':>18} {'same chunk, zero h':>19} {'val':>7}")
    for step in range(1, steps + 1):
        zero = math.nan
        if step % every == 0:  # the chunk this step trains on, read by the same weights
            st = tr.streams  # from a zero state (r.loss reads it from the carried state)
            if st.pos + T + 1 < st.data.shape[1]:
                chunk = st.data[:, st.pos : st.pos + T + 1]
                zero = m.loss(chunk[:, :-1], chunk[:, 1:], m.zero_state(len(chunk)))[0] / T
        r = tr.train_step()
        if step % every == 0:
            val = evaluate(m, b.val_ids, 16).loss
            print(f"{step:>6} {r.loss_per_char:>18.3f} {zero:>19.3f} {val:>7.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--every", type=int, default=100)
    # min-char-rnn's loop at H128 (the batch size is the script's to set)
    p.add_argument("overrides", nargs="*", default=[
        "model=rnn", "model.hidden_size=128", "model.dtype=float64", "optimizer=adagrad",
        "schedule=constant", "train.seq_length=25"])  # fmt: skip
    a = p.parse_args()
    register_configs()
    with threadpool_limits(1):
        for batch in (1, 32):
            probe([*a.overrides, f"train.batch_size={batch}"], a.steps, a.every)


if __name__ == "__main__":
    main()
