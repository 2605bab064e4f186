"""`rnnexp-inspect`: the page a run writes at its end (inspect.html: rnnexp/inspect/page.py)
for any text, from a finished run given by its output folder or MLflow run id.

rnnexp-inspect outputs/runs/2026-11-22_18-06-17                  the run's validation text
rnnexp-inspect 4e6f283d2f954bce99bd85951865c0fe --text play.txt --units 1,5,17
rnnexp-inspect outputs/runs/2026-11-22_18-06-17 --prime "ROMEO:" --out romeo.html
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from rnnexp.checkpoint import load_model
from rnnexp.config import step_bytes
from rnnexp.errors import ConfigError, RnnexpError, check_fits, first_line
from rnnexp.framework.bounds import check_yaml
from rnnexp.framework.run_source import RunSource, add_source_arguments, seed
from rnnexp.framework.rundir import check_cwd


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnexp-inspect", description="Look inside a finished "
        "rnnexp run's network: a self-contained HTML page of the text coloured by surprisal and "
        "by the units that track features of it.")  # fmt: skip
    add_source_arguments(p)
    text = p.add_mutually_exclusive_group()
    text.add_argument("--text", type=Path, help="inspect this file's text (its first --length)")
    text.add_argument("--prime", help="inspect the model writing: this text, then --length "
                      "characters it generates from it (--seed, --temperature)")  # fmt: skip
    p.add_argument(
        "--length", type=int, default=2000,
        help="characters inspected (default 2000; the start of the run's validation split "
        "when neither --text nor --prime is given)",
    )  # fmt: skip
    p.add_argument("--units", help="draw these units (numbers, comma-separated, e.g. 1,5,17) "
                   "instead of the most interpretable ones")  # fmt: skip
    p.add_argument("--rank", type=int, default=8,
                   help="how many of the most interpretable units to draw (default 8)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("inspect.html"),
                   help="the page to write (default ./inspect.html)")  # fmt: skip
    p.add_argument("--seed", type=seed, default=0, help="--prime: the sampling seed (default 0)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="--prime: the sampling temperature (default 1.0)")  # fmt: skip
    return p


def units_list(text: str | None) -> list[int] | None:
    """`--units 1,5,17` -> [1, 5, 17]."""
    if text is None:
        return None
    try:
        units = [int(u) for u in text.split(",") if u.strip()]
    except ValueError:
        raise ConfigError(f"--units takes unit numbers separated by commas, got {text!r}") from None
    if not units:
        raise ConfigError("--units names no unit")
    return units


def validation_ids(config_yaml: Path, vocab, length: int, sha256: str | None
                   ) -> tuple[np.ndarray, str]:  # fmt: skip
    """The first `length` characters of the validation split the run was evaluated on (its
    corpus read again as its config says, and only if it is the text whose `sha256` the run
    recorded: a config from someone else could name any file), and the words saying so."""
    from omegaconf import OmegaConf

    from rnnexp.data import split
    from rnnexp.framework.build import load_corpus_of
    from rnnexp.framework.messages import config_errors
    from rnnexp.framework.settings import CorpusSettings

    try:  # its corpus node alone: runs saved before later keys existed still read
        check_yaml(config_yaml)  # a received run folder's, or a download: bounded first
        saved = OmegaConf.load(config_yaml).corpus
        c = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(CorpusSettings), saved))
    except (OSError, ValueError, *config_errors()) as e:
        raise RnnexpError(f"the run's config.yaml cannot be read ({first_line(e)}): name the text "
                          f"to inspect with --text FILE") from None  # fmt: skip
    corpus = load_corpus_of(c)
    if sha256 is None or corpus.sha256 != sha256:
        what = "records no digest of its text" if sha256 is None else (
            f"trained on another text than {corpus.source} holds now")  # fmt: skip
        raise RnnexpError(f"the run {what}: its validation split is not read; name the text to "
                          f"inspect with --text FILE")  # fmt: skip
    _, val = split(vocab.encode(corpus.text), c.val_fraction)
    ids = val[:length]
    return ids, f"The first {len(ids):,} characters of {corpus.name}'s validation split"


def text_ids(args, run: RunSource, model, vocab, start: str) -> tuple[np.ndarray, str]:
    """The character ids to inspect, as asked (a file, the model's own writing, or the run's
    validation split), and the words saying what they are. A character the model never saw
    is a one-line error (Vocab.encode)."""
    if args.text is not None:
        from rnnexp.corpora import read_text

        text = read_text(args.text)[: args.length]
        return vocab.encode(text), f"The first {len(text):,} characters of {args.text}"
    if args.prime is not None:
        from rnnexp.sample import sample

        rng = np.random.default_rng(args.seed)
        text = sample(model, vocab, rng, args.length, args.prime or start, args.temperature)
        return vocab.encode(text), (f"{args.prime!r} and the {args.length:,} characters the "
                                    f"model wrote after it (seed {args.seed}, temperature "
                                    f"{args.temperature:g})")  # fmt: skip
    config = run.config()
    if config is None:
        raise RnnexpError(f"{args.source} is a model, not a run's folder: say what to read with "
                          f"--text FILE or --prime TEXT")  # fmt: skip
    return validation_ids(config, vocab, args.length, run.corpus_sha256())


def main(argv: list[str] | None = None) -> int:
    from rnnexp.framework.artifacts import describe
    from rnnexp.inspect.page import write

    args = parser().parse_args(argv)
    out = args.out.expanduser()
    try:
        check_cwd()
        if args.length < 1:
            raise ConfigError(f"--length must be >= 1, got {args.length}")
        if args.rank < 1:
            raise ConfigError(f"--rank must be >= 1, got {args.rank}")
        chosen = units_list(args.units)
        with tempfile.TemporaryDirectory() as scratch:
            run = RunSource(args.source, args.tracking_uri, Path(scratch))
            model, vocab, start = load_model(run.model_dir(args.best))
            # the trace of --length characters, sized by arithmetic before it is read or made
            check_fits(f"--length {args.length:,} for {describe(model.config)}",
                       step_bytes(model.config, 1, args.length, len(vocab)))  # fmt: skip
            ids, about = text_ids(args, run, model, vocab, start)
        if run.note:
            print(f"rnnexp-inspect: {run.note}", file=sys.stderr)
        if len(ids) < 2:
            raise RnnexpError("the text to inspect needs 2 characters or more")
        title = f"Inside {describe(model.config)}"
        write(out, model, vocab, ids, title, about, args.rank, chosen)
    except RnnexpError as e:
        print(f"rnnexp-inspect: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the page cannot be written: a missing folder, a full disk
        print(f"rnnexp-inspect: error: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
