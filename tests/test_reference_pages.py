"""The guide's two reference pages cannot drift: the configuration page lists every key Hydra
composes for every option of every group, each with its meaning; the API page documents every
name `rnnexp` exports, each with a docstring, and their examples run (doctest)."""

import doctest
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import rnnexp
from rnnexp.framework.cli import register_configs
from rnnexp.resources import CONF_DIR

register_configs()
GROUPS = ("model", "corpus", "optimizer", "schedule", "prune")
LAZY = ("Result", "run", "runs")  # rnnexp.framework.api's, imported on first use
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))]


def hooks():
    spec = importlib.util.spec_from_file_location("hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["hooks"] = module  # its dataclass looks its module up, as MkDocs registers it
    spec.loader.exec_module(module)
    return module


def leaves(node: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out += leaves(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


@pytest.fixture(scope="module")
def reference() -> str:
    return hooks().config_reference()


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=lambda v: str(v))
def test_every_composed_key_is_on_the_configuration_page(reference, group, option):
    """Every leaf key of `rnnexp GROUP=OPTION` (the top config's and the option's) has a row
    with a type, a default and a meaning, under the option's own heading for its group."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("config", overrides=[f"{group}={option}"]))
    section = reference.split(f"#### {group}={option}\n", 1)[1].split("\n#### ", 1)[0]
    top = reference.split("## Groups", 1)[0]
    for key in leaves(cfg):
        head = key.split(".")[0]
        if head == group and key != "model.dtype":  # the top config sets model.dtype
            where = section
        elif head in GROUPS:
            continue  # another group's option: its own table
        else:
            where = top
        row = re.search(rf"^\| `{re.escape(key)}` \| (.*?) \| `(.*?)` \| (.+) \|$", where, re.M)
        assert row, f"{key}: no row with a meaning on the configuration page ({group}={option})"
        assert row[3].strip(), f"{key} has no meaning on the configuration page"


def test_every_option_and_preset_is_listed(reference):
    for group in ("model", "corpus", "optimizer", "schedule", "prune", "experiment", "search",
                  "tuning"):  # fmt: skip
        for path in (CONF_DIR / group).glob("*.yaml"):
            assert re.search(rf"^\| `{path.stem}` \| .+ \|$", reference, re.M), path


def test_a_key_without_a_comment_would_fail_the_page(tmp_path):
    """The parser the page is made by reads a key's meaning from its comment, or none."""
    (tmp_path / "x.yaml").write_text("# an option\na: 1  # the a\n# the b\nb: 2\nc: 3\n")
    head, entries = hooks().entries(tmp_path / "x.yaml")
    assert head == "an option"
    assert [(e.key, e.value, e.meaning) for e in entries] == [
        ("a", "1", "the a"), ("b", "2", "the b"), ("c", "3", "")]  # fmt: skip


def exported(name: str):
    """The griffe object the API page renders for a name of rnnexp.__all__."""
    import griffe

    module = "rnnexp.framework.api" if name in LAZY else "rnnexp"
    obj = griffe.load(module, search_paths=[str(ROOT)], resolve_aliases=True)[name]
    obj = obj.final_target if obj.is_alias else obj
    if obj.is_module:  # rnnexp.evaluate and rnnexp.sample: the function of its module's name
        obj = obj[name]
    return obj


@pytest.mark.parametrize("name", rnnexp.__all__)
def test_every_exported_name_has_a_docstring_on_the_api_page(name):
    obj = exported(name)
    assert obj.docstring and len(obj.docstring.value.split()) >= 5, f"{name}: no docstring"
    page = (ROOT / "docs" / "python-api.md").read_text()
    assert f"::: {obj.path}\n" in page or f"::: rnnexp.{name}\n" in page, f"{name} not on page"


def test_the_docstring_examples_run():
    """Every `>>>` example of an exported name, as doctest runs it."""
    globs = {n: getattr(rnnexp, n) for n in rnnexp.__all__ if n not in LAZY}
    globs.update(np=np, Path=Path)
    runner, found = doctest.DocTestRunner(), 0
    for name in rnnexp.__all__:
        obj = getattr(rnnexp, name)
        for test in doctest.DocTestFinder(recurse=False).find(obj, name, globs=dict(globs)):
            found += len(test.examples)
            runner.run(test)
    assert found >= 15 and runner.summarize(verbose=False).failed == 0
