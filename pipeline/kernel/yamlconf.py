"""YAML loading that remembers where every key was written.

Pydantic reports a validation error as a path of keys (``loc``); the loader
below records the line of every mapping key and sequence item so the error can
name ``file:line`` as well as the key, the way a compiler would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.kernel.errors import ConfigError, Location

KeyPath = tuple[str | int, ...]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and records key lines."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _index_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = path + (str(key_node.value),)
            lines[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, path + (i,), lines)


class YamlDocument:
    """A parsed YAML file with the line of every key path.

    Parameters
    ----------
    path : Path
        The file that was read (used in error messages).
    data : Any
        The plain Python value of the document.
    lines : dict
        Key path (tuple of keys and list indices) -> 1-based line number.
    """

    def __init__(self, path: Path | str, data: Any, lines: dict[KeyPath, int]) -> None:
        self.path = Path(path)
        self.data = data
        self.lines = lines

    def line_of(self, path: KeyPath) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def location(self, path: KeyPath) -> Location:
        return Location(self.path, self.line_of(path), ".".join(str(p) for p in path) or None)


def load_yaml(path: Path | str, text: str | None = None) -> YamlDocument:
    """Read a YAML file, keeping key lines.

    Raises
    ------
    ConfigError
        If the file cannot be read or is not valid YAML; the message names the
        line and column of the syntax error.
    """
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("file not found", Location(path)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read: {exc}", Location(path)) from None
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        raise ConfigError(f"YAML syntax error: {problem}", Location(path, line)) from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return YamlDocument(path, data, lines)


def validation_error(exc: ValidationError, doc: YamlDocument, prefix: KeyPath = ()) -> ConfigError:
    """Turn the first pydantic error into a :class:`ConfigError` with file, line and key.

    ``prefix`` is the key path, inside ``doc``, of the mapping that was validated.
    """
    messages = []
    first_loc: Location | None = None
    for err in exc.errors():
        loc = prefix + tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        where = doc.location(loc)
        first_loc = first_loc or where
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here; check the spelling)"
        messages.append(f"{where}: {msg}")
    message = messages[0] if len(messages) == 1 else "; ".join(messages)
    return ConfigError(message.split(": ", 1)[1] if len(messages) == 1 else message, first_loc)


def validate(model: type[BaseModel], doc: YamlDocument, data: Any = None, prefix: KeyPath = ()) -> BaseModel:
    """Validate ``data`` (default: the whole document) against ``model``.

    Raises
    ------
    ConfigError
        Naming the file, line and key of the first invalid value.
    """
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as exc:
        raise validation_error(exc, doc, prefix) from None
