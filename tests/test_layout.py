"""Where concepts live, checked on the source: only the tracking package speaks to MLflow."""

import ast

from conftest import ROOT

TRACKING = ROOT / "rnnexp" / "framework" / "tracking"


def imported(path) -> set[str]:
    """The top-level packages a module imports, anywhere in it (deferred imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_tracking_package_imports_mlflow():
    modules = sorted((ROOT / "rnnexp").rglob("*.py"))
    speaking = [p.relative_to(ROOT) for p in modules if "mlflow" in imported(p)]
    assert speaking and all(TRACKING in (ROOT / p).parents for p in speaking), speaking
