"""A real Ray head for tests and benchmarks: `ray start --head --block` on 127.0.0.1, no
dashboard, its own temp folder; stopped (with every process it started) afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from conftest import free_port
from helpers import env

RAY = str(Path(sys.executable).parent / "ray")


@contextlib.contextmanager
def start_ray_head(extra_env: dict[str, str], cpus: int = 2) -> Iterator[str]:
    """Yields the head's address (127.0.0.1:PORT). `extra_env`: RAY_AUTH_MODE and such."""
    # short: Ray's unix sockets live under the temp folder (108-byte path limit)
    temp = tempfile.mkdtemp(prefix="rnnexp-ray-")
    port = free_port()
    proc = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
         "--port", str(port), "--include-dashboard=false", "--num-cpus", str(cpus),
         "--temp-dir", temp, "--disable-usage-stats"],
        env=env(**extra_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while subprocess.run([RAY, "status", "--address", address], env=env(**extra_env),
                             capture_output=True).returncode != 0:  # fmt: skip
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray head did not start:\n{proc.stdout.read()}")
            time.sleep(1)
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # --block: `ray start` stops the head's processes
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
