"""Output file naming: a template that can never write outside the output folder.

A chart's ``naming`` template (``"{client}/{shoot}/{rendition}/{seq:03d}_{stem}.{ext}"``)
is checked twice. When the chart is loaded, :func:`check_template` rejects
anything that could point elsewhere: an absolute path, a drive letter, a ``..``
component, a backslash, a control character, an unknown token or an attribute
lookup such as ``{stem.__class__}``. When a name is rendered,
:func:`render_name` sanitises every token value (a source file called
``../../etc/passwd`` becomes ``etc_passwd``) and checks the result again, so
neither the chart author nor the photographer's file names can escape.
"""

from __future__ import annotations

import re
import string
import unicodedata
from pathlib import Path, PurePosixPath

#: Tokens a naming template may use, with what each one holds.
NAMING_TOKENS: dict[str, str] = {
    "client": "the chart's client name",
    "shoot": "the shoot folder name",
    "date": "the capture date, YYYY-MM-DD",
    "seq": "1-based position of the image in the shoot (integer; '{seq:03d}' pads to 3 digits)",
    "stem": "the source file name without its extension",
    "rendition": "the rendition name (web, print, ...)",
    "ext": "the file extension of the rendition's format, without the dot",
}

# Only {seq} takes a format spec, and only zero padding: anything richer (fill
# characters, widths of 100) is a way to smuggle text into a path.
_SEQ_SPEC = re.compile(r"^0[1-9]d?$")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
MAX_TOKEN_CHARS = 120
MAX_COMPONENT_CHARS = 255


class NamingTemplateError(ValueError):
    """A naming template is malformed or could write outside the output folder."""


def _parse(template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(string.Formatter().parse(template))
    except ValueError as exc:  # unbalanced braces
        raise NamingTemplateError(f"malformed template ({exc}); write literal braces as '{{{{' and '}}}}'") from None


def check_template(template: str) -> tuple[str, ...]:
    """Check a naming template and return the tokens it uses, in order.

    Parameters
    ----------
    template : str
        A relative POSIX path with ``{token}`` fields, e.g.
        ``"{shoot}/{rendition}/{stem}.{ext}"``.

    Returns
    -------
    tuple of str
        The token names used.

    Raises
    ------
    NamingTemplateError
        If the template is empty, absolute, contains a ``..`` or empty path
        component, a backslash or control character, an unknown token, a
        format spec other than zero padding on ``{seq}``, a conversion
        (``!r``), or if its last component does not end with ``.{ext}``.
    """
    if not isinstance(template, str) or not template.strip():
        raise NamingTemplateError("the naming template is empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in template):
        raise NamingTemplateError("the naming template contains a control character (NUL, newline, ...)")
    if "\\" in template:
        raise NamingTemplateError("backslashes are not allowed; separate folders with '/'")
    if template.startswith("/") or template.startswith("~"):
        raise NamingTemplateError("the naming template must be a relative path inside the output folder")
    if re.match(r"^[A-Za-z]:", template):
        raise NamingTemplateError("drive letters are not allowed; the name is relative to the output folder")
    for component in template.split("/"):
        if component in ("", ".", ".."):
            shown = component or "(empty)"
            raise NamingTemplateError(f"path component {shown!r} is not allowed; each folder must have a name")
    tokens: list[str] = []
    for _literal, field, spec, conversion in _parse(template):
        if field is None:
            continue
        if field not in NAMING_TOKENS:
            known = ", ".join("{" + t + "}" for t in NAMING_TOKENS)
            raise NamingTemplateError(f"unknown token {{{field}}} (known tokens: {known})")
        if conversion:
            raise NamingTemplateError(f"conversion '!{conversion}' on {{{field}}} is not allowed")
        if spec and not (field == "seq" and _SEQ_SPEC.match(spec)):
            raise NamingTemplateError(
                f"format spec ':{spec}' on {{{field}}} is not allowed (only zero padding on seq, e.g. {{seq:03d}})"
            )
        tokens.append(field)
    if not template.split("/")[-1].endswith(".{ext}"):
        raise NamingTemplateError("the file name must end with '.{ext}' so the extension matches the format")
    return tuple(tokens)


def sanitize_token(value: object) -> str:
    """Make a token value safe to use inside one path component.

    Accents are folded to ASCII (``Lumière`` -> ``Lumiere``), every run of
    characters outside ``A-Z a-z 0-9 . _ -`` becomes one ``_`` (so ``/`` and
    ``\\`` cannot start a new folder), leading and trailing dots are
    dropped (no hidden files, no ``..``, no Windows trailing dot) and the result is cut to
    :data:`MAX_TOKEN_CHARS`. An empty result becomes ``_``.
    """
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = _UNSAFE_CHARS.sub("_", text)
    return text[:MAX_TOKEN_CHARS].strip(".") or "_"


def render_name(template: str, **tokens: object) -> str:
    """Render a naming template into a relative POSIX path.

    Parameters
    ----------
    template : str
        A template accepted by :func:`check_template`.
    **tokens
        Values for the tokens the template uses (``client``, ``shoot``,
        ``date``, ``seq``, ``stem``, ``rendition``, ``ext``); extra ones are
        ignored. Each value is sanitised with :func:`sanitize_token`.

    Returns
    -------
    str
        A relative path with ``/`` separators that stays inside the output folder.

    Raises
    ------
    NamingTemplateError
        If the template is invalid, a token it uses has no value, ``seq`` is
        not an integer, or (defence in depth) the rendered path would still
        leave the output folder.
    """
    check_template(template)
    parts: list[str] = []
    for literal, field, spec, _conversion in _parse(template):
        parts.append(literal)
        if field is None:
            continue
        if field not in tokens or tokens[field] is None:
            raise NamingTemplateError(f"token {{{field}}} has no value")
        value = tokens[field]
        if field == "seq":
            if isinstance(value, bool) or not isinstance(value, int):
                raise NamingTemplateError(f"token {{seq}} must be an integer, got {value!r}")
            value = format(value, spec or "d")
        parts.append(sanitize_token(value))
    rendered = "".join(parts)
    components = rendered.split("/")
    for i, component in enumerate(components):
        if component in ("", ".", ".."):
            raise NamingTemplateError(f"rendered name {rendered!r} has an empty or dot path component")
        if component.split(".")[0].upper() in _WINDOWS_RESERVED:
            components[i] = "_" + component
        if len(components[i].encode()) > MAX_COMPONENT_CHARS:
            raise NamingTemplateError(f"rendered path component is longer than {MAX_COMPONENT_CHARS} bytes")
    rendered = "/".join(components)
    if PurePosixPath(rendered).is_absolute():
        raise NamingTemplateError(f"rendered name {rendered!r} is absolute")
    return rendered


def output_path(out_dir: Path | str, template: str, **tokens: object) -> Path:
    """The file an export writes: ``out_dir / render_name(template, **tokens)``.

    Raises
    ------
    NamingTemplateError
        As :func:`render_name`, or if the resolved path is not inside
        ``out_dir`` (a symlinked sub-folder pointing elsewhere, for instance).
    """
    root = Path(out_dir).resolve()
    path = (root / render_name(template, **tokens)).resolve()
    if not path.is_relative_to(root):
        raise NamingTemplateError(f"{path} is outside the output folder {root}")
    return path
