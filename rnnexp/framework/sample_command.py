"""`rnnexp-sample`: generate text from a finished run, given its output folder, its MLflow run
id or a models:/ URI (rnnexp/framework/run_source.py).

rnnexp-sample outputs/runs/2026-11-22_18-06-17 --length 500 --temperature 0.8
rnnexp-sample 4e6f283d2f954bce99bd85951865c0fe --prime "ROMEO:" --seed 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from rnnexp.checkpoint import load_model
from rnnexp.errors import RnnexpError
from rnnexp.framework.run_source import RunSource, add_source_arguments, seed
from rnnexp.framework.rundir import check_cwd
from rnnexp.framework.summary import print_out
from rnnexp.sample import sample


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnexp-sample", description="Generate text from a "
                                "finished rnnexp run.")  # fmt: skip
    add_source_arguments(p)
    p.add_argument("--length", type=int, default=500, help="characters to generate (default 500)")
    p.add_argument(
        "--temperature", type=float, default=1.0,
        help="1.0 samples the model's distribution, lower is more conservative, 0 is greedy",
    )  # fmt: skip
    prime = p.add_mutually_exclusive_group()
    prime.add_argument("--prime", default="", help="text to start from (default: the "
                       "training text's first character)")  # fmt: skip
    prime.add_argument("--prime-file", type=Path, help="read the prime text from this file")
    p.add_argument("--seed", type=seed, default=0, help="seed of the sampling generator (default "
                   "0)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        check_cwd()
        prime = args.prime
        if args.prime_file is not None:
            from rnnexp.corpora import read_text

            prime = read_text(args.prime_file)
        with tempfile.TemporaryDirectory() as scratch:
            source = RunSource(args.source, args.tracking_uri, Path(scratch))
            model, vocab, start = load_model(source.model_dir(args.best))
        if source.note:
            print(f"rnnexp-sample: {source.note}", file=sys.stderr)
        rng = np.random.default_rng(args.seed)
        text = sample(model, vocab, rng, args.length, prime or start, args.temperature)
    except RnnexpError as e:
        print(f"rnnexp-sample: error: {e}", file=sys.stderr)
        return 2
    # a terminal that cannot show a character gets '?' for it, not a traceback
    if hasattr(sys.stdout, "reconfigure"):  # a text file; not a StringIO (called in-process)
        sys.stdout.reconfigure(errors="replace")
    return print_out(text, "rnnexp-sample", "the text")


if __name__ == "__main__":
    sys.exit(main())
