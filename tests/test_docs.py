"""The README and the guide (docs/, built by MkDocs) as a user meets them: every shell command
and Python block they show, run for real (on tiny step counts, in a temporary folder with its
own store); every error they show, printed as shown; every figure a `<!-- shown: -->`
transcript shows, what its command prints; and the site, built with --strict.

A command that cannot run here is listed in NOT_RUN with the test that covers it instead;
a command shown but neither run nor listed fails the test."""

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, answers, free_port
from helpers import env, runs

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]  # what users read
# what each run is shortened to; a page's override of these keys is replaced, not repeated
TINY = {
    "train.steps": "20",
    "train.log_every": "5",
    "train.eval_every": "10",
    "train.sample_every": "10",
    "train.sample_length": "20",
    "train.checkpoint_every": "10",
    "train.eval_chars": "2048",
    "corpus.val_fraction": "0.02",  # the final evaluation reads 2 % of the text, not 10 %
    "hydra.sweeper.n_trials": "2",  # a search: two trials
}
NOT_RUN = {  # command shown (start) -> why it is not run here, and what covers it
    "make run": "the main job itself: CI runs `make test`, and this test runs `rnnexp`",
    "make test": "this test is part of it",
    "make docs": "test_the_site_builds_strict runs the same `mkdocs build --strict`",
    "make format": "ruff's fixes: `make test` runs ruff's checks",
    "make system-deps": "CI runs it before `make test` (.ci/run)",
    "make bench": "benchmarks/throughput.py, which tests/test_benchmarks.py runs tiny",
    ".venv/bin/python -m pytest": "the test suite itself",
    "rnnexp -m experiment=karpathy2015": (
        "36 jobs: tests/test_karpathy2015.py runs a small grid of the real preset"
    ),
    ".venv/bin/pip install": "the test extras install every extra the pages name",
    "sudo ": "installs system packages and database users: `make system-deps`, tests/pg.py",
    "export RAY_AUTH_MODE": "a Ray cluster's shell set-up: tests/test_ray.py sets the same",
    "ray start": "a Ray cluster: tests/test_ray.py starts a real head on 127.0.0.1",
    "rnnexp -m hydra/launcher=ray": "Ray: tests/test_ray.py runs both forms (slow)",
    "rnnexp -m hydra/launcher=submitit_slurm": (
        "a Slurm cluster: tests/test_search.py runs the same launcher's submitit_local (slow)"
    ),
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow server": (
        "the PostgreSQL team server: tests/test_team_server.py runs it for real (slow)"
    ),
    "rnnexp -m seed=0,1,2,3 tracking.uri=http://127.0.0.1:5000": (
        "needs the team server above: tests/test_team_server.py runs this sweep against it"
    ),
    "RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/": (
        "a benchmark of minutes: tests/test_benchmarks.py runs each on tiny settings"
    ),
    "RNNEXP_UI_SCREENSHOTS=": "the UI test itself: tests/test_ui.py (slow)",
    "MLFLOW_TRACKING_URI=sqlite:///outputs/mlflow.db mlflow models serve": (
        "a server that runs until stopped: tests/test_mlflow_model.py serves a model (slow)"
    ),
    "curl ": "asks the server above: tests/test_mlflow_model.py posts the same request (slow)",
    "RNNEXP_INSPECT_SCREENSHOT=": "the page's browser test itself: tests/test_inspect_page.py",
    ".venv/bin/python benchmarks/": "a benchmark: tests/test_benchmarks.py runs each, tiny",
    "optuna-dashboard ": (
        "a server that runs until stopped, from the search extra: the study it reads is "
        "tests/test_search.py's"
    ),
}
# commands the pages show that still fail: each names the issue that fixes it. Strict: one
# that starts to pass must leave this list
KNOWN_FAILING: dict[str, str] = {}  # command shown -> the issue that will fix it


def blocks(language: str, page: Path | None = None) -> list[str]:
    """The fenced blocks of one page, or of every page."""
    texts = [page.read_text()] if page else [p.read_text() for p in PAGES]
    return [b for t in texts for b in re.findall(rf"^```{language}\n(.*?)^```", t, re.M | re.S)]


def commands() -> list[str]:
    """Each shell command shown, once, continuation lines joined, comments dropped."""
    out = []
    for block in blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and shlex.join(words) not in out:
                out.append(shlex.join(words))
    return out


def skipped(command: str) -> str | None:
    return next((why for start, why in NOT_RUN.items() if command.startswith(start)), None)


def tiny(words: list[str]) -> list[str]:
    """A run's words with the TINY values in place of (or added to) the page's."""
    if any(w in ("--help", "--cfg", "-h") or w.startswith("resume=") for w in words):
        return words
    kept = [w for w in words if w.split("=", 1)[0] not in TINY]
    search = any(w.startswith("search=") for w in words)
    return kept + [f"{k}={v}" for k, v in TINY.items() if search or not k.startswith("hydra.")]


class Session:
    """A user's shell in a fresh folder: HOME is there too (for ~/my_text.txt)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.env = env(HOME=str(folder), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        self.first_run: Path | None = None  # the folder of the first run, for placeholders

    def store(self) -> str:
        return f"sqlite:///{self.folder / 'outputs' / 'mlflow.db'}"

    def placeholders(self, words: list[str]) -> list[str]:
        """The pages' example run folder and run id -> this session's first run."""
        run = next(r for r in runs(self.store()) if r.data.tags["rnnexp.output_dir"] == str(
            self.first_run))  # fmt: skip
        out = []
        for w in words:
            w = re.sub(r"outputs/runs/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", str(self.first_run), w)
            sweeps = sorted(self.folder.glob("outputs/multiruns/*"))  # the last sweep
            if sweeps:
                w = re.sub(r"outputs/multiruns/[\d_-]+", str(sweeps[-1]), w)
            out.append(re.sub(r"\b[0-9a-f]{32}\b", run.info.run_id, w))
        return out

    def run(self, command: str) -> subprocess.CompletedProcess:
        words = shlex.split(command)
        assign = [w for w in words if re.fullmatch(r"[A-Z_]+=.*", w)]
        words = words[len(assign) :] if words[: len(assign)] == assign else words
        extra = dict(a.split("=", 1) for a in assign)
        if words[0] in ("rnnexp", "python"):
            if words[:3] == ["python", "-m", "rnnexp"] and words[3:] == ["..."]:
                words = ["python", "-m", "rnnexp", "--cfg", "job"]  # "the same entrypoint"
            if words[0] == "python":
                words = [sys.executable, *words[1:]]
            words = tiny(self.placeholders(words) if self.first_run else words)
        elif words[0] in ("rnnexp-sample", "rnnexp-inspect"):
            words = self.placeholders(words)
            (self.folder / "opening.txt").write_text("ROMEO:\n")  # the default corpus's
        before = set(self.folder.glob("outputs/runs/*"))
        r = subprocess.run(words, cwd=self.folder, env={**self.env, **extra},
                           capture_output=True, text=True, timeout=600)  # fmt: skip
        new = sorted(set(self.folder.glob("outputs/runs/*")) - before)
        if self.first_run is None and new and r.returncode == 0:
            self.first_run = new[0]
        return r

    def serve(self, command: str) -> None:
        """`mlflow ui ...`: started, answering on its port, stopped."""
        port = str(free_port())
        words = [port if w == "5000" else w for w in shlex.split(command)]
        assign = dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=.*", w))
        words = [w for w in words if not re.fullmatch(r"[A-Z_]+=.*", w)]
        proc = subprocess.Popen(words, cwd=self.folder, env={**self.env, **assign},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
        try:
            assert answers(f"http://127.0.0.1:{port}/health", proc, 90), command
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def test_every_command_shown_is_run_or_accounted_for():
    for command in commands():
        runnable = command.split()[0] in (
            "rnnexp",
            "rnnexp-sample",
            "rnnexp-inspect",
            "rnnexp-ngram",
            "python",
        ) or ("mlflow ui" in command)
        assert runnable or skipped(command), f"command shown but neither run nor listed: {command}"
    for start in [*NOT_RUN, *KNOWN_FAILING]:
        assert any(c.startswith(start) for c in commands()), f"no longer shown: {start}"


@pytest.mark.slow
def test_every_command_shown_works(tmp_path):
    session = Session(tmp_path)
    (tmp_path / "my_text.txt").write_text(
        "".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(200))
    )
    for command in commands():
        if skipped(command):
            continue
        if "mlflow ui" in command:
            session.serve(command)
            continue
        r = session.run(command)
        known = next((w for c, w in KNOWN_FAILING.items() if command.startswith(c)), None)
        if known:
            assert r.returncode == 1, f"{command} now works: drop it from KNOWN_FAILING ({known})"
            continue
        if "resume=" in command and "-m" not in command.split():
            # the session's runs are finished: found, nothing left to do
            assert r.returncode == 2 and "nothing to resume" in r.stderr, (command, r.stderr)
            continue
        assert r.returncode == 0, f"{command}\n{r.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if blocks("python", p)], ids=lambda p: p.name)
def test_every_python_block_works(page, tmp_path):
    """A page's Python blocks, one after the other in one process (a notebook's cells)."""
    code = "\n\n".join(blocks("python", page))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env(),
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert list(tmp_path.glob("outputs/runs/*/model/model.npz")), "a tracked run made its model"


# ---------------------------------------------------------------- what the pages show

SHOWN = re.compile(r"<!-- shown: (.+?) -->\n\n((?:(?: {4}.*)?\n)+)")
FIGURE = re.compile(r"\d+\.\d{3,}")  # a loss, a bpc: 3 or more decimals
TOLERANCE = 0.05  # nats/char: another CPU's BLAS and SIMD kernels end a run elsewhere
MASKS = [  # what differs from one machine, day or folder to the next, as the pages show it
    (re.compile(r"^\[\d{4}-[^\]]*\]\[\w+\]\[\w+\] - "), ""),  # a log line's time
    (re.compile(r"[\d,]+ chars/s"), "# chars/s"),
    (re.compile(r"\b\d+(\.\d+)? (s|min)\b"), "# s"),
    (re.compile(r"\(\d+ %\)"), "(# %)"),
    (re.compile(r"\S*outputs/\S*"), "PATH"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "ID"),
    (re.compile(r"this machine's [\d,.]+ GiB"), "this machine's # GiB"),
    (FIGURE, "F"),
    (re.compile(r"\s+"), " "),
]


def shape(line: str) -> str:
    line = line.strip()
    for pattern, into in MASKS:
        line = pattern.sub(into, line)
    return line.strip()


def compare(shown: str, seen: str) -> list[str]:
    """The shown lines of figures that the output does not show (its shape absent, or a
    figure off by more than TOLERANCE); progress lines (what is left, at a time) excepted."""
    lines = [line.strip() for line in seen.splitlines()]
    problems = []
    for line in shown.splitlines():
        if not FIGURE.search(line) or "s left" in line:
            continue
        twins = [x for x in lines if shape(x) == shape(line)]
        if not twins:
            problems.append(f"not in the output: {line.strip()}")
            continue
        ours = [float(f) for f in FIGURE.findall(line)]
        if not any(max(abs(a - float(b)) for a, b in zip(ours, FIGURE.findall(x), strict=True))
                   <= TOLERANCE for x in twins):  # fmt: skip
            problems.append(f"{line.strip()}\n    the output: {twins[0]}")
    return problems


def transcripts() -> list[tuple[str, list[str]]]:
    """The `$ rnnexp ...` examples of every page and the lines they print."""
    out = []
    text = "".join(p.read_text() for p in PAGES)
    for block in re.findall(r"((?: {4}\$ .*\n(?: {4}(?!\$).*\n)*)+)", text):
        for part in re.split(r"^ {4}\$ ", block, flags=re.M)[1:]:
            command, *said = part.rstrip("\n").split("\n")
            out.append((command, [s[4:] for s in said]))
    return out


def test_the_error_examples_are_what_rnnexp_prints(tmp_path):
    from helpers import run_here

    examples = [(c, said) for c, said in transcripts() if said[0].startswith("rnnexp: error:")]
    examples = list(dict((c, said) for c, said in examples).items())  # each command once
    assert len(examples) >= 6
    for command, said in examples:
        words = shlex.split(command)
        assert words[0] == "rnnexp", command
        r = run_here(*words[1:], cwd=tmp_path, fresh=True)
        assert r.returncode == 2 and [shape(x) for x in r.stderr.strip().splitlines()] == [
            shape(x) for x in said
        ], f"{command}\n  shown: {said}\n  prints: {r.stderr}"


@pytest.mark.slow
def test_the_figures_shown_are_what_the_commands_print(tmp_path):
    shown: dict[str, list[str]] = {}  # command -> every block that shows its output
    for page in PAGES:
        for command, block in SHOWN.findall(page.read_text()):
            shown.setdefault(command, []).append(block)
    assert len(shown) >= 3, "the first run, min_char_rnn, the 500-step sweep"
    for command, said in shown.items():
        words = shlex.split(command)
        assert words[0] == "rnnexp", command
        r = subprocess.run([sys.executable, "-m", "rnnexp", *words[1:]], cwd=tmp_path,
                           env=env(), capture_output=True, text=True, timeout=1800)  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        problems = [p for block in said for p in compare(block, r.stdout + r.stderr)]
        assert not problems, f"{command} has drifted from what the pages show:\n" + "\n".join(
            problems
        )


# ---------------------------------------------------------------- the pages themselves

NARRATIVE = re.compile(  # a page says what a command does, not how the project got there
    r"\bissue \d|\bthe day before\b|\ba day later\b|\bmeasured here\b|\bbefore the kernels\b"
    r"|\bwas measured\b|\bat `?[0-9a-f]{7}`?\b|\bnow\b[^.]*\bbefore\b",
    re.I,
)


def test_the_readme_is_short_and_links_into_the_guide():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert text.startswith("# rnnexp\n") and "make run" in text.split("\n## ")[0]
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)[#)]", text))
    assert linked >= {p.name for p in PAGES[1:]} - {"index.md"}, linked


def test_the_pages_are_for_users():
    for page in PAGES:
        found = NARRATIVE.findall(page.read_text())
        assert not found, f"{page.name}: {found}"


def test_the_site_builds_strict(tmp_path):
    """`make docs`: every page in the nav, no broken link, anchor or API reference."""
    mkdocs = str(Path(sys.executable).parent / "mkdocs")
    r = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=ROOT, env=env(NO_MKDOCS_2_WARNING="1"), capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    built = {p.parent.name for p in (tmp_path / "site").glob("*/index.html")}
    assert built >= {p.stem for p in PAGES[1:]} - {"index"} and len(built) >= 8, built
    configuration = (tmp_path / "site" / "configuration" / "index.html").read_text()
    assert "train.steps" in configuration and "model=gru" in configuration
    for page in (tmp_path / "site").glob("*/index.html"):  # every table drawn as a table
        assert "<p>|" not in page.read_text(), f"{page.parent.name}: a table without its header"
    performance = (tmp_path / "site" / "performance" / "index.html").read_text()
    assert "<!-- results:" not in performance and "benchmarks/search.py" in performance
