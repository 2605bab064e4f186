"""Corpora by name: downloaded texts (sha256-pinned, cached), generated sequences, any text file.

Downloads go through pooch into the cache folder: `RNNEXP_DATA_DIR` when set (a folder of
pre-placed copies works offline), else the user cache. A file whose sha256 is not the
pinned one is refused, never silently replaced. Tiny shakespeare, the default corpus, ships
inside the package (rnnexp/texts/), checked against the same sha256: it never downloads.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from rnnexp.errors import ConfigError, CorpusError, check_fits, check_whole
from rnnexp.synthetic import GENERATORS


@dataclass(frozen=True)
class Corpus:
    """A text to learn, as `load_corpus` returns it, with what is known of its source."""

    name: str
    text: str
    entropy_floor: float | None = None  # nats/char no model can beat, where known
    source: str = ""  # URL, path or generator
    part: str = ""  # which part of the source is the text, when not all of it

    @property
    def sha256(self) -> str:
        """sha256 of the text as trained on (UTF-8), to tag runs with."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Download:
    """A text on the web, pinned by its file's sha256. `end`: the work stops before the first
    line starting with it (Project Gutenberg's closing line, licence after it), trailing blank
    lines dropped; None: the whole file is the work."""

    fname: str
    url: str
    sha256: str
    end: str | None = None
    packaged: bool = False  # a gzip of the file ships in rnnexp/texts/: no download, ever

    def work(self, text: str) -> tuple[str, str]:
        """The work's own text out of the file's, and a note of which part that is."""
        if self.end is None:
            return text, ""
        stop = text.find("\n" + self.end)
        if stop < 0:  # the sha256 is pinned, so only a change to this table gets here
            raise CorpusError(f"{self.fname} has no line starting {self.end!r}")
        work = text[:stop].rstrip("\n") + "\n"
        return work, f"characters 0-{len(work)} of {len(text)}: before {self.end!r}"


_CHAR_RNN = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e"
)
DOWNLOADS = {
    "shakespeare": Download(
        "tinyshakespeare.txt",
        f"{_CHAR_RNN}/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        packaged=True,  # public domain, 1.1 MB (434 KB gzipped): the default run's text
    ),
    "kafka": Download(
        "kafka.txt",
        "https://raw.githubusercontent.com/llSourcell/recurrent_neural_network/"
        "e1222ea55d909d87f7dbb263a8afa0c389e5491c/kafka.txt",
        "836497d1e5a47b1744e68da78822e8af19ddadc565e3a09fde348f300e14ec78",
        # the story; then Gutenberg's closing lines and licence (13.8 % of the file)
        end="End of the Project Gutenberg EBook of Metamorphosis",
    ),
    "alice": Download(
        "alice.txt",
        "https://raw.githubusercontent.com/Arboghast/Gutenberg-parser/"
        "a4e7f4d3e0e4b2b1ed07edfd48af62d937a6a6b7/pg19033.txt",
        "e7d877267ce3bb393a81d7fa8772e2d8d4b9eb7e9a90347343f8ef3a7ca358e5",
    ),
}

# tiny shakespeare (Karpathy's selection of the plays) and this copy of Alice carry no
# Project Gutenberg header or footer: the whole file is the text (tests/test_corpora.py).
CORPORA = sorted([*DOWNLOADS, *GENERATORS, "file"])
"""Every corpus `load_corpus` knows: downloaded, generated, and `file` (any text by path)."""


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


TEXTS = Path(__file__).resolve().parent / "texts"  # the corpora shipped with the package


def read_packaged(download: Download) -> str:
    """The text of a download that ships with rnnexp, checked against the same sha256."""
    path = TEXTS / f"{download.fname}.gz"
    data = gzip.decompress(path.read_bytes())
    actual = hashlib.sha256(data).hexdigest()
    if actual != download.sha256:
        raise CorpusError(f"{path} holds a file of sha256 {actual}, expected {download.sha256}")
    return decode_text(data, path)


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file as Python's text mode reads it: byte-order mark stripped,
    CRLF and CR turned into LF (what the notebooks' open(path).read() saw)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CorpusError(f"corpus file not found: {path}")
    if not path.is_file():
        raise CorpusError(f"corpus path is not a file: {path}")
    # its bytes, the text (up to 4 bytes a character), a copy with its line ends mended, and
    # the character ids: refused before reading a file that cannot fit
    size = path.stat().st_size
    check_fits(f"corpus file {path} ({size:,} bytes) read as text", 16 * size)
    return decode_text(path.read_bytes(), path)


def decode_text(data: bytes, path: Path) -> str:
    """The text of a file's bytes (see read_text); `path` names it in errors."""
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
    `max_chars` keeps only the first characters (the entropy floor still holds).

    Examples:
        >>> corpus = load_corpus("sevenths")
        >>> corpus.text[:12], corpus.entropy_floor
        ('142857142857', 0.0)
    """
    if name not in CORPORA:
        raise ConfigError(f"unknown corpus {name!r}; valid: {', '.join(CORPORA)}")
    if name != "file" and path is not None:
        raise ConfigError(f"corpus.path is only for corpus=file, not {name!r}")
    floor, part = None, ""
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
            download = DOWNLOADS[name]
            raw = read_packaged(download) if download.packaged else read_text(fetch(download))
            text, part = download.work(raw)
            source = download.url
    if max_chars is not None:
        check_whole("corpus.max_chars", max_chars, 1)
        text = text[:max_chars]
    # a text of the user's is known by its file's name (runs, datasets, pages), not as "file"
    label = Path(path).name if name == "file" else name
    return Corpus(label, text, floor, source, part)
