"""Who shot a frame: the ``--photographer`` option, the body register, or EXIF Artist.

Precedence, most deliberate first:

1. ``--photographer NAME``: the person running the shoot says who shot it.
2. The body register (a YAML or CSV file): the company's record of which
   body each photographer had, optionally between two dates (bodies move
   between people; the capture date picks the right holder).
3. EXIF ``Artist`` (or XMP ``dc:creator``, IPTC ``By-line``): what was typed
   into the camera's settings, which stays there when the camera is lent,
   so it comes last.

Register, YAML::

    schema_version: 1
    assignments:
      - body: "012345678"          # body serial, quoted: YAML would drop leading zeros
        photographer: Ana Lima
      - body: "C3281327008278"
        photographer: Ben Ode
        until: 2026-03-31          # inclusive; from/until are optional
      - body: "C3281327008278"
        photographer: Ana Lima
        from: 2026-04-01

or CSV with a header row ``body,photographer,from,until`` (the date columns
may be left out or empty). ``body`` is the serial, or ``make model`` for a
camera that records none (as :attr:`CameraIdentity.body_key` spells it).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from pipeline.imaging.identity import CameraIdentity
from pipeline.kernel.errors import ConfigError, Location
from pipeline.kernel.yamlconf import load_yaml, validate


class PhotographerSource(StrEnum):
    """Where the photographer's name came from."""

    OPTION = "option"  # --photographer NAME
    REGISTER = "register"  # the body register file
    EXIF_ARTIST = "exif_artist"  # EXIF Artist / XMP dc:creator / IPTC By-line


class Assignment(BaseModel):
    """One body in one person's hands, optionally between two dates (inclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    body: StrictStr = Field(
        min_length=1, description="Body serial as the camera writes it (quoted in YAML), or 'Make Model'."
    )
    photographer: StrictStr = Field(min_length=1, description="The person's name as reports should show it.")
    valid_from: date | None = Field(None, alias="from", description="First day (inclusive); none: always before.")
    valid_until: date | None = Field(None, alias="until", description="Last day (inclusive); none: still now.")

    def covers(self, day: date | None) -> bool:
        if day is None:
            return self.valid_from is None and self.valid_until is None
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


class RegisterFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(1, ge=1, le=1, description="Version of this file's layout.")
    assignments: list[Assignment] = Field(default_factory=list)


@dataclass(frozen=True)
class PhotographerRegister:
    """The body register: body -> photographer, with optional date ranges.

    Build it with :func:`load_register`.
    """

    path: Path
    assignments: tuple[Assignment, ...]

    def photographer_for(self, body: str | None, captured_at: datetime | date | None) -> str | None:
        """The holder of ``body`` on the capture date.

        A frame without a capture date matches only an assignment without
        dates (the register cannot tell which holder it was otherwise).
        """
        if not body:
            return None
        day = captured_at.date() if isinstance(captured_at, datetime) else captured_at
        key = _body_key(body)
        for a in self.assignments:
            if _body_key(a.body) == key and a.covers(day):
                return a.photographer
        if day is None:  # undated frame: the body's only holder, if it had one
            holders = {a.photographer for a in self.assignments if _body_key(a.body) == key}
            return holders.pop() if len(holders) == 1 else None
        return None


def _body_key(body: str) -> str:
    return " ".join(body.split()).casefold()


def load_register(path: Path | str) -> PhotographerRegister:
    """Read a body register (``.yaml``/``.yml`` or ``.csv``).

    Raises
    ------
    ConfigError
        When the file cannot be read, has an unknown key or column, a serial
        YAML read as a number (quote it), a bad date, a date range that ends
        before it starts, or two assignments of one body that overlap; the
        message names the file, the line and the key.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        assignments = _read_csv(path)
    else:
        doc = load_yaml(path)
        if doc.data is None:
            raise ConfigError("empty register: expected 'assignments:'", Location(path, 1))
        try:
            parsed = validate(RegisterFile, doc)
        except ConfigError as exc:
            if exc.location and (exc.location.key or "").endswith((".body", ".photographer")):
                raise ConfigError(
                    f"{exc.message}: quote it (YAML reads 012345670 as the number 2739128, and 1e5 as 100000.0)",
                    exc.location,
                ) from None
            raise
        assignments = [(a, doc.location(("assignments", i))) for i, a in enumerate(parsed.assignments)]  # type: ignore[attr-defined]
    _check(assignments)
    return PhotographerRegister(path, tuple(a for a, _ in assignments))


def _read_csv(path: Path) -> list[tuple[Assignment, Location]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError("file not found", Location(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", Location(path)) from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    unknown = [c for c in columns if c not in ("body", "photographer", "from", "until")]
    if unknown or "body" not in columns or "photographer" not in columns:
        what = f"unknown column {unknown[0]!r}" if unknown else "missing column 'body' or 'photographer'"
        raise ConfigError(f"{what}; the header must be body,photographer[,from,until]", Location(path, 1))
    out = []
    for row in reader:
        line = reader.line_num
        values = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        values = {k: v for k, v in values.items() if v}
        try:
            out.append((Assignment.model_validate(values), Location(path, line)))
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or None
            raise ConfigError(err["msg"], Location(path, line, key)) from None
    return out


def _check(assignments: list[tuple[Assignment, Location]]) -> None:
    for a, where in assignments:
        if a.valid_from and a.valid_until and a.valid_until < a.valid_from:
            raise ConfigError(f"'until' {a.valid_until} is before 'from' {a.valid_from}", where)
    for i, (a, where) in enumerate(assignments):
        for b, _ in assignments[:i]:
            if _body_key(a.body) != _body_key(b.body):
                continue
            start_a, end_a = a.valid_from or date.min, a.valid_until or date.max
            start_b, end_b = b.valid_from or date.min, b.valid_until or date.max
            if start_a <= end_b and start_b <= end_a:
                raise ConfigError(
                    f"body {a.body!r} is assigned to {b.photographer!r} and {a.photographer!r} on the same days; "
                    "give each holder a 'from'/'until' range that does not overlap",
                    where,
                )


def resolve_photographer(
    identity: CameraIdentity,
    captured_at: datetime | date | None = None,
    named: str | None = None,
    register: PhotographerRegister | None = None,
) -> tuple[str | None, PhotographerSource | None]:
    """The photographer of one frame and where the name came from.

    Parameters
    ----------
    identity : CameraIdentity
        What the file says (body serial, make and model, artist).
    captured_at : datetime or date, optional
        Capture time: picks the holder when the register has date ranges.
    named : str, optional
        ``--photographer NAME``: wins over everything.
    register : PhotographerRegister, optional
        The body register.

    Returns
    -------
    (str or None, PhotographerSource or None)
        ``(None, None)`` when nothing names anybody.
    """
    if named and named.strip():
        return " ".join(named.split()), PhotographerSource.OPTION
    if register is not None:
        person = register.photographer_for(identity.body_key, captured_at)
        if person is None and identity.body_serial:  # a register that lists the body by make and model
            name = " ".join(p for p in (identity.camera_make, identity.camera_model) if p)
            person = register.photographer_for(name or None, captured_at)
        if person:
            return person, PhotographerSource.REGISTER
    if identity.artist:
        return artist_name(identity.artist), PhotographerSource.EXIF_ARTIST
    return None, None


#: Labels some cameras and agencies write before the name in EXIF Artist ("Photographer: Carol M. Highsmith",
#: "Photo by Ana Lima"): the same person must not count as two photographers.
_ARTIST_LABELS = re.compile(r"^(?:photographer|photographed by|photo by|photo|by|fotograf|auteur)\s*[:\-]?\s+",
                            re.IGNORECASE)


def artist_name(artist: str) -> str:
    """The photographer's name in an EXIF Artist value: its label ("Photographer:", "Photo by") taken off and its
    spaces collapsed; what the value holds otherwise, as it is (a label alone is no match: it needs a name after
    it)."""
    return _ARTIST_LABELS.sub("", " ".join(artist.split()), count=1)
