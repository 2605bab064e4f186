"""Corpora by name: downloaded texts (sha256-pinned, cached), generated sequences, any text file.

Downloads go through pooch into the cache folder: `RNNEXP_DATA_DIR` when set (a folder of
pre-placed copies works offline), else the user cache. A file whose sha256 is not the
pinned one is refused, never silently replaced.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from rnnexp.errors import ConfigError, CorpusError
from rnnexp.generated import GENERATORS


@dataclass(frozen=True)
class Corpus:
    name: str
    text: str
    entropy_floor: float | None = None  # nats/char no model can beat, where known
    source: str = ""  # URL, path or generator

    @property
    def sha256(self) -> str:
        """sha256 of the text as trained on (UTF-8), to tag runs with."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Download:
    fname: str
    url: str
    sha256: str


_CHAR_RNN = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e"
)
DOWNLOADS = {
    "shakespeare": Download(
        "tinyshakespeare.txt",
        f"{_CHAR_RNN}/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
    "kafka": Download(
        "kafka.txt",
        "https://raw.githubusercontent.com/llSourcell/recurrent_neural_network/"
        "e1222ea55d909d87f7dbb263a8afa0c389e5491c/kafka.txt",
        "836497d1e5a47b1744e68da78822e8af19ddadc565e3a09fde348f300e14ec78",
    ),
    "alice": Download(
        "alice.txt",
        "https://raw.githubusercontent.com/Arboghast/Gutenberg-parser/"
        "a4e7f4d3e0e4b2b1ed07edfd48af62d937a6a6b7/pg19033.txt",
        "e7d877267ce3bb393a81d7fa8772e2d8d4b9eb7e9a90347343f8ef3a7ca358e5",
    ),
}

CORPORA = sorted([*DOWNLOADS, *GENERATORS, "file"])


def data_dir() -> Path:
    """Where downloads are cached: $RNNEXP_DATA_DIR, else the OS user cache."""
    env = os.environ.get("RNNEXP_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("rnnexp"))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(download: Download, cache: Path | None = None) -> Path:
    """The verified local copy of a download: the cached file, else downloaded into the cache."""
    cache = data_dir() if cache is None else cache
    path = cache / download.fname
    if path.exists():
        # checked here, not by pooch: pooch would re-download over a user's pre-placed copy
        actual = file_sha256(path)
        if actual != download.sha256:
            raise CorpusError(
                f"{path} has sha256 {actual}, expected {download.sha256}: "
                f"the file is corrupted or not the pinned one; delete it to download again"
            )
        return path
    import pooch  # deferred: only downloads need it

    try:
        fetched = pooch.retrieve(
            download.url,
            known_hash=f"sha256:{download.sha256}",
            fname=download.fname,
            path=cache,
            progressbar=False,
        )
    except ValueError as e:  # pooch's hash mismatch; the bad file is not kept
        raise CorpusError(f"download of {download.url} refused: {e}") from None
    except Exception as e:  # network or file system
        raise CorpusError(
            f"could not download {download.url} into {cache} ({type(e).__name__}: {e}); "
            f"without network, place {download.fname} in a folder and set RNNEXP_DATA_DIR to it"
        ) from None
    return Path(fetched)


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file as Python's text mode reads it: byte-order mark stripped,
    CRLF and CR turned into LF (what the notebooks' open(path).read() saw)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CorpusError(f"corpus file not found: {path}")
    if not path.is_file():
        raise CorpusError(f"corpus path is not a file: {path}")
    data = path.read_bytes()
    if not data:
        raise CorpusError(f"corpus file is empty: {path}")
    if b"\x00" in data:
        raise CorpusError(f"corpus file looks binary (it has NUL bytes), not text: {path}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        bad = data[e.start : e.start + 1]
        message = f"corpus file is not UTF-8 text: {path} (byte {e.start}: {bad!r})"
        raise CorpusError(message) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        raise CorpusError(f"corpus file holds no text: {path}")
    return text


def load_corpus(
    name: str, *, path: str | os.PathLike | None = None, max_chars: int | None = None, **options
) -> Corpus:
    """Corpus `name` (see CORPORA). `path` is for `file`; generated corpora take their
    generator's options (sevenths: length; fizzbuzz: n; elman: length, n_b, n_c, seed).
    `max_chars` keeps only the first characters (the entropy floor still holds)."""
    if name not in CORPORA:
        raise ConfigError(f"unknown corpus {name!r}; valid: {', '.join(CORPORA)}")
    if name != "file" and path is not None:
        raise ConfigError(f"corpus.path is only for corpus=file, not {name!r}")
    floor = None
    if name in GENERATORS:
        try:
            text, floor = GENERATORS[name](**options)
        except TypeError as e:
            raise ConfigError(f"corpus {name}: {e}") from None
        source = f"generated: {name}({', '.join(f'{k}={v}' for k, v in options.items())})"
    else:
        if options:
            raise ConfigError(f"corpus {name} takes no options, got {sorted(options)}")
        if name == "file":
            if path is None:
                raise ConfigError("corpus=file needs corpus.path=/path/to/text.txt")
            source = str(Path(path).expanduser().resolve())
            text = read_text(path)
        else:
            text = read_text(fetch(DOWNLOADS[name]))
            source = DOWNLOADS[name].url
    if max_chars is not None:
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
            raise ConfigError(f"corpus max_chars must be a whole number >= 1, got {max_chars!r}")
        text = text[:max_chars]
    return Corpus(name, text, floor, source)
