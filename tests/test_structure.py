"""The shape of the package, as a new maintainer meets it: no import circle, and only the
public APIs of the libraries it is built on."""

import ast
import re
from pathlib import Path

import rnnexp

PACKAGE = Path(rnnexp.__file__).parent


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules `path` imports, anywhere in it (a deferred import included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rnnexp"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("rnnexp"))
    return out & set(known)


def test_no_module_imports_one_that_imports_it_back():
    known = modules()
    graph = {m: imports(p, known) for m, p in known.items()}
    circles = []
    for start in graph:  # a path from a module back to itself
        seen, todo = set(), [(start, [start])]
        while todo:
            m, path = todo.pop()
            for n in graph[m]:
                if n == start:
                    circles.append(" -> ".join([*path, n]))
                elif n not in seen:
                    seen.add(n)
                    todo.append((n, [*path, n]))
    assert not circles, circles[:3]


def test_only_the_libraries_public_apis():
    private = re.compile(
        r"hydra\._internal|numba\.core|\._source_stamp|\._cache\b|"
        r"(from|import) mlflow\.store|\._get_node\(|\._is_optional\("
    )
    used = [f"{p.relative_to(PACKAGE)}: {m.group()}" for p in PACKAGE.rglob("*.py")
            for m in private.finditer(p.read_text())]  # fmt: skip
    assert not used, used


# 4,947 after issue 32 (whose goal, 3,000, it missed), and the 500 issue 33 allows for
# searches and pruning, its sweeper plugin included (rnnexp/plugins/)
FRAMEWORK_LINES = 4_947 + 500 + 600  # issue 34's 600 go to either part: PACKAGE_LINES holds both
# the whole package (engine and framework) before issue 34, and the 600 it allows for the
# n-gram baselines, the paper's grid, its figures and a source-code corpus
PACKAGE_LINES = 9_288 + 600 + 80  # issue 35: the API's docstrings and their tested examples


def test_the_store_code_and_every_file_and_function_stay_small():
    """What talks to the store (a file importing mlflow, sqlite3 or sqlalchemy) is one small
    layer over MlflowClient; no file of the package over 300 lines, no function over 60."""
    talks = re.compile(r"^\s*(import|from) (mlflow|sqlite3|sqlalchemy)\b", re.M)
    sizes = {p: len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert sum(n for p, n in sizes.items() if talks.search(p.read_text())) <= 700
    parts = {"framework", "plugins"}  # the framework grows no further than its budget
    framework = sum(n for p, n in sizes.items() if parts & set(p.relative_to(PACKAGE).parts))
    assert framework <= FRAMEWORK_LINES, framework
    assert sum(sizes.values()) <= PACKAGE_LINES, sum(sizes.values())
    assert not [f"{p.relative_to(PACKAGE)}: {n}" for p, n in sizes.items() if n > 300]
    long = [f"{p.relative_to(PACKAGE)}:{f.name} {f.end_lineno - f.lineno + 1}"
            for p in sizes for f in ast.walk(ast.parse(p.read_text()))
            if isinstance(f, ast.FunctionDef) and f.end_lineno - f.lineno >= 60]  # fmt: skip
    assert not long, long


def test_the_command_line_and_its_config_import_no_numba():
    """numba (0.3 s) is imported when a kernel is first used, not by the package, its config
    schema or the entrypoint: --help and a refused command do not wait for it."""
    import subprocess
    import sys

    code = (
        "import sys, rnnexp, rnnexp.framework.cli, rnnexp.framework.settings; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    code = ("import sys, rnnexp, numpy as np; rnnexp.clip_grads({'a': np.ones(3)}, 1.0); "
            "print('numba' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"  # and a kernel's first call imports it
