"""Output file naming: a template that can never write outside the output folder.

A chart's ``naming`` template (``"{client}/{shoot}/{rendition}/{seq:03d}_{stem}.{ext}"``)
is checked twice. When the chart is loaded, :func:`check_template` rejects
anything that could point elsewhere: an absolute path, a drive letter, a ``..``
component, a backslash, a control character, an unknown token or an attribute
lookup such as ``{stem.__class__}``. When a name is rendered,
:func:`render_name` sanitises every token value (a source file called
``../../etc/passwd`` becomes ``etc_passwd``) and checks the result again, so
neither the chart author nor the photographer's file names can escape.

Names are also bounded: every token is cut to its own limit
(:data:`TOKEN_MAX_CHARS`), so :func:`check_template` can add up the longest
each path component can ever be and refuse a template that could exceed the
255 bytes a file system allows per name, when the chart is loaded rather than
after a shoot's worth of rendering. Non-ASCII text is transliterated
(``日本`` -> ``RiBen``, ``Straße`` -> ``Strasse``) with ``anyascii`` (ISC
licence), after Unicode NFC normalisation, so a name is the same bytes
whichever way the source spelled it. Uniqueness of the names a shoot gets is
the job of :func:`safe_stems`.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from anyascii import anyascii

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
#: Longest a file or folder name may be, in bytes (ext4, APFS, NTFS, exFAT: 255).
MAX_COMPONENT_BYTES = 255
MAX_COMPONENT_CHARS = MAX_COMPONENT_BYTES  # the old name
#: Longest a whole rendered name may be, in bytes (far under Linux's 4096 for the full path).
MAX_NAME_BYTES = 1024
#: Longest a naming template may be, in characters.
MAX_TEMPLATE_CHARS = 512
#: Longest each token's value may be once sanitised (ASCII, so characters = bytes). The stem's limit
#: holds its collision suffix too (see :func:`safe_stems`); the shoot and client are cut, which loses
#: nothing since every image shares them.
TOKEN_MAX_CHARS: dict[str, int] = {
    "client": 48,
    "shoot": 48,
    "date": 10,
    "seq": 10,
    "stem": 80,
    "rendition": 40,
    "ext": 4,
}
MAX_TOKEN_CHARS = max(TOKEN_MAX_CHARS.values())


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
    if len(template) > MAX_TEMPLATE_CHARS:
        raise NamingTemplateError(f"the naming template is {len(template)} characters long (at most {MAX_TEMPLATE_CHARS})")
    if any(not c.isprintable() and c != " " for c in template):
        bad = next(c for c in template if not c.isprintable() and c != " ")
        raise NamingTemplateError(
            f"the naming template contains the non-printable character U+{ord(bad):04X} (control, "
            "format or separator characters are not allowed in file names)"
        )
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
    total = 0
    for i, component in enumerate(template.split("/"), 1):
        longest = _longest_bytes(component)
        total += longest + 1
        if longest > MAX_COMPONENT_BYTES:
            raise NamingTemplateError(
                f"path component {i} ({component!r}) can render to {longest} bytes, over the "
                f"{MAX_COMPONENT_BYTES} a file system allows in one name (tokens are up to: "
                + ", ".join(f"{{{t}}} {TOKEN_MAX_CHARS[t]}" for t in NAMING_TOKENS)
                + "); shorten the literal text or split it into folders with '/'"
            )
    if total - 1 > MAX_NAME_BYTES:
        raise NamingTemplateError(f"the template can render to {total - 1} bytes, over the {MAX_NAME_BYTES} allowed")
    return tuple(tokens)


def _longest_bytes(component: str) -> int:
    """The most bytes one template component can render to: its literal text plus each token's limit."""
    n = 1  # render_name may put "_" before a Windows device name (CON, NUL, ...)
    for literal, field, spec, _conversion in _parse(component):
        n += len(literal.encode("utf-8"))
        if field is not None:
            width = int(spec.rstrip("d")) if field == "seq" and spec else 0
            n += max(TOKEN_MAX_CHARS.get(field, MAX_TOKEN_CHARS), width)
    return n


def sanitize_token(value: object, limit: int = MAX_TOKEN_CHARS) -> str:
    """Make a token value safe to use inside one path component.

    The text is NFC-normalised and transliterated to ASCII (``Lumière`` ->
    ``Lumiere``, ``日本`` -> ``RiBen``), every run of characters outside
    ``A-Z a-z 0-9 . _ -`` becomes one ``_`` (so ``/``, ``\\``, newlines and
    other control characters cannot start a new folder or break a caption),
    leading and trailing dots are dropped (no hidden files, no ``..``, no
    Windows trailing dot) and the result is cut to ``limit`` characters. An
    empty result becomes ``_``.
    """
    text = anyascii(unicodedata.normalize("NFC", str(value)))
    text = _UNSAFE_CHARS.sub("_", text)
    return text[:limit].strip(".") or "_"


def _is_reserved(name: str) -> bool:
    return name.split(".")[0].upper() in _WINDOWS_RESERVED


def _short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:n]


def fit_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def safe_stems(
    stems: Sequence[str],
    order: Sequence[object] | None = None,
    alternatives: Callable[[int, int], Sequence[str]] | None = None,
    limit: int = TOKEN_MAX_CHARS["stem"],
) -> list[str]:
    """Export stems for a shoot, safe for a file name and distinct by construction.

    Parameters
    ----------
    stems : sequence of str
        The source stems (``"IMG_0001"``, ``"日本"``, ``"cafe\u0301"``).
    order : sequence, optional
        A sort key per stem: within a group of clashing stems the smallest keeps
        the plain name. Default: the stem itself. Pass something derived from
        the sorted source paths so that reruns give every file the same name.
    alternatives : callable, optional
        ``alternatives(i, first)``: names to try for stem ``i`` before a
        numbered suffix when it clashes with stem ``first``, which keeps the
        plain name (``IMG_0002_jpg`` for the JPEG of a RAW+JPEG pair,
        ``b_IMG_1`` for the same name in folder ``b``). They are sanitised
        like the stems.
    limit : int
        Longest stem in characters (ASCII), suffix included.

    Returns
    -------
    list of str
        One stem per input: ASCII ``A-Z a-z 0-9 . _ -``, at most ``limit``
        characters, never a Windows device name, and distinct even when
        compared without regard to case (so a delivery copied to a
        case-insensitive disk keeps every file). Stems that clash after
        normalisation (``Ärger``/``Arger``, the NFC and NFD spellings of
        ``café``) get a suffix: an alternative, else ``_2``, ``_3``, ...
        A stem too long for ``limit`` is cut and ends with ``-`` and 8 hex
        digits of the SHA-256 of its full spelling, so two long names that
        share their first 70 characters stay apart.

    Raises
    ------
    ValueError
        If ``order`` is not as long as ``stems``, or ``limit`` is under 24.
    """
    n = len(stems)
    order = list(order) if order is not None else list(stems)
    if len(order) != n:
        raise ValueError(f"{n} stems but {len(order)} sort keys")
    if limit < 24:
        raise ValueError(f"limit must be at least 24 characters, got {limit}")
    base_limit = limit - 12  # room for "_" and a numbered suffix, or an alternative's extension

    def base(stem: str) -> str:
        stem = unicodedata.normalize("NFC", stem)
        safe = sanitize_token(stem, limit=10 * limit)
        if len(safe) > base_limit:
            safe = safe[: base_limit - 9].rstrip(".") + "-" + _short_hash(stem)
        return "_" + safe if _is_reserved(safe) else safe

    bases = [base(s) for s in stems]
    result = list(bases)
    # Every name taken (lower case) and the first stem that took it; a list only for the names that clash:
    # a list a stem held 10,000 of them at once for a large shoot (the driver's peak, RESULTS.md target 5).
    taken: dict[str, int] = {}
    clashes: dict[str, list[int]] = {}
    for i, b in enumerate(bases):
        key = b.lower()
        first = taken.setdefault(key, i)
        if first != i:
            clashes.setdefault(key, [first]).append(i)
    for key in sorted(clashes):
        members = sorted(clashes[key], key=lambda i: order[i])  # type: ignore[arg-type, return-value]
        for i in members[1:]:
            choice = None
            for alt in alternatives(i, members[0]) if alternatives is not None else ():
                c = sanitize_token(unicodedata.normalize("NFC", alt), limit=limit)
                if c != "_" and not _is_reserved(c) and c.lower() not in taken:
                    choice = c
                    break
            k = 2
            while choice is None:
                c = f"{bases[i]}_{k}"
                if c.lower() not in taken:
                    choice = c
                k += 1
            result[i] = choice
            taken[choice.lower()] = i
    return result


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
        parts.append(sanitize_token(value, limit=TOKEN_MAX_CHARS[field]))
    rendered = "".join(parts)
    components = rendered.split("/")
    for i, component in enumerate(components):
        if component in ("", ".", ".."):
            raise NamingTemplateError(f"rendered name {rendered!r} has an empty or dot path component")
        if _is_reserved(component):
            components[i] = "_" + component
        if len(components[i].encode()) > MAX_COMPONENT_BYTES:
            raise NamingTemplateError(f"rendered path component is longer than {MAX_COMPONENT_BYTES} bytes")
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
