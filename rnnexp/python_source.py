"""A corpus of source code that every machine has offline: the running Python's own standard
library. Karpathy, Johnson & Fei-Fei (2015) found cells that track brackets, strings,
indentation and line length in the Linux kernel's source; this text lets any run look for
them without a download. It is known by its digest, which every run records: another Python
version reads other files and makes another text.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

from rnnexp.errors import CorpusError, check_whole


def python(chars: int = 1_000_000) -> tuple[str, None]:
    """The standard library's top-level modules that are pure ASCII (abc.py, argparse.py,
    ...), in the order of their names, each after a `# file NAME` line, cut at `chars`
    characters: about tiny shakespeare's length by default, ~100 symbols as the kernel's 101.
    No entropy floor is known: None."""
    check_whole("python chars", chars, 1)
    lib = Path(sysconfig.get_paths()["stdlib"])
    parts = [f"# the standard library of Python {sys.version.split()[0]}: its top-level "
             f"modules in ASCII, by name\n"]  # fmt: skip
    for path in sorted(lib.glob("*.py")):
        if sum(map(len, parts)) >= chars and len(parts) > 1:  # a module at least
            break
        code = path.read_bytes()
        if code.isascii():
            parts.append(f"# file {path.name}\n" + code.decode("ascii").replace("\r\n", "\n"))
    if len(parts) == 1:
        raise CorpusError(f"corpus python: no module source in {lib} (a Python without its "
                          f"standard library's .py files)")  # fmt: skip
    return "".join(parts)[:chars], None
