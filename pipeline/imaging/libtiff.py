"""libtiff's messages about damaged TIFFs, kept off the console.

Pillow decodes compressed TIFFs (fax, LZW, ZIP, JPEG-in-TIFF) through libtiff, whose default handlers print
every complaint about a damaged file on the process's standard error, from C: a fax scan with bad code words
prints one line per bad row. Run under ``-q`` over ImageTestSuite's 726 files, postprod printed 879 such
lines ("Fax3Decode2D: Bad code word at line 1058 of strip 0"), which buried its own summary and broke the
progress bar. What they say changes nothing: a file libtiff cannot decode raises in Pillow and becomes a
failed row with its reason, one it decodes in part is decoded as Pillow decodes it.

:func:`libtiff_messages` sets libtiff's global error and warning handlers to none, or back to what they were.
Every process that decodes does it when :mod:`pipeline.imaging.decode` is imported, unless
:data:`MESSAGES_ENV` is set (``-vv`` sets it, and a Ray cluster's workers get it with the job).

OpenCV reads 16-bit TIFFs and PNGs with a libtiff of its own, built into it, whose complaints go through
OpenCV's log as warnings ("TIFF_Warning TIFFReadDirectory: Sum of Photometric type-related color channels and
ExtraSamples doesn't match SamplesPerPixel", for an RGBA TIFF whose alpha is not declared): the same holds for
them, and OpenCV's log level is set to errors only with libtiff's handlers (:func:`opencv_warnings`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

#: Set (to anything but an empty string) to keep libtiff's messages on standard error.
MESSAGES_ENV = "POSTPROD_LIBTIFF_MESSAGES"

_saved: dict[str, tuple[int | None, int | None]] = {}


def _loaded_libtiffs() -> dict[str, ctypes.CDLL]:
    """The libtiffs loaded in this process, by path: the one Pillow's core loaded (its wheels bundle one; a
    distribution's Pillow links the system's) and any other library's; the system's where ``/proc`` does not
    say (another platform), none where nothing is found."""
    from PIL import Image  # noqa: F401  (loads Pillow's core, and with it its libtiff)

    maps = Path("/proc/self/maps")
    paths = sorted({line.rsplit(" ", 1)[-1] for line in maps.read_text().splitlines()
                    if "/libtiff" in line and ".so" in line}) if maps.exists() else []
    if not paths and (found := ctypes.util.find_library("tiff")):
        paths = [found]
    libs = {}
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            for fn in (lib.TIFFSetErrorHandler, lib.TIFFSetWarningHandler):
                fn.restype, fn.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
        except (OSError, AttributeError):  # not a libtiff after all, or one without the handlers
            continue
        libs[path] = lib
    return libs


def libtiff_messages(on: bool) -> int:
    """Let libtiff print its messages (``on``: the handlers it had) or not; returns how many libtiffs were set."""
    libs = _loaded_libtiffs()
    for path, lib in libs.items():
        if not on and path not in _saved:
            _saved[path] = (lib.TIFFSetErrorHandler(None), lib.TIFFSetWarningHandler(None))
        elif on and path in _saved:
            error, warning = _saved.pop(path)
            lib.TIFFSetErrorHandler(error)
            lib.TIFFSetWarningHandler(warning)
    return len(libs)


def opencv_warnings(on: bool) -> None:
    """Let OpenCV print its warnings (its built-in libtiff's among them) or only its errors."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING if on else cv2.utils.logging.LOG_LEVEL_ERROR)


def quiet_unless_asked() -> None:
    """Keep libtiff, and OpenCV's warnings, quiet in this process unless :data:`MESSAGES_ENV` asks for them."""
    on = bool(os.environ.get(MESSAGES_ENV))
    libtiff_messages(on)
    opencv_warnings(on)
