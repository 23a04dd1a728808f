"""Camera make and model as LibRaw identifies them, read through LibRaw's C API.

rawpy gives sizes, colour data, lens and shooting data, but not the camera's
make and model, and its maintainers leave those to EXIF libraries (rawpy
pull request 27). EXIF cannot replace LibRaw here: it names cameras
differently ("Eastman Kodak Company" / "Kodak DC120 ZOOM Digital Camera"
where LibRaw says "Kodak" / "DC120", the names the records and the exports'
EXIF have always carried), and headerless RAWs such as the Kodak C330's
``.raw`` have no EXIF at all: only LibRaw's table of file sizes knows them.

So this module calls the LibRaw library that rawpy ships, through ctypes,
and reads ``make`` and ``model`` out of ``libraw_iparams_t`` after the
header parse (no unpacking). Those two fields sit at fixed offsets in a
struct whose layout is LibRaw's private business, so the read is done only
on the LibRaw versions it was checked on (:data:`VERIFIED_LIBRAW`, compared
with what the loaded library itself reports); on any other version, or
where the library cannot be loaded, it answers ``None`` and the metadata
simply lacks the camera. ``tests/test_libraw_ids.py`` checks every shared
RAW against the test data's table, so a rawpy upgrade that moves the
fields fails there instead of filling records with garbage.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from pathlib import Path
from typing import Any

import rawpy

#: (major, minor) LibRaw releases whose ``libraw_iparams_t`` starts with
#: ``char guard[4]; char make[64]; char model[64]`` as read here (LibRaw
#: 0.22's libraw_types.h, and the run of tests/test_libraw_ids.py on 0.22.2).
VERIFIED_LIBRAW: frozenset[tuple[int, int]] = frozenset({(0, 22)})

_MAKE_OFFSET, _MODEL_OFFSET, _FIELD_LEN = 4, 68, 64  # after char guard[4]; char make[64]

_lock = threading.Lock()
_lib: Any = None
_loaded = False


def _library_name() -> str:
    if sys.platform == "win32":
        return "libraw.dll"
    if sys.platform == "darwin":
        return "libraw_r.dylib"
    return "libraw_r.so"


def loaded_libraw_version() -> tuple[int, int, int] | None:
    """Version of the LibRaw library rawpy ships, as that library reports it; None if it cannot be loaded."""
    lib = _library()
    if lib is None:
        return None
    n = int(lib.libraw_versionNumber())
    return (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF


def _library() -> Any:
    global _lib, _loaded
    with _lock:
        if not _loaded:
            _loaded = True
            try:
                lib = ctypes.CDLL(os.path.join(os.path.dirname(rawpy.__file__), _library_name()))
            except OSError:
                return None
            lib.libraw_versionNumber.restype = ctypes.c_int
            lib.libraw_versionNumber.argtypes = []
            lib.libraw_init.restype = ctypes.c_void_p
            lib.libraw_init.argtypes = [ctypes.c_uint]
            lib.libraw_open_file.restype = ctypes.c_int
            lib.libraw_open_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.libraw_get_iparams.restype = ctypes.c_void_p
            lib.libraw_get_iparams.argtypes = [ctypes.c_void_p]
            lib.libraw_close.argtypes = [ctypes.c_void_p]
            _lib = lib
    return _lib


def layout_verified() -> bool:
    """Whether the loaded LibRaw is one whose struct layout this module was checked on."""
    version = loaded_libraw_version()
    return version is not None and version[:2] in VERIFIED_LIBRAW and tuple(rawpy.libraw_version) == version


def read_raw_make_model(path: Path) -> tuple[str | None, str | None]:
    """Camera make and model as LibRaw parses them from a RAW file's header.

    Parameters
    ----------
    path : Path
        A RAW file (any format LibRaw opens).

    Returns
    -------
    (str or None, str or None)
        LibRaw's normalised names (``("Canon", "PowerShot G2")``); ``(None, None)``
        when LibRaw cannot open the file, when the library cannot be loaded,
        or when its version is not in :data:`VERIFIED_LIBRAW`.
    """
    if not layout_verified():
        return None, None
    lib = _library()
    handle = lib.libraw_init(0)
    if not handle:
        return None, None
    try:
        if lib.libraw_open_file(handle, os.fsencode(path)) != 0:
            return None, None
        buf = ctypes.string_at(lib.libraw_get_iparams(handle), _MODEL_OFFSET + _FIELD_LEN)
    finally:
        lib.libraw_close(handle)

    def field(offset: int) -> str | None:
        text = buf[offset : offset + _FIELD_LEN].split(b"\0", 1)[0].decode("utf-8", "replace").strip()
        return text or None

    return field(_MAKE_OFFSET), field(_MODEL_OFFSET)
