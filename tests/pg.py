"""A throwaway PostgreSQL server for tests: Debian's binaries (`make system-deps`), a data
folder of its own, listening on 127.0.0.1 only, password authentication. Stopped and removed
afterwards."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port


def bindir() -> Path:
    """The newest installed server's bin folder (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        pytest.fail("no PostgreSQL server in /usr/lib/postgresql: run `make system-deps`")
    return found[-1].parent


@contextlib.contextmanager
def postgres(user: str = "rnnexp", database: str = "mlflow") -> Iterator[str]:
    """Start a server, create `database`; yield its postgresql:// URI."""
    bin_ = bindir()
    password = secrets.token_hex(8)
    # not under pytest's tmp folder: that is private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="rnnexp-pg-"))
    (root / "pw").write_text(password)
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        for path in (root, root / "pw"):
            shutil.chown(path, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def run(*cmd: str | Path, env: dict | None = None) -> None:
        r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
        if r.returncode:
            log = root / "server.log"
            pytest.fail(f"{cmd}:\n{r.stdout}{r.stderr}{log.read_text() if log.exists() else ''}")

    run(*as_user, bin_ / "initdb", "-D", data, "-U", user, "--pwfile", root / "pw",
        "--auth", "scram-sha-256", "-E", "UTF8", "--no-instructions")  # fmt: skip
    run(*as_user, bin_ / "pg_ctl", "-D", data, "-l", root / "server.log", "-w", "-t", "60",
        "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {root}", "start")  # fmt: skip
    try:
        run(bin_ / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", user, database,
            env={**os.environ, "PGPASSWORD": password})  # fmt: skip
        yield f"postgresql://{user}:{password}@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run([*as_user, str(bin_ / "pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                        "stop"], capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
