"""What rnnexp reads from outside (a preset of --config-dir, a received run folder's
config, an artifact download) bounded before it is read: a YAML file in bytes, depth and the
nodes its aliases expand to (a "billion laughs" of ten aliases ten deep is 10^10 nodes to
Hydra, 100 lines to YAML); a download in bytes. A file past a bound is one line, at once.
"""

from __future__ import annotations

from pathlib import Path

from rnnexp.errors import RnnexpError

MAX_YAML_BYTES = 1 << 20  # a config is a few KB; its largest value, a prime text, a few more
MAX_YAML_NODES = 100_000  # scalars, lists and mappings, each alias counted where it is used
MAX_YAML_DEPTH = 100  # nesting


def check_yaml(path: Path) -> None:
    """Refuse a YAML file that is no regular file, or past the bounds; a malformed one is
    left to its reader, whose error names the line."""
    import yaml

    if not path.is_file():
        if path.exists():  # a FIFO, a device: reading it would wait or never end
            raise RnnexpError(f"{path} is not a regular file")
        return
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise RnnexpError(f"{path} is {size:,} bytes; a config file is at most "
                          f"{MAX_YAML_BYTES:,}")  # fmt: skip
    try:
        root = yaml.compose(path.read_bytes(), Loader=yaml.SafeLoader)  # linear: aliases shared
    except yaml.YAMLError:
        return
    except RecursionError:  # YAML's reader recurses once a level
        raise RnnexpError(f"{path} nests deeper than a config can (over "
                          f"{MAX_YAML_DEPTH} levels)") from None  # fmt: skip
    if root is not None:
        nodes, depth = _expanded(root)
        if nodes < 0:
            raise RnnexpError(f"{path} contains itself through an alias (*name): a config "
                              f"cannot")  # fmt: skip
        if nodes > MAX_YAML_NODES or depth > MAX_YAML_DEPTH:
            raise RnnexpError(f"{path} holds {nodes:,} values {depth} deep, each alias (*name) "
                              f"counted where it is used; a config has at most "
                              f"{MAX_YAML_NODES:,}, {MAX_YAML_DEPTH} deep")  # fmt: skip


def _expanded(root) -> tuple[int, int]:
    """(the nodes a YAML graph expands to, its depth), each alias counted as a copy of what
    it names, by a walk that visits each node once; (-1, -1) for a node that contains itself."""
    import yaml

    sizes: dict[int, tuple[int, int]] = {}
    stack, open_ = [(root, False)], set()
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            if id(node) in open_:  # reached again inside itself: a recursive alias
                return -1, -1
            open_.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        open_.discard(id(node))
        count = 1 + sum(sizes[id(c)][0] for c in children)
        depth = 1 + max((sizes[id(c)][1] for c in children), default=0)
        sizes[id(node)] = (min(count, 10**18), depth)
    return sizes[id(root)]


def check_config_dir(folder: Path) -> None:
    """Every YAML file of a user's --config-dir, bounded, before Hydra composes any; none may
    set Hydra's own logging, whose files Hydra opens before anything is checked."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise RnnexpError(f"--config-dir {folder.resolve()}: {what}")
    for path in sorted(folder.rglob("*.yaml")):
        check_yaml(path)
        if "hydra_logging" in path.read_text(errors="replace") or (
                path.parent.name == "hydra_logging"):  # fmt: skip
            raise RnnexpError(f"{path} sets Hydra's own logging, which is rnnexp's: Hydra "
                              f"opens its files before any check")  # fmt: skip
