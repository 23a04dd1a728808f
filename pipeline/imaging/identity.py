"""Who made a frame and with what: camera make, model, body serial, lens, artist.

Two readers, each where it is right:

* **exiv2** (``pyexiv2``, in process, a few milliseconds) for the standard
  tags: EXIF ``BodySerialNumber`` (0xA431), DNG ``CameraSerialNumber``
  (0xC62F), XMP ``aux:SerialNumber``, ``LensModel``, ``Artist``, XMP
  ``dc:creator``, IPTC ``By-line``. Current cameras and every DNG converter
  write the body serial there.
* **exiftool** for what only the maker notes hold (Canon, Nikon, Sigma,
  Phase One and older bodies keep the serial in their own tags). exiv2 also
  parses maker notes, but not always as the maker meant: on a Canon CRW it
  returns tag 0x180B as "SerialNumber" for every model, while on PowerShots
  that field is an unrelated counter that changes from frame to frame
  (exiftool names it ``UnknownNumber`` there), which would turn one body into
  as many bodies as frames. exiftool knows each maker's layout and prints the
  serial as the maker does (``Canon:SerialNumber`` with its leading zeros).
  It runs as one long-lived process per worker (``-stay_open``), so the cost
  is a round trip, not a Perl start-up, per file.

Placeholders cameras write when nothing was set ("unknown", "0000000000",
"n/a", empty) count as absent.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Where a body serial was found, best first; the name is kept with the value.
_EXIV2_SERIAL_TAGS = (
    "Exif.Photo.BodySerialNumber",
    "Exif.Image.CameraSerialNumber",
    "Xmp.exifEX.BodySerialNumber",
    "Xmp.aux.SerialNumber",
)
_EXIV2_LENS_TAGS = ("Exif.Photo.LensModel", "Xmp.exifEX.LensModel", "Xmp.aux.Lens")
_EXIV2_LENS_SERIAL_TAGS = ("Exif.Photo.LensSerialNumber", "Xmp.exifEX.LensSerialNumber", "Xmp.aux.LensSerialNumber")
_EXIV2_ARTIST_TAGS = ("Exif.Image.Artist", "Xmp.dc.creator", "Iptc.Application2.Byline", "Xmp.tiff.Artist")

# exiftool tag names asked for (-G1 prefixes each with its group: "Canon:SerialNumber").
_EXIFTOOL_TAGS = (
    "Make", "Model", "SerialNumber", "CameraSerialNumber", "InternalSerialNumber", "LensModel", "LensID", "Lens",
    "LensSerialNumber", "Artist", "Creator", "By-line", "OwnerName",
)  # fmt: skip
# Standard places first, then any maker note's SerialNumber, then the internal serials
# (Canon's and Fujifilm's identify the body too, but are not what is engraved on it).
_EXIFTOOL_SERIAL_GROUPS = ("ExifIFD:SerialNumber", "IFD0:CameraSerialNumber", "XMP-aux:SerialNumber")

_PLACEHOLDERS = {"", "unknown", "n/a", "na", "none", "null", "-", "(none)", "not set", "owner", "default"}


@dataclass(frozen=True)
class CameraIdentity:
    """What a file says about the camera and the person behind it.

    Attributes
    ----------
    camera_make, camera_model : str or None
        As written by the camera (TIFF ``Make``, ``Model``).
    body_serial : str or None
        The camera body's serial number, as the maker prints it.
    body_serial_tag : str or None
        Where it was read (``"Exif.Photo.BodySerialNumber"``,
        ``"exiftool:Canon:SerialNumber"``), so a surprising value can be traced.
    lens : str or None
        Lens model (EXIF ``LensModel``, or exiftool's lens identification).
    lens_serial : str or None
        Lens serial number, where the camera records it.
    artist : str or None
        EXIF ``Artist`` (else XMP ``dc:creator``, IPTC ``By-line``): the name
        the photographer set in the camera or the converter.
    owner : str or None
        The camera's owner name (Canon ``OwnerName``), often the company.
    """

    camera_make: str | None = None
    camera_model: str | None = None
    body_serial: str | None = None
    body_serial_tag: str | None = None
    lens: str | None = None
    lens_serial: str | None = None
    artist: str | None = None
    owner: str | None = None

    @property
    def body_key(self) -> str | None:
        """How findings name this body: the serial, else make and model, else None."""
        if self.body_serial:
            return self.body_serial
        name = " ".join(p for p in (self.camera_make, self.camera_model) if p)
        return name or None


def clean_text(value: Any) -> str | None:
    """A tag value as a trimmed string; None for placeholders and all-zero serials."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = next((v for v in value if clean_text(v)), None)
        return clean_text(value)
    if isinstance(value, dict):  # XMP language alternatives: {'lang="x-default"': 'Ana'}
        return clean_text(next(iter(value.values()), None))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", " ").strip()
    if text.startswith('lang="') and " " in text:  # exiv2's text form of a language alternative
        text = text.split(" ", 1)[1].strip()
    if text.lower() in _PLACEHOLDERS or set(text) <= {"0", " "}:
        return None
    return " ".join(text.split())


def _first(tags: dict[str, Any], names: tuple[str, ...]) -> tuple[str | None, str | None]:
    for name in names:
        value = clean_text(tags.get(name))
        if value:
            return value, name
    return None, None


# --- exiv2 -------------------------------------------------------------------------
_exiv2_lock = threading.Lock()


def read_exiv2_exif(path: Path | str) -> dict[str, Any]:
    """The EXIF tags alone through exiv2 (what the decode reads: the camera's white-balance mode); empty when
    exiv2 cannot parse the file."""
    return read_exiv2_tags(path, readers=("read_exif",))


#: pyexiv2's readers, one per metadata family.
EXIV2_READERS = ("read_exif", "read_xmp", "read_iptc")


def read_exiv2_tags(path: Path | str, readers: tuple[str, ...] = EXIV2_READERS) -> dict[str, Any]:
    """EXIF, XMP and IPTC tags through exiv2 (``readers``: those of :data:`EXIV2_READERS` to read); empty when
    exiv2 cannot parse the file.

    exiv2 refuses some valid files (Sigma X3F, damaged maker notes) and reads
    no Kodak KDC metadata beyond make and model; exiftool covers those.
    """
    import pyexiv2

    tags: dict[str, Any] = {}
    with _exiv2_lock:  # exiv2's XMP toolkit is not thread-safe
        # pyexiv2 turns exiv2's logged errors into exceptions unless muted, and the export code
        # mutes it for the whole process: mute it here too, so a file reads the same either way
        # (a damaged maker note then costs its own tags, not the standard ones).
        pyexiv2.set_log_level(4)
        try:
            image = pyexiv2.Image(str(path))
        except (RuntimeError, OSError, ValueError):
            return tags
        try:
            for reader in readers:
                try:
                    tags.update(getattr(image, reader)())
                except UnicodeDecodeError:
                    # A text tag not in UTF-8 (an old camera's UserComment in Latin-1) fails the whole
                    # family in pyexiv2: read it again with a codec that takes any byte.
                    try:
                        tags.update(getattr(image, reader)(encoding="iso-8859-1"))
                    except (RuntimeError, UnicodeDecodeError, ValueError):
                        continue
                except (RuntimeError, ValueError):
                    continue
        finally:
            image.close()
    return tags


def read_xmp_packet(packet: bytes) -> dict[str, Any] | None:
    """The tags of an XMP packet held in memory (cut out of a JPEG's APP1 segment or a TIFF's XMLPacket tag), as
    :func:`read_exiv2_tags` reads a file's; None when exiv2 cannot parse it."""
    import pyexiv2

    with _exiv2_lock:  # exiv2's XMP toolkit is not thread-safe
        pyexiv2.set_log_level(4)
        try:
            with pyexiv2.ImageData(packet) as data:
                return data.read_xmp()
        except (RuntimeError, ValueError, UnicodeDecodeError):
            return None


# --- exiftool ------------------------------------------------------------------------
def _prctl() -> Any:
    """Linux's prctl, looked up once in the parent (a forked child must not load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel stop the child when ``parent`` dies, even by ``kill -9``.

    ``exiftool -stay_open True -@ -`` keeps polling its closed standard input
    for ever once the process that started it is gone: without this, every
    killed run would leave one exiftool per worker behind.
    """
    if _PRCTL is None:
        return None

    def arm() -> None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


class ExifTool:
    """One long-lived ``exiftool -stay_open`` process: a round trip per file, not a start-up.

    Parameters
    ----------
    executable : str
        The exiftool command (Debian: ``apt-get install libimage-exiftool-perl``).
    timeout_s : float
        A file that takes longer is given up on (and the process restarted).

    Raises
    ------
    FileNotFoundError
        When ``executable`` is not installed; the message names the package.
    """

    def __init__(self, executable: str = "exiftool", timeout_s: float = 30.0) -> None:
        found = shutil.which(executable)
        if not found:
            raise FileNotFoundError(
                f"{executable} not found: install it (Debian/Ubuntu: apt-get install libimage-exiftool-perl; "
                "macOS: brew install exiftool) to read body serials kept in maker notes"
            )
        self.executable = found
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen | None = None
        self._owner = os.getpid()
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen:
        if os.getpid() != self._owner:
            # A forked child shares the parent's pipes: it must neither talk to nor stop that process.
            self._proc, self._owner = None, os.getpid()
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [self.executable, "-stay_open", "True", "-@", "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # per-file warnings: a missing answer says enough
                preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 (only prctl runs in the child)
            )
        return self._proc

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and os.getpid() == self._owner and proc.poll() is None:
            try:
                proc.stdin.write(b"-stay_open\nFalse\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()

    def read(self, path: Path | str, tags: tuple[str, ...] = _EXIFTOOL_TAGS) -> dict[str, Any]:
        """The named tags of one file as ``{"Group:Tag": value}``; empty when exiftool reads nothing."""
        args = ["-j", "-G1", "-a", "-charset", "filename=utf8", *(f"-{t}" for t in tags), os.fspath(path)]
        out = ""
        with self._lock:
            for _ in range(2):  # a process that died in between gets one restart
                proc = self._start()
                try:
                    proc.stdin.write(("\n".join(args) + "\n-execute\n").encode("utf-8"))  # type: ignore[union-attr]
                    proc.stdin.flush()  # type: ignore[union-attr]
                    out = self._read_until_ready(proc)
                    break
                except (OSError, TimeoutError):
                    self._kill()
            else:
                return {}
        try:
            rows = json.loads(out) if out.strip() else []
        except ValueError:
            return {}
        return rows[0] if rows else {}

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and os.getpid() == self._owner and proc.poll() is None:
            proc.kill()
            proc.wait()

    def _read_until_ready(self, proc: subprocess.Popen) -> str:
        fd = proc.stdout.fileno()  # type: ignore[union-attr]
        buf = b""
        deadline = time.monotonic() + self.timeout_s
        while not buf.endswith(b"{ready}\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("exiftool did not answer")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise OSError("exiftool exited")
            buf += chunk
        return buf[: -len(b"{ready}\n")].decode("utf-8", "replace")


_exiftool: ExifTool | None = None
_exiftool_missing = False
_exiftool_lock = threading.Lock()


def shared_exiftool() -> ExifTool | None:
    """This process's exiftool, started on first use; None when it is not installed."""
    global _exiftool, _exiftool_missing
    with _exiftool_lock:
        if _exiftool is None and not _exiftool_missing:
            try:
                _exiftool = ExifTool()
                atexit.register(_exiftool.close)
            except FileNotFoundError:
                _exiftool_missing = True
        return _exiftool


def _exiftool_serial(tags: dict[str, Any]) -> tuple[str | None, str | None]:
    for key in _EXIFTOOL_SERIAL_GROUPS:
        value = clean_text(tags.get(key))
        if value:
            return value, key
    for suffix in (":SerialNumber", ":InternalSerialNumber"):
        for key in sorted(k for k in tags if k.endswith(suffix) and not k.startswith("Composite")):
            value = clean_text(tags[key])
            if value:
                return value, key
    return None, None


def _exiftool_pick(tags: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        for key, value in tags.items():
            if key.split(":", 1)[-1] == name:
                text = clean_text(value)
                if text and not text.lower().startswith("unknown"):
                    return text
    return None


# --- the identity ----------------------------------------------------------------------
def read_identity(path: Path | str, exiftool: ExifTool | None | bool = True) -> CameraIdentity:
    """Camera make, model, body serial, lens and artist of one file.

    Parameters
    ----------
    path : Path or str
        A RAW (DNG, CR2, CRW, NEF, KDC, ...) or raster (JPEG, TIFF, HEIC) file.
    exiftool : ExifTool, bool or None
        ``True``: this process's shared exiftool, used only when exiv2 finds no
        body serial (or no make) in the standard tags. An :class:`ExifTool` to
        use that one. ``False`` or ``None``: exiv2 only (the serials kept in
        maker notes are then not found).

    Returns
    -------
    CameraIdentity
        Fields the file does not hold are None; an unreadable file gives an
        identity with every field None, never an error (the decode step is
        where a bad file fails).
    """
    if not Path(path).is_file():  # exiftool would read a whole folder
        return CameraIdentity()
    tags = read_exiv2_tags(path)
    serial, serial_tag = _first(tags, _EXIV2_SERIAL_TAGS)
    lens, _ = _first(tags, _EXIV2_LENS_TAGS)
    lens_serial, _ = _first(tags, _EXIV2_LENS_SERIAL_TAGS)
    artist, _ = _first(tags, _EXIV2_ARTIST_TAGS)
    make, _ = _first(tags, ("Exif.Image.Make",))
    model, _ = _first(tags, ("Exif.Image.Model",))
    owner, _ = _first(tags, ("Exif.Photo.CameraOwnerName", "Xmp.exifEX.CameraOwnerName", "Xmp.aux.OwnerName"))
    tool = shared_exiftool() if exiftool is True else (exiftool or None)
    if tool is not None and (serial is None or make is None):
        et = tool.read(path)
        if serial is None:
            serial, key = _exiftool_serial(et)
            serial_tag = f"exiftool:{key}" if key else None
        make = make or _exiftool_pick(et, ("Make",))
        model = model or _exiftool_pick(et, ("Model",))
        lens = lens or _exiftool_pick(et, ("LensModel", "LensID", "Lens"))
        lens_serial = lens_serial or _exiftool_pick(et, ("LensSerialNumber",))
        artist = artist or _exiftool_pick(et, ("Artist", "Creator", "By-line"))
        owner = owner or _exiftool_pick(et, ("OwnerName",))
    return CameraIdentity(
        camera_make=make,
        camera_model=model,
        body_serial=serial,
        body_serial_tag=serial_tag if serial else None,
        lens=lens,
        lens_serial=lens_serial,
        artist=artist,
        owner=owner,
    )
