"""YAML loading that remembers where every key was written.

Pydantic reports a validation error as a path of keys (``loc``); the loader
below records the line of every mapping key and sequence item so the error can
name ``file:line`` as well as the key, the way a compiler would.
"""

from __future__ import annotations

import binascii
import re
import types
import typing
import unicodedata
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.kernel.errors import ConfigError, Location

KeyPath = tuple[str | int, ...]


#: Largest configuration file read, in bytes: charts and graphs are a few KB.
MAX_YAML_BYTES = 1 << 20
#: Deepest nesting of mappings and lists (a chart needs 4).
MAX_DEPTH = 32
#: Most aliases (``*name``) in one file.
MAX_ALIASES = 100
#: Most values a document may expand to once aliases repeat their anchors (a chart has a few hundred).
MAX_NODES = 20_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
# C0 and C1 controls (but tab, newline, carriage return), DEL, surrogates, the non-characters U+FFFE/FFFF,
# and the bidirectional overrides and isolates that make text display in another order than it reads
# ("Trojan Source", CVE-2021-42574). A byte-order mark is allowed at the very start only.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff"
                        "\u202a-\u202e\u2066-\u2069\ufeff]")


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate and non-scalar keys, deep nesting, alias loops and too many aliases."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._open_anchors: set[str] = set()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases (*name) in one file", event.start_mark
                )
            if event.anchor in self._open_anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"alias *{event.anchor} is inside the value it refers to (a loop)", event.start_mark
                )
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark
            )
        anchor = getattr(event, "anchor", None)
        if anchor:
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor:
                self._open_anchors.discard(anchor)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError, AttributeError, binascii.Error) as exc:
            # A tagged or implicitly typed value PyYAML cannot build: 2020-13-45, !!int '1.5', !!timestamp x
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read the value {node.value!r}: {exc}", node.start_mark
            ) from None


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # `<<: *defaults`: merged keys may be overridden by the ones written here
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a name, not a list or a mapping (`? [a, b]` or `[a, b]: ...`)",
                key_node.start_mark,
            )
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values ``node`` stands for once every alias is replaced by its anchor's value (memoised by node)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    n = 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            n += _expanded_size(k, sizes) + _expanded_size(v, sizes)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            n += _expanded_size(v, sizes)
    sizes[id(node)] = n
    if n > MAX_NODES:
        raise yaml.composer.ComposerError(
            None, None,
            f"this value expands to more than {MAX_NODES} values once its aliases are repeated (an alias bomb?)",
            node.start_mark,
        )
    return n


def _bad_character(text: str) -> tuple[int, int, str] | None:
    """(line, column, description) of the first character a configuration file must not hold."""
    match = _FORBIDDEN.search(text, 1 if text.startswith("\ufeff") else 0)
    if match is None:
        return None
    c = match.group()
    line = text.count("\n", 0, match.start()) + 1
    column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
    name = unicodedata.name(c, "a control character")
    return line, column, f"U+{ord(c):04X} ({name})"


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

    The file must be at most :data:`MAX_YAML_BYTES`, UTF-8, free of control,
    bidirectional-override and other non-printable characters, nested at most
    :data:`MAX_DEPTH` deep, with at most :data:`MAX_ALIASES` aliases that
    expand to at most :data:`MAX_NODES` values and never into themselves, and
    its keys must be plain names (no ``? [a, b]``): whatever it holds, a
    configuration file gives data or a :class:`ConfigError`, never a crash.

    Raises
    ------
    ConfigError
        If the file cannot be read, breaks one of the limits above or is not
        valid YAML; the message names the line (and column) of the problem.
    """
    path = Path(path)
    if text is None:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_YAML_BYTES + 1)
        except FileNotFoundError:
            raise ConfigError("file not found", Location(path)) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read: {exc}", Location(path)) from None
        if len(data) > MAX_YAML_BYTES:
            raise ConfigError(f"the file is larger than {MAX_YAML_BYTES // 1024} KB; is it a chart?", Location(path))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise ConfigError(f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
                              Location(path, line)) from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise ConfigError(f"the file is larger than {MAX_YAML_BYTES // 1024} KB; is it a chart?", Location(path))
    bad = _bad_character(text)
    if bad is not None:
        line, column, what = bad
        raise ConfigError(f"column {column}: the character {what} is not allowed in a configuration file; "
                          "retype the line", Location(path, line))
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _expanded_size(node, {})
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        raise ConfigError(f"YAML syntax error: {problem}", Location(path, line)) from None
    except yaml.YAMLError as exc:  # a reader error: an odd character the check above let through
        raise ConfigError(f"YAML error: {exc}", Location(path)) from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return YamlDocument(path, data, lines)


def unwrap_model(annotation: Any) -> Any:
    """The model class inside ``X | None``, ``list[X]`` or ``dict[str, X]``, else the annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return unwrap_model(args[0])
    return annotation


def fields_at(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """Field names of the model found at ``loc`` (for spelling suggestions)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = unwrap_model(field.annotation)
        elif typing.get_origin(current) in (list, dict):
            current = unwrap_model(typing.get_args(current)[-1])
        else:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def shown_value(value: Any) -> str:
    """A value a person wrote, as they would recognise it: "a list ['web']", "the number 5"."""
    kind = ("a list" if isinstance(value, list) else "a section" if isinstance(value, dict)
            else "the text" if isinstance(value, str) else "nothing" if value is None
            else "the number" if isinstance(value, (int, float)) and not isinstance(value, bool) else "the value")
    text = repr(value)
    return kind if value is None else f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


def got(err: Any) -> str:
    """``", got the text 'high'"``: what a person wrote, after one of pydantic's own messages ("Input should be a
    valid number"), which do not say; nothing after postprod's own checks (they do) or for a section or a list."""
    value = err.get("input")
    if err["type"] in ("value_error", "assertion_error") or "input" not in err or isinstance(value, (dict, list)):
        return ""
    return f", got {shown_value(value)}"


def validation_error(exc: ValidationError, doc: YamlDocument, prefix: KeyPath = (),
                     model: type[BaseModel] | None = None) -> ConfigError:
    """Turn the first pydantic error into a :class:`ConfigError` with file, line and key.

    ``prefix`` is the key path, inside ``doc``, of the mapping that was validated; ``model``, the model it was
    validated against (an unknown key's row then lists the keys allowed there).
    """
    messages = []
    first_loc: Location | None = None
    for err in exc.errors():
        loc = prefix + tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        where = doc.location(loc)
        first_loc = first_loc or where
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            fields = [] if model is None else fields_at(model, loc[len(prefix):-1])
            msg = (f"unknown key (the keys here: {', '.join(fields)})" if fields
                   else "unknown key (not allowed here; check the spelling)")
        else:
            msg += got(err)
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
        raise validation_error(exc, doc, prefix, model) from None
