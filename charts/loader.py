"""Find a chart, follow its ``extends`` chain, migrate, merge and validate it.

Charts stack like RawTherapee's partial ``.pp3`` profiles: a client chart
states only what differs from its specialty, which states only what differs
from the base. Merging is a deep merge of mappings in which the later file
wins, a list replaces the inherited list as a whole (a client listing two
crops wants exactly those two), and ``null`` removes an inherited key so the
model's default applies (``renditions: {print: null}`` drops a rendition).

Every file is migrated to the current schema on its own, before merging, so a
v1 specialty can sit under a v2 client. The merge remembers, for every key
path of the result, which file wrote it last, so a validation error after
merging still names the file, the line and the key the author has to edit.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from charts.schema import CHART_SCHEMA_VERSION, Chart, ChartRuleError, migrate
from pipeline.imaging.watermark import default_font_path, load_font, load_mark_image, missing_glyphs
from pipeline.kernel.errors import ConfigError, Location
from pipeline.kernel.yamlconf import KeyPath, YamlDocument, fields_at, got, load_yaml, shown_value

#: The charts that ship with postprod.
BUNDLED_DIR = Path(__file__).resolve().parent
#: Extra folders searched before the bundled charts, separated by os.pathsep.
CHART_PATH_ENV = "POSTPROD_CHART_PATH"
MAX_CHAIN = 16
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ChartEntry:
    """A chart file found in the search folders."""

    name: str
    path: Path


@dataclass(frozen=True)
class ResolvedChart:
    """A chart with its ``extends`` chain merged and validated.

    Attributes
    ----------
    name : str
        The requested chart's name (its file stem).
    chart : Chart
        The validated, merged chart (``extends`` is None).
    chain : tuple of Path
        The files it was merged from, base first, the requested file last.
    """

    name: str
    chart: Chart
    chain: tuple[Path, ...]

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of the resolved chart's content: what the journal and the instructions record."""
        text = json.dumps(self.chart.model_dump(mode="json"), sort_keys=True, default=str)
        return hashlib.sha256(text.encode() + b"\0").hexdigest()

    def to_yaml(self) -> str:
        """The resolved chart as a standalone YAML document.

        The output has no ``extends`` and validates as it is
        (``postprod charts validate``), so it can be archived with a delivery
        as the exact standard that was applied.
        """
        data = self.chart.model_dump(mode="json", exclude={"extends"})
        header = (
            f"# Chart '{self.name}', resolved by `postprod charts show`.\n"
            f"# Merged from: {' -> '.join(str(p) for p in self.chain)}\n"
        )
        return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


class MergedDocument(YamlDocument):
    """The merge of several YAML documents that still knows where each key came from.

    Parameters
    ----------
    data : Any
        The merged value.
    origins : dict
        Merged key path -> the document that wrote it last.
    leaf : YamlDocument
        The requested file (used when nothing more precise is known).
    """

    def __init__(self, data: Any, origins: dict[KeyPath, YamlDocument], leaf: YamlDocument) -> None:
        super().__init__(leaf.path, data, {})
        self.origins = origins
        self.leaf = leaf

    def origin(self, path: KeyPath) -> YamlDocument:
        """The document that wrote ``path`` (or its nearest written ancestor)."""
        path = tuple(path)
        while path:
            if path in self.origins:
                return self.origins[path]
            path = path[:-1]
        return self.origins.get((), self.leaf)

    def line_of(self, path: KeyPath) -> int | None:
        return self.origin(path).line_of(path)

    def location(self, path: KeyPath) -> Location:
        return self.origin(path).location(path)


# --- merging -----------------------------------------------------------------


def _claim(value: Any, path: KeyPath, doc: YamlDocument, origins: dict[KeyPath, YamlDocument]) -> None:
    origins[path] = doc
    if isinstance(value, dict):
        for k, v in value.items():
            _claim(v, path + (str(k),), doc, origins)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _claim(v, path + (i,), doc, origins)


def _drop(path: KeyPath, origins: dict[KeyPath, YamlDocument]) -> None:
    n = len(path)
    for p in [p for p in origins if p[:n] == path]:
        del origins[p]


def _merge_into(
    base: dict[str, Any], over: dict[str, Any], doc: YamlDocument, path: KeyPath, origins: dict[KeyPath, YamlDocument]
) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        key = str(key)
        child = path + (key,)
        if value is None and key in out:
            # null removes the inherited key: the model's default applies.
            del out[key]
            _drop(child, origins)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            origins[child] = doc
            out[key] = _merge_into(out[key], value, doc, child, origins)
        else:
            _drop(child, origins)
            out[key] = copy.deepcopy(value)
            _claim(value, child, doc, origins)
    return out


def merge_documents(layers: list[tuple[YamlDocument, dict[str, Any]]]) -> MergedDocument:
    """Deep-merge chart documents, base first.

    Parameters
    ----------
    layers : list of (YamlDocument, dict)
        Each file with its (migrated) data, base first; later ones win.

    Returns
    -------
    MergedDocument
        The merged data with the origin of every key path.

    Raises
    ------
    ValueError
        If ``layers`` is empty.
    """
    if not layers:
        raise ValueError("nothing to merge")
    origins: dict[KeyPath, YamlDocument] = {}
    merged: dict[str, Any] = {}
    for doc, data in layers:
        origins[()] = doc
        merged = _merge_into(merged, data, doc, (), origins)
    return MergedDocument(merged, origins, layers[-1][0])


# --- finding files -----------------------------------------------------------


def default_search_dirs() -> list[Path]:
    """Folders named in ``POSTPROD_CHART_PATH``, then the bundled charts."""
    extra = [Path(p) for p in os.environ.get(CHART_PATH_ENV, "").split(os.pathsep) if p]
    return [*extra, BUNDLED_DIR]


def _is_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml"))


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where the path cannot even be asked about (too long, a NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _find(
    ref: str, search_dirs: list[Path], *, near: Path | None = None, exclude: Path | None = None,
    where: Location | None = None, as_path: bool = False,
) -> Path:
    """Resolve a chart name or path to a file.

    A path is relative to ``near`` (the folder of the chart that extends it)
    or to the working directory. A name is looked up next to the extending
    chart first, then in ``search_dirs``; ``exclude`` (the extending file
    itself) is skipped so a local ``culinary.yaml`` can extend the bundled one.
    """
    if as_path or _is_path(ref):
        path = Path(ref).expanduser()
        if not path.is_absolute() and near is not None:
            path = near / path
        if not _is_file(path):
            what = "parent chart" if near is not None else "chart"
            raise ConfigError(f"{what} file '{ref}' not found (looked for {path})", where or Location(path))
        return path
    if not _NAME.match(ref):
        raise ConfigError(f"'{ref}' is not a chart name (letters, digits, '_', '-', '.')", where)
    dirs = ([near] if near is not None else []) + [d for d in search_dirs if d != near]
    for d in dirs:
        for suffix in (".yaml", ".yml"):
            candidate = d / f"{ref}{suffix}"
            if _is_file(candidate) and (exclude is None or candidate.resolve() != exclude):
                return candidate
    searched = ", ".join(str(d) for d in dirs)
    what = "parent chart" if near is not None else "chart"
    known = sorted({p.stem for d in dirs if d.is_dir() for p in [*d.glob("*.yaml"), *d.glob("*.yml")]})
    close = difflib.get_close_matches(ref, known, n=3, cutoff=0.6) or difflib.get_close_matches(
        ref.lower(), [k.lower() for k in known], n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise ConfigError(f"{what} '{ref}' not found ({hint}searched {searched}; see `postprod charts list`)", where)


def list_charts(search_dirs: list[Path | str] | None = None) -> list[ChartEntry]:
    """The charts available by name, sorted; a name found twice resolves to the first folder.

    Raises
    ------
    ConfigError
        Never; unreadable folders are skipped.
    """
    dirs = [Path(d) for d in search_dirs] if search_dirs is not None else default_search_dirs()
    found: dict[str, ChartEntry] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            found.setdefault(path.stem, ChartEntry(path.stem, path))
    return [found[name] for name in sorted(found)]


# --- errors ------------------------------------------------------------------


#: The errors one message names (a chart with more is told how many more).
MAX_ERRORS_NAMED = 5


def chart_validation_error(exc: ValidationError, doc: YamlDocument) -> ConfigError:
    """Turn pydantic's errors into a ConfigError at the first one's file, line and key, naming the others too.

    A :class:`~charts.schema.ChartRuleError` raised by a cross-field check
    carries the key it is about; it is appended to pydantic's location so the
    error points at that key rather than at the enclosing section. The errors
    are told in the order of their lines, those after the first with their
    line and key ("; also line 6, key 'exposure.tolerance_ev': ..."), up to
    :data:`MAX_ERRORS_NAMED`: a chart is mended in one go, not one run per
    mistake.
    """
    described = sorted((_describe(err) for err in exc.errors()), key=lambda d: doc.location(d[0]).line or 1 << 30)
    loc, message = described[0]
    others = [f"line {doc.location(k).line}, key '{doc.location(k).key}': {m}"
              for k, m in described[1:MAX_ERRORS_NAMED]]
    if others:
        message += "".join(f"; also {o}" for o in others)
    if len(described) > MAX_ERRORS_NAMED:
        message += f" (and {len(described) - MAX_ERRORS_NAMED} more)"
    return ConfigError(" ".join(message.split()), doc.location(loc))


def _describe(err: Any) -> tuple[KeyPath, str]:
    """One pydantic error of a chart: its key path and what to tell a person."""
    loc: KeyPath = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, ChartRuleError):
        return loc + cause.path, str(cause)
    if err["type"] == "extra_forbidden":
        fields = fields_at(Chart, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        hint = (f"did you mean '{close[0]}'?" if close else f"the keys here: {', '.join(fields)}" if fields
                else "check the spelling")
        return loc, f"unknown key ({hint})"
    if err["type"] in ("model_type", "dict_type", "model_attributes_type"):
        fields = fields_at(Chart, loc)
        keys = f" of keys ({', '.join(fields)})" if fields else " (one 'name: value' per line)"
        return loc, f"expected a section{keys}, got {shown_value(err.get('input'))}"
    if err["type"] == "list_type":
        return loc, f"expected a list (one '- item' per line), got {shown_value(err.get('input'))}"
    if err["type"] in ("value_error", "assertion_error"):  # postprod's own checks say what they read
        return loc, re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
    return loc, err["msg"] + got(err)


# --- loading -----------------------------------------------------------------


def _read_layer(path: Path) -> tuple[YamlDocument, dict[str, Any], str | None]:
    doc = load_yaml(path)
    if doc.data is None:
        raise ConfigError("the chart is empty (it needs at least `schema_version`)", doc.location(()))
    if not isinstance(doc.data, dict):
        raise ConfigError("a chart must be a mapping of keys (schema_version, exposure, ...)", doc.location(()))
    try:
        data = migrate(doc.data)
    except ValueError as exc:
        where = doc.location(("schema_version",))
        if "schema_version" not in doc.data:
            where = Location(doc.path, doc.line_of(()), "schema_version")
        raise ConfigError(str(exc), where) from None
    data = dict(data)
    _resolve_files(data, Path(str(doc.path)).parent)
    parent = data.pop("extends", None)
    if parent is not None and (not isinstance(parent, str) or not parent.strip()):
        raise ConfigError("extends must be a chart name or a relative path", doc.location(("extends",)))
    return doc, data, parent


#: The keys of a rendition's watermark that name a file: a path in them is relative to the chart file that writes it.
WATERMARK_FILES = ("image", "font")


def _resolve_files(data: dict[str, Any], folder: Path) -> None:
    """Make the files a chart layer names (a CMYK profile, a watermark's logo and font) absolute, against ``folder``
    (the layer's own folder: a client chart's logo lies beside the client chart, whichever chart extends it).
    Malformed sections are left as they are, for validation to name."""
    renditions = data.get("renditions")
    if not isinstance(renditions, dict):
        return

    def resolved(value: str) -> str:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (folder / path).resolve())

    for rendition in renditions.values():
        if not isinstance(rendition, dict):
            continue
        profile = rendition.get("cmyk_profile")
        if isinstance(profile, str) and profile.strip():
            rendition["cmyk_profile"] = resolved(profile)
        mark = rendition.get("watermark")
        if not isinstance(mark, dict):
            continue
        for key in WATERMARK_FILES:
            value = mark.get(key)
            if isinstance(value, str) and value.strip():
                mark[key] = resolved(value)


def _check_files(chart: Chart, doc: MergedDocument) -> None:
    """Read the files the chart names (a watermark's logo, its font) before any work: a missing logo found at the
    first export would fail every image of the shoot."""
    for name, rendition in chart.renditions.items():
        if rendition.cmyk_profile is not None:
            from pipeline.outputs.cmyk import cmyk_profile_bytes

            try:
                cmyk_profile_bytes(rendition.cmyk_profile)
            except (OSError, ValueError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
                raise ConfigError(f"the CMYK profile {rendition.cmyk_profile} cannot be used: {why}",
                                  doc.location(("renditions", name, "cmyk_profile"))) from None
        mark = rendition.watermark
        if mark is None:
            continue
        for key, path in (("image", mark.image), ("font", mark.font)):
            if path is None:
                continue
            try:
                if key == "image":
                    load_mark_image(path)
                else:
                    load_font(path, 12)
            except (OSError, ValueError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
                what = "logo" if key == "image" else "font"
                raise ConfigError(f"the watermark's {what} {path} cannot be read: {why}",
                                  doc.location(("renditions", name, "watermark", key))) from None
        missing = "" if mark.text is None else missing_glyphs(mark.text, mark.font)
        if missing:
            font = mark.font or default_font_path() or "the font Pillow ships"
            raise ConfigError(
                f"the watermark's font ({font}) has no glyph for {', '.join(repr(c) for c in missing)}: it would "
                "draw a box; name a font file that has them (watermark: font: path/to/font.ttf)",
                doc.location(("renditions", name, "watermark", "text")))


def load_chart(name_or_path: str | Path, search_dirs: list[Path | str] | None = None) -> ResolvedChart:
    """Load a chart by name or path, resolving its ``extends`` chain.

    Parameters
    ----------
    name_or_path : str or Path
        A chart name (``"culinary"``, looked up in ``search_dirs``) or a path
        to a YAML file (a :class:`~pathlib.Path`, or a string containing ``/``
        or ending in ``.yaml``/``.yml``).
    search_dirs : list of path-like, optional
        Folders to look names up in; default :func:`default_search_dirs`
        (``POSTPROD_CHART_PATH``, then the bundled charts).

    Returns
    -------
    ResolvedChart
        The validated chart and the files it was merged from.

    Raises
    ------
    ConfigError
        Naming file, line and key, for: a missing file or parent, a YAML
        syntax error, a missing or unknown ``schema_version``, an inheritance
        cycle (the message lists it), an unknown key, an out-of-range value,
        or a bad naming template.
    """
    dirs = [Path(d) for d in search_dirs] if search_dirs is not None else default_search_dirs()
    path = _find(str(name_or_path), dirs, as_path=isinstance(name_or_path, Path))
    layers: list[tuple[YamlDocument, dict[str, Any]]] = []
    seen: dict[Path, int] = {}
    while True:
        real = path.resolve()
        if real in seen:
            cycle = [str(doc.path) for doc, _ in layers[seen[real]:]] + [str(path)]
            last = layers[-1][0]
            raise ConfigError(f"inheritance cycle: {' -> '.join(cycle)}", last.location(("extends",)))
        if len(layers) >= MAX_CHAIN:
            raise ConfigError(f"more than {MAX_CHAIN} charts in the extends chain", layers[-1][0].location(("extends",)))
        doc, data, parent = _read_layer(path)
        seen[real] = len(layers)
        layers.append((doc, data))
        if parent is None:
            break
        path = _find(parent, dirs, near=path.parent, exclude=real, where=doc.location(("extends",)))
    layers.reverse()
    merged = merge_documents(layers)
    merged.data["schema_version"] = CHART_SCHEMA_VERSION
    try:
        chart = Chart.model_validate(merged.data)
    except ValidationError as exc:
        raise chart_validation_error(exc, merged) from None
    _check_files(chart, merged)
    return ResolvedChart(Path(str(layers[-1][0].path)).stem, chart, tuple(doc.path for doc, _ in layers))
