"""Corpora: generated strings exactly as specified, files read like the notebooks read them,
downloads pinned by sha256 (served for real from 127.0.0.1), offline copies via RNNEXP_DATA_DIR."""

import hashlib
import http.server
import re
import shutil
import threading
from functools import partial
from pathlib import Path

import pytest
from conftest import ROOT

from rnnexp.corpora import DOWNLOADS, Download, fetch, load_corpus
from rnnexp.errors import ConfigError, CorpusError
from rnnexp.synthetic import elman_floor

SHARED = ROOT.parent / "shared" / "corpora"


def test_sevenths_are_the_digits_of_one_seventh():
    c = load_corpus("sevenths")
    assert c.text == "142857" * 1000
    assert c.entropy_floor == 0.0
    assert load_corpus("sevenths", length=8).text == "14285714"


def test_fizzbuzz_is_the_notebooks_413_characters():
    text = load_corpus("fizzbuzz").text
    assert len(text) == 413
    lines = text.split("\n")
    assert lines[-1] == ""  # every answer ends in a newline
    assert lines[:15] == [
        "1",
        "2",
        "Fizz",
        "4",
        "Buzz",
        "Fizz",
        "7",
        "8",
        "Fizz",
        "Buzz",
        "11",
        "Fizz",
        "13",
        "14",
        "FizzBuzz",
    ]
    assert lines[99] == "Buzz"
    assert load_corpus("fizzbuzz").entropy_floor is None


def test_elman_letters_follow_the_notebooks_recipe():
    c = load_corpus("elman")
    syllables = re.findall(r"ae|buu|ciii", c.text)
    assert "".join(syllables) == c.text  # nothing but the three syllables
    assert len(syllables) == 10_000
    share = {s[0]: syllables.count(s) / 10_000 for s in ("ae", "buu", "ciii")}
    # positions drawn with replacement, c after b: P(c) = 1 - q, P(b) = q (1 - q), q = e^-0.3
    assert share["c"] == pytest.approx(0.2592, abs=0.015)
    assert share["b"] == pytest.approx(0.1920, abs=0.015)
    assert c.entropy_floor == pytest.approx(0.3675, abs=5e-5)
    assert load_corpus("elman", seed=0).text == c.text
    assert load_corpus("elman", seed=1).text != c.text
    assert len(load_corpus("elman", length=100, n_b=0, n_c=0).text) == 200  # all "ae"
    assert elman_floor(100, 0, 0) == 0.0


def test_unknown_corpus_and_options_are_clear_errors():
    with pytest.raises(ConfigError, match=r"unknown corpus 'kafak'; valid: alice, .*shakespeare"):
        load_corpus("kafak")
    with pytest.raises(ConfigError, match="corpus sevenths: .*unexpected keyword.*'lenght'"):
        load_corpus("sevenths", lenght=10)
    with pytest.raises(ConfigError, match="needs corpus.path"):
        load_corpus("file")
    with pytest.raises(ConfigError, match="max_chars"):
        load_corpus("sevenths", max_chars=0)


def test_file_corpus_reads_like_python_text_mode(tmp_path):
    f = tmp_path / "t.txt"
    f.write_bytes("\ufeffline one\r\nline two\rend é\n".encode())
    c = load_corpus("file", path=f)
    assert c.text == "line one\nline two\nend é\n"
    assert c.sha256 == hashlib.sha256(c.text.encode()).hexdigest()
    assert c.name == "t.txt"  # known by its own name: runs, datasets and pages say which text
    assert load_corpus("file", path=f, max_chars=4).text == "line"


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        ("dir", "not a file"),
        (b"", "is empty"),
        (b"\xef\xbb\xbf", "holds no text"),
        (b"GIF89a\x00\x01\x02", "binary"),
        (b"caf\xe9 latin-1", r"not UTF-8 text: .* \(byte 3: b'\\xe9'\)"),
    ],
)
def test_unusable_files_are_refused_clearly(tmp_path, content, message):
    f = tmp_path / "corpus.txt"
    if content == "dir":
        f.mkdir()
    elif content is not None:
        f.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        load_corpus("file", path=f)


@pytest.fixture
def web(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()


def test_download_is_pinned_and_cached(web, tmp_path):
    root, url, server = web
    body = b"to be or not to be\n"
    (root / "play.txt").write_bytes(body)
    d = Download("play.txt", f"{url}/play.txt", hashlib.sha256(body).hexdigest())
    cache = tmp_path / "cache"
    path = fetch(d, cache)
    assert path == cache / "play.txt" and path.read_bytes() == body
    server.shutdown()  # second use: from the cache, no network
    assert fetch(d, cache).read_bytes() == body


def test_download_with_wrong_hash_is_refused_and_not_kept(web, tmp_path):
    root, url, _ = web
    (root / "play.txt").write_bytes(b"tampered\n")
    d = Download("play.txt", f"{url}/play.txt", "0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(CorpusError, match="refused"):
        fetch(d, cache)
    assert not (cache / "play.txt").exists()


def test_unreachable_download_says_how_to_work_offline(tmp_path):
    d = Download("gone.txt", "http://127.0.0.1:9/gone.txt", "0" * 64)  # port 9: nothing listens
    with pytest.raises(CorpusError, match="set RNNEXP_DATA_DIR"):
        fetch(d, tmp_path)


def test_preplaced_file_with_wrong_hash_is_refused(tmp_path, monkeypatch):
    (tmp_path / "kafka.txt").write_text("One morning, when Gregor Samsa woke…")
    monkeypatch.setenv("RNNEXP_DATA_DIR", str(tmp_path))
    with pytest.raises(CorpusError, match=r"kafka.txt has sha256 [0-9a-f]{64}, expected 836497d1"):
        load_corpus("kafka")
    assert (tmp_path / "kafka.txt").read_text().startswith("One morning")  # left as it was


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the pre-placed corpora in ../shared/corpora")
@pytest.mark.parametrize(
    "name, chars", [("shakespeare", 1_115_394), ("kafka", None), ("alice", None)]
)
def test_preplaced_corpora_load_offline(tmp_path, monkeypatch, name, chars):
    d = DOWNLOADS[name]
    shutil.copy(SHARED / d.fname, tmp_path / d.fname)
    monkeypatch.setenv("RNNEXP_DATA_DIR", str(tmp_path))
    c = load_corpus(name)
    assert c.source == d.url
    assert "\r" not in c.text and not c.text.startswith("\ufeff")
    if chars:
        assert len(c.text) == chars and len(set(c.text)) == 65
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == [d.fname]  # nothing downloaded


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the pre-placed corpora in ../shared/corpora")
@pytest.mark.parametrize(
    "name, first, last",
    [
        ("kafka", "One morning, when Gregor Samsa", "stretch out her young body.\n"),
        ("alice", "\nCHAPTER 1\nDOWN THE RABBIT-HOLE", "what a wonderful dream it had\nbeen."),
        ("shakespeare", "First Citizen:\nBefore we proceed", "Whiles thou art waking.\n"),
    ],
)
def test_a_downloaded_corpus_is_the_work_without_project_gutenberg_text(
    tmp_path, monkeypatch, name, first, last
):
    monkeypatch.setenv("RNNEXP_DATA_DIR", str(SHARED))
    c = load_corpus(name)
    assert c.text.startswith(first) and c.text.endswith(last)
    assert "gutenberg" not in c.text.lower() and "license" not in c.text.lower()
    if name == "kafka":  # the file goes on with Gutenberg's closing lines and licence
        assert c.part.startswith(f"characters 0-{len(c.text)} of 137628: before 'End of the")
        n = int(len(c.text) * 0.9)  # the validation split uses no character training never saw
        assert set(c.text[n:]) <= set(c.text[:n])
    else:
        assert c.part == ""


def test_tiny_shakespeare_ships_with_the_package_and_never_downloads(tmp_path, monkeypatch):
    # an empty data folder and no network: the packaged copy, checked against the pinned sha256
    monkeypatch.setenv("RNNEXP_DATA_DIR", str(tmp_path))
    c = load_corpus("shakespeare")
    assert len(c.text) == 1_115_394 and c.text.startswith("First Citizen:\n")
    assert c.source == DOWNLOADS["shakespeare"].url and list(tmp_path.iterdir()) == []


def test_python_is_this_machines_standard_library_in_ascii_by_name():
    """The source-code corpus: every module it holds is this Python's own file, whole, in the
    order of their names, and the text is cut where asked."""
    import sys
    import sysconfig
    from pathlib import Path

    text = load_corpus("python", chars=300_000).text
    lib = Path(sysconfig.get_paths()["stdlib"])
    head, *modules = text.split("\n# file ")
    assert head == f"# the standard library of Python {sys.version.split()[0]}: its top-level " \
        "modules in ASCII, by name" and len(text) == 300_000 and text.isascii()  # fmt: skip
    names = [m.split("\n", 1)[0] for m in modules]
    assert names == sorted(names) and len(names) > 5
    ascii_files = [p.name for p in sorted(lib.glob("*.py")) if p.read_bytes().isascii()]
    assert names == ascii_files[: len(names)]  # none skipped but those not in ASCII
    for m in modules[:-1]:  # each whole (the last one is cut), its file's text
        name, code = m.split("\n", 1)
        assert code + "\n" == (lib / name).read_text().replace("\r\n", "\n"), name
    with pytest.raises(ConfigError, match="python chars"):
        load_corpus("python", chars=0)
    assert load_corpus("python", chars=10).text == head[:10]  # cut where asked, even the header
