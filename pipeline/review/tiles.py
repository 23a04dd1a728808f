"""The 100% view: full-resolution tiles of an image, rendered on demand by the export's own path.

A retoucher zoomed to 100% sees a few tiles of ``TILE_PX`` square. Each is
:func:`pipeline.imaging.render.render_frame` with the tile as its frame box,
on the decode the export itself makes at full size
(:func:`pipeline.imaging.render.decode_for_render`: LibRaw's full demosaic for
a RAW, Pillow's full decode for a JPEG or TIFF), so the 100% view is the
delivered picture, pixel for pixel, before the rendition's resize.

LibRaw cannot decode a region and Pillow cannot decode part of a JPEG, so an
image is decoded once, the first time it is zoomed, into a cache file on disk
(``.postprod/fullres/``: oriented linear RGB, 16 bits a channel, a NumPy file
opened memory-mapped). A tile then reads only its own rows and columns of that
file: the whole image at full size is never held in memory to serve a tile.
The cache keeps the few images zoomed last (:data:`KEEP_FULLRES`) and deletes
the others.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from pathlib import Path

import numpy as np

from pipeline.imaging.merge import merge_for_delivery
from pipeline.imaging.denoise import REACH
from pipeline.imaging.render import Adjustments, decode_for_render, noise_acting, render_frame, rows_noise
from pipeline.kernel.journal import STATE_DIR
from pipeline.kernel.records import SourceKind

TILE_PX = 512
#: Zoom levels a tile may be asked at: full-resolution pixels per screen pixel (1 = 100%).
TILE_SCALES = (1, 2, 4, 8)
#: Full-resolution decodes kept on disk (a 24 MP image takes 144 MB).
KEEP_FULLRES = 4
FULLRES_DIR = f"{STATE_DIR}/fullres"
# Rows converted at a time when the decode is written to the cache file.
_BAND_ROWS = 256


def tile_box(col: int, row: int, scale: int, width: int, height: int) -> tuple[tuple[float, float, float, float],
                                                                               tuple[int, int]]:
    """The full-resolution box a tile shows and its size in pixels.

    Tiles cover the image from the top left in steps of ``TILE_PX * scale``
    full-resolution pixels; those on the right and bottom edges are smaller.

    Raises
    ------
    ValueError
        If the scale is not one of :data:`TILE_SCALES` or the tile lies outside the image.
    """
    if scale not in TILE_SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(str, TILE_SCALES))}")
    step = TILE_PX * scale
    x0, y0 = col * step, row * step
    if col < 0 or row < 0 or x0 >= width or y0 >= height:
        raise ValueError(f"tile {col},{row} at 1:{scale} lies outside the {width}x{height} image")
    w, h = min(step, width - x0), min(step, height - y0)
    return (float(x0), float(y0), float(w), float(h)), (max(1, math.ceil(w / scale)), max(1, math.ceil(h / scale)))


def render_tile(decoded: np.ndarray, width: int, height: int, adjustments: Adjustments, col: int, row: int,
                scale: int) -> np.ndarray:
    """One tile of the 100% (or 1:``scale``) view: the export's render path with the tile as its frame.

    Parameters
    ----------
    decoded : ndarray, (H, W, 3), uint16 or float32
        The full-resolution decode (a memory-mapped cache file: only the tile's region is read).
    width, height : int
        Full-resolution size of the oriented image (the operations' coordinates).
    adjustments : Adjustments
        The corrections to show (none for "before"); straightening and crops
        are left out, as in the previews: they are drawn over the unturned image.
    col, row, scale : int
        Which tile (see :func:`tile_box`).

    Returns
    -------
    ndarray, uint8, (h, w, 3)
        sRGB, no output sharpening (a rendition's sharpening belongs to its size).

    Raises
    ------
    ValueError
        If the tile lies outside the image or the scale is not allowed.
    """
    frame, size = tile_box(col, row, scale, width, height)
    unturned = dataclasses.replace(adjustments, angle_deg=0.0)
    # Noise reduction reads the picture's noise and cleans each pixel with its neighbours: the tile is the whole
    # picture's view at 1:scale, its noise read there (the rows the whole picture's render reads it on), rendered
    # with a margin of neighbours and cut out of it.
    levels = None
    if unturned.noise is not None:
        whole = (max(1, math.ceil(width / scale)), max(1, math.ceil(height / scale)))
        levels = rows_noise(lambda x0, y0, x1, y1: decoded[y0:y1, x0:x1], width, height, unturned,
                            (0.0, 0.0, float(width), float(height)), whole)
        unturned = noise_acting(unturned, levels)
    if unturned.noise is None:
        return render_frame(decoded, width, height, unturned, frame, size, "srgb", 0.0, 8)
    x0, y0, w, h = frame
    left, top = min(REACH, int(x0) // scale), min(REACH, int(y0) // scale)
    right = min(REACH, (width - int(x0 + w)) // scale)
    bottom = min(REACH, (height - int(y0 + h)) // scale)
    wider = (x0 - left * scale, y0 - top * scale, w + (left + right) * scale, h + (top + bottom) * scale)
    out = render_frame(decoded, width, height, unturned, wider, (size[0] + left + right, size[1] + top + bottom),
                       "srgb", 0.0, 8, noise=levels)
    return out[top : top + size[1], left : left + size[0]]


class FullResCache:
    """Full-resolution decodes on disk, memory-mapped, for the few images zoomed last.

    Parameters
    ----------
    out_dir : Path
        The output folder (the cache lives in ``.postprod/fullres/``).
    keep : int
        Images kept; the least recently used are deleted.
    max_pixels : int
        Refuse larger raster sources (decompression bombs), as the render does.
    """

    def __init__(self, out_dir: Path, keep: int = KEEP_FULLRES, max_pixels: int = 250_000_000) -> None:
        self.root = out_dir / FULLRES_DIR
        self.keep = keep
        self.max_pixels = max_pixels
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._open: dict[str, np.ndarray] = {}

    def _image_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(name, threading.Lock())

    def get(self, name: str, source: Path, kind: SourceKind | str, width: int, height: int,
            bracket: list[tuple[Path, float]] | None = None, orientation: int | None = None) -> np.ndarray:
        """The full-resolution decode of an image, memory-mapped (decoded and written first if needed).

        Parameters
        ----------
        name : str
            Cache name of the image (its instruction name and content hash).
        source : Path
            The source file.
        kind : SourceKind or str
        width, height : int
            Full-resolution size of the oriented image.
        bracket : list of (Path, float), optional
            A bracket's other frames and their offsets (EV): merged in as the renderer merges them
            (:func:`pipeline.imaging.merge.merge_bracket`); ``name`` must then name the merge.
        orientation : int, optional
            The turn the image was developed in (its record's: a RAW's XMP may have turned it).

        Returns
        -------
        ndarray, uint16, (H, W, 3), read-only memory map
            Linear light, 65535 = white.

        Raises
        ------
        InputError
            If the source cannot be decoded.
        """
        path = self.root / f"{name}.u16.npy"
        with self._lock:
            mapped = self._open.get(name)
        if mapped is not None and path.is_file():
            os.utime(path)  # most recently used
            return mapped
        with self._image_lock(name):
            if not path.is_file():
                self._write(path, source, SourceKind(kind), width, height, bracket or [], orientation)
            mapped = np.load(path, mmap_mode="r")
            with self._lock:
                self._open[name] = mapped
        os.utime(path)
        self._evict(keep=path)
        return mapped

    def _write(self, path: Path, source: Path, kind: SourceKind, width: int, height: int,
               bracket: list[tuple[Path, float]], orientation: int | None = None) -> None:
        decoded = decode_for_render(source, kind, width, height, 1.0, self.max_pixels, orientation=orientation)
        if bracket:
            frames = ((decode_for_render(other, kind, width, height, 1.0, self.max_pixels, orientation=orientation),
                       offset, other.name) for other, offset in bracket)
            decoded = merge_for_delivery(decoded, frames)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint16, shape=decoded.shape)
        try:
            for y in range(0, decoded.shape[0], _BAND_ROWS):
                band = decoded[y : y + _BAND_ROWS]
                if band.dtype == np.uint16:
                    out[y : y + _BAND_ROWS] = band
                else:  # linear float from Pillow: 16 bits keep 1/65535 of white, far below a display's step
                    out[y : y + _BAND_ROWS] = np.clip(band * np.float32(65535.0) + np.float32(0.5), 0, 65535)
            out.flush()
        finally:
            del out
        del decoded
        os.replace(tmp, path)

    def _evict(self, keep: Path) -> None:
        files = sorted(self.root.glob("*.u16.npy"), key=lambda p: p.stat().st_mtime_ns if p.exists() else 0)
        for old in files[: max(0, len(files) - self.keep)]:
            if old == keep:
                continue
            name = old.name[: -len(".u16.npy")]
            with self._lock:
                self._open.pop(name, None)
            old.unlink(missing_ok=True)  # an open memory map keeps its pages until it is dropped (POSIX)
