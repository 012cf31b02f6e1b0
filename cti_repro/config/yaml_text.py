"""Reading YAML that a user wrote: ``_config.yml`` and ``--set`` values, bounded and with one-line errors.

PyYAML builds whatever a document describes: aliases make a 335-character text stand for 10^7
leaves (an "expansion bomb"), which ``dataclasses.asdict`` and the config hash then walk. Here the
composed node graph is measured before anything is constructed: its expanded size (every alias
counted as often as it is used) must stay under :data:`MAX_EXPANDED_NODES`, and a self-referencing
alias is refused. ``--set`` values refuse aliases outright (a one-line value needs none); the
config file keeps them, since its profiles share sections with anchors and ``<<:`` merges.

Errors are :class:`~cti_repro.config.schema.ConfigError` naming the file (or the ``--set`` key),
the line and the column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from cti_repro.config.schema import ConfigError

# The repository's _config.yml expands to ~1,000 nodes; a hundred times that is still read in
# milliseconds, while a bomb's 10^7 leaves are refused before they exist.
MAX_EXPANDED_NODES = 100_000


def _where(where: str, mark: Any) -> str:
    """``file:line:column`` (1-based) when the mark is known, else ``file``."""
    return f"{where}:{mark.line + 1}:{mark.column + 1}" if mark is not None else where


def _expanded_size(root: Node, where: str) -> int:
    """Nodes of ``root`` once every alias is expanded (memoised per node, so linear in the graph).

    Raises:
        ConfigError: the size passes :data:`MAX_EXPANDED_NODES`, or an alias refers to a node that
            contains it (an endless document).
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ConfigError(f"{_where(where, node.start_mark)}: an alias refers to a node that contains it "
                              "(the document would never end)")
        open_nodes.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_nodes.discard(key)
        if total > MAX_EXPANDED_NODES:
            raise ConfigError(f"{_where(where, node.start_mark)}: expands to more than {MAX_EXPANDED_NODES:,} "
                              "values (YAML aliases repeated inside each other); write the values out")
        sizes[key] = total
        return total

    return size(root)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases (for one-line ``--set`` values)."""

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            raise ConfigError(f"{_where(self._cti_where, self.peek_event().start_mark)}: YAML aliases (*name) are "
                              "not accepted in --set values; write the value out")
        return super().compose_node(parent, index)


def load_yaml(text: str, where: str, aliases: bool = True) -> Any:
    """Parse one YAML document safely (``yaml.safe_load`` types), bounded in expanded size.

    Args:
        text: the YAML text.
        where: what errors name: a file path, or ``--set KEY``.
        aliases: accept anchors and aliases (the config file); False refuses them (``--set``).

    Returns:
        The document's value (None for an empty document).

    Raises:
        ConfigError: invalid YAML (with line and column), a refused alias, or a document whose
            expansion passes :data:`MAX_EXPANDED_NODES`.
    """
    loader = (yaml.SafeLoader if aliases else _NoAliasLoader)(text)
    loader._cti_where = where  # type: ignore[attr-defined]
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, where)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(f"{exc.context or ''} {exc.problem or ''}".split()) or "not valid YAML"
        raise ConfigError(f"{_where(where, mark)}: not valid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to be a config") from None
    finally:
        loader.dispose()


def read_yaml_file(path: Path) -> Any:
    """``load_yaml`` of a UTF-8 file; a file that cannot be read is one ConfigError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return load_yaml(text, str(path))


def read_config_mapping(path: Path) -> dict[str, Any]:
    """The top level of a study config file: a mapping (``defaults``, ``profiles``, ``ablations``).

    Raises:
        ConfigError: unreadable, invalid YAML, or a top level that is not a mapping.
    """
    raw = read_yaml_file(path)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping with 'defaults' and 'profiles', "
                          f"got a {type(raw).__name__}")
    return raw


__all__ = ["MAX_EXPANDED_NODES", "load_yaml", "read_yaml_file", "read_config_mapping"]
