"""MkDocs hooks: the parts of the site made from the project itself at build time, so they
cannot drift from it.

- `<!-- reference: config -->` becomes the configuration reference: every key of
  conf/config.yaml and every option of every group in conf/, each key with its type (the
  schema's dataclasses, rnnexp/framework/settings.py), its default and its meaning (the
  comment the YAML gives it).
- `<!-- results: NAME -->` becomes the table of docs/results/NAME.json, drawn by the
  benchmark that wrote it (`table()` in benchmarks/NAME.py), with its command, machine, date.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import itertools
import json
import re
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
MARK = re.compile(r"^<!-- (reference|results): ([\w-]+) -->$", re.M)  # on a line of its own
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_]\w*):(?P<rest>.*)$")
SKIPPED = ("defaults", "hydra")  # Hydra's own nodes: the defaults list, its run/sweep dirs
# the groups in the order a reader meets them; each option's keys typed by its schema
GROUPS = ("model", "corpus", "optimizer", "schedule", "prune", "experiment", "search", "tuning")


@dataclasses.dataclass
class Entry:
    key: str  # dotted, from the file's root
    value: str  # as the YAML writes it; "" for a node that holds keys
    meaning: str  # its trailing comment, else the comment lines just above it


def split_comment(rest: str) -> tuple[str, str]:
    """`value  # comment` -> (value, comment); a # inside quotes is the value's."""
    quote = None
    for i, c in enumerate(rest):
        if c in "'\"" and quote in (None, c):
            quote = None if quote else c
        elif c == "#" and quote is None and (i == 0 or rest[i - 1] == " "):
            return rest[:i].strip(), rest[i + 1 :].strip()
    return rest.strip(), ""


def entries(path: Path) -> tuple[str, list[Entry]]:
    """A YAML file's opening comment and each key it sets (Hydra's nodes left out)."""
    lines = path.read_text().splitlines()
    opening = len(lines) - len(list(itertools.dropwhile(lambda x: x.startswith("#"), lines)))
    head = []
    for line in lines[:opening]:
        if line.startswith("#   "):  # an example command: the description ended
            break
        if "@package" not in line:
            head.append(line.lstrip("# ").rstrip())
    out, stack, above = [], [], []
    for line in lines[opening:]:
        if line.strip().startswith("#"):
            above.append(line.strip().lstrip("# "))
            continue
        m = KEY.match(line)
        if not m:
            above = []
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        value, comment = split_comment(m["rest"])
        path_keys = [k for _, k in stack] + [m["key"]]
        if value == "":
            stack.append((indent, m["key"]))
        if path_keys[0] not in SKIPPED:
            out.append(Entry(".".join(path_keys), value, comment or " ".join(above)))
        above = []
    description = " ".join(h for h in head if h)
    return (description[:-1] + "." if description.endswith(":") else description), out


def type_of(schema: type | None, dotted: str) -> str:
    """The schema's type of a dotted key ('' where no dataclass says)."""
    shown = ""
    for part in dotted.split("."):
        if schema is None or not dataclasses.is_dataclass(schema):
            return ""
        field = {f.name: f for f in dataclasses.fields(schema)}.get(part)
        if field is None:
            return ""
        shown = str(field.type)
        schema = typing.get_type_hints(schema).get(part)
    return "" if shown == "Any" else shown


def schema_keys(schema: type) -> list[Entry]:
    """A dataclass's fields with their defaults and the comments its source gives them (a
    trailing one, else the lines just above): the keys an option has without writing them."""
    comments: dict[str, str] = {}
    for cls in reversed(schema.__mro__):
        if not dataclasses.is_dataclass(cls):
            continue
        try:
            source = inspect.getsource(cls).splitlines()[1:]
        except OSError:  # made by make_dataclass (a cell's own keys): its fields say nothing
            continue
        above: list[str] = []
        for line in source:
            m = re.match(r"^    (\w+): [^#]*?(?:#\s*(.*))?$", line)
            if line.strip().startswith("#"):
                above.append(line.strip().lstrip("# "))
            elif m:
                comments[m[1]] = m[2] or " ".join(above)
                above = []
            else:
                above = []
    out = []
    for f in dataclasses.fields(schema):
        default = f.default if f.default is not dataclasses.MISSING else "???"
        shown = "null" if default is None else json.dumps(default).strip('"')
        out.append(Entry(f.name, shown, comments.get(f.name, "")))
    return out


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(rows: list[Entry], schema: type | None, prefix: str = "", top: set[str] = frozenset()
          ) -> list[str]:  # fmt: skip
    """The rows' keys, then the keys the schema gives an option that neither its file nor the
    top config (`top`: model.dtype) sets."""
    out = ["| key | type | default | meaning |", "|---|---|---|---|"]
    if prefix and dataclasses.is_dataclass(schema):
        written = {e.key for e in rows} | {k.removeprefix(prefix) for k in top}
        rows = rows + [e for e in schema_keys(schema) if e.key not in written]
    for e in rows:
        if e.value == "":  # a node: its keys follow
            continue
        kind = type_of(schema, e.key)
        out.append(f"| `{prefix}{e.key}` | {cell(kind) and f'`{cell(kind)}`'} | "
                   f"`{cell(e.value)}` | {cell(e.meaning)} |")  # fmt: skip
    return out


def option_schema(group: str, path: Path) -> type | None:
    """The dataclass an option's keys follow: the one its defaults list names (/GROUP_NAME),
    else its group's settings class."""
    from rnnexp.framework import settings

    named = re.search(rf"- /{group}_(\w+)@_here_", path.read_text())
    if named and group in settings.OPTIONS:
        return settings.OPTIONS[group][1][named[1]]
    return typing.get_type_hints(settings.Settings).get(group)


def config_reference() -> str:
    """Every key of the top config, then every group's options and their keys."""
    from rnnexp.framework.settings import Settings

    _, top = entries(CONF / "config.yaml")
    sections: dict[str, list[Entry]] = {}
    for e in top:
        sections.setdefault(e.key.split(".")[0] if "." in e.key else "", []).append(e)
    out = ["## Keys of every run", ""]
    out += ["`conf/config.yaml`: the keys every run has, whatever the groups choose.", ""]
    out += table(sections.pop(""), Settings) + [""]
    for name, rows in sections.items():
        node = next((e for e in top if e.key == name), None)
        out += [f"### {name}", "", *([node.meaning, ""] if node and node.meaning else [])]
        out += table(rows, Settings) + [""]
    out += ["## Groups", ""]
    for group in GROUPS:
        files = sorted((CONF / group).glob("*.yaml"))
        out += [f"### {group}", "", f"`{group}=NAME` chooses `conf/{group}/NAME.yaml`:", ""]
        out += ["| option | what it is |", "|---|---|"]
        out += [f"| `{f.stem}` | {cell(entries(f)[0])} |" for f in files] + [""]
        if group in ("experiment", "tuning", "search"):
            continue  # presets set keys of the groups above; their files say which
        for f in files:
            _, keys = entries(f)
            out += [f"#### {group}={f.stem}", ""]
            schema = option_schema(group, f)
            out += table(keys, schema, f"{group}.", {e.key for e in top}) + [""]
    out += ["## Hydra's sweeper and launchers", ""]
    for kind in ("sweeper", "launcher"):  # rnnexp's own: search=optuna's, hydra/launcher=ray
        for f in sorted((CONF / "hydra" / kind).glob("*.yaml")):
            head, keys = entries(f)
            keys = [e for e in keys if not e.key.startswith("_")]  # Hydra's _target_
            out += [f"### hydra/{kind}={f.stem}", "", head, ""]
            out += table(keys, None, f"hydra.{kind}.") + [""]
    return "\n".join(out)


def results(name: str) -> str:
    """A benchmark's result file as its own table, with where and when it was measured."""
    data = json.loads((ROOT / "docs" / "results" / f"{name}.json").read_text())
    if str(ROOT / "benchmarks") not in sys.path:  # a benchmark imports its sibling `report`
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    caption = f"`{data['command']}` · {data['machine']} · {data['date']}"
    return f"{module.table(data)}\n\n{caption}\n"


def on_page_markdown(markdown: str, **_: object) -> str:
    def fill(m: re.Match) -> str:
        return config_reference() if m[1] == "reference" else results(m[2])

    return MARK.sub(fill, markdown)
