"""Previews for the review app: the source as shot, and after the automatic correction.

The "after" view applies the renderer's tonal operations (white balance gains,
exposure gain, faces brightened through a feathered ellipse) in linear light
on the preview, with a few lines of numpy: enough for a retoucher to judge an
amount, not a substitute for the render stage. Crops and straightening are
drawn as overlays by the browser, over the uncropped image.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipeline.imaging.color import to_srgb8
from pipeline.imaging.decode import check_not_constant, decode_raster, decode_raw_linear, fit_long_edge, open_raw
from pipeline.kernel.files import write_bytes_atomic
from pipeline.kernel.records import SourceKind

PREVIEW_LONG_EDGE = 1600
THUMB_LONG_EDGE = 400
# What measure_exposure counts as clipped: only 8-bit 255 survives the threshold.
CLIP_LEVEL = 0.995
MAX_MEGAPIXELS = 250.0
# Operations the "after" view applies; everything else is drawn or listed only.
TONAL_KINDS = ("white_balance", "exposure", "brighten_face")


def decode_preview(path: Path, source_kind: SourceKind | str, long_edge: int = PREVIEW_LONG_EDGE) -> np.ndarray:
    """Decode a source to an oriented scene-linear preview, as the decode stage does.

    Parameters
    ----------
    path : Path
        The source file.
    source_kind : SourceKind or str
        ``raster`` goes through Pillow; ``raw`` and ``unknown`` through LibRaw.
    long_edge : int
        Long edge of the preview in pixels (never upscaled).

    Returns
    -------
    ndarray, float32, (H, W, 3)
        Linear Rec.709 RGB, 1.0 = white, oriented for viewing.

    Raises
    ------
    InputError
        If the file cannot be decoded (it then failed in the pipeline too).
    """
    if SourceKind(source_kind) is SourceKind.RASTER:
        rgb, _ = decode_raster(path, long_edge, int(MAX_MEGAPIXELS * 1e6))
    else:
        with open_raw(path) as raw:
            s = raw.sizes
            full_long = max(s.width, s.height)
            # Half size (no demosaic) whenever it still gives about the wanted size.
            rgb16 = decode_raw_linear(raw, half_size=full_long / 2 >= 0.75 * long_edge)
        rgb = fit_long_edge(rgb16.astype(np.float32) * np.float32(1 / 65535), long_edge)
    check_not_constant(rgb)
    return np.ascontiguousarray(rgb, dtype=np.float32)


def tonal_operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The operations the renderer will apply: its own kinds, not rejected by a reviewer."""
    return [
        op for op in doc["operations"]
        if op["kind"] in TONAL_KINDS and op["applied_by"] == "renderer"
        and (op.get("review") or {}).get("status") != "rejected"
    ]  # fmt: skip


def ellipse_mask(shape: tuple[int, int], box: tuple[float, float, float, float], feather: float) -> np.ndarray:
    """Weight of a feathered ellipse inscribed in ``box``: 1 inside, 0 outside.

    Parameters
    ----------
    shape : (height, width)
        Size of the mask in pixels.
    box : (x, y, width, height)
        The ellipse's bounding box, in the mask's pixels.
    feather : float
        Width of the soft edge in pixels, centred on the ellipse (0.5 on it).

    Returns
    -------
    ndarray, float32, (height, width)

    Raises
    ------
    ValueError
        If the box has no area.
    """
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"face box has no area: {box}")
    rx, ry = w / 2, h / 2
    cx, cy = x + rx, y + ry
    feather = max(float(feather), 1.0)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    xx += 0.5  # pixel centres
    yy += 0.5
    d = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    # Normalised radius -> pixels past the edge, using the mean radius.
    t = np.clip((d - 1.0) * ((rx + ry) / 2) / feather + 0.5, 0.0, 1.0)
    return (1.0 - t * t * (3 - 2 * t)).astype(np.float32)  # smoothstep: no visible ring


def apply_corrections(rgb: np.ndarray, operations: list[dict[str, Any]], scale: float) -> np.ndarray:
    """Apply tonal operations to a linear preview.

    Parameters
    ----------
    rgb : ndarray, float32, (H, W, 3)
        Linear preview.
    operations : list of dict
        Operation documents (see :func:`tonal_operations`); other kinds are ignored.
    scale : float
        Preview pixels per full-resolution pixel (operation boxes are full-resolution).

    Returns
    -------
    ndarray, float32
        Corrected linear RGB, not clipped (clip when encoding).

    Raises
    ------
    ValueError
        If a face box has no area.
    """
    out = np.array(rgb, dtype=np.float32, copy=True)
    for op in operations:
        p = op["params"]
        if op["kind"] == "white_balance":
            out *= np.asarray(p["gains"], dtype=np.float32)
        elif op["kind"] == "exposure":
            out *= np.float32(2.0 ** float(p["ev"]))
    for op in operations:
        if op["kind"] != "brighten_face":
            continue
        p = op["params"]
        box = tuple(float(v) * scale for v in p["box"])
        feather = float(p["feather_px"]) * scale
        # Only the region the soft edge can reach.
        pad = feather
        x0, y0 = max(0, int(box[0] - pad)), max(0, int(box[1] - pad))
        x1 = min(out.shape[1], int(np.ceil(box[0] + box[2] + pad)))
        y1 = min(out.shape[0], int(np.ceil(box[1] + box[3] + pad)))
        if x1 <= x0 or y1 <= y0:
            continue
        local = (box[0] - x0, box[1] - y0, box[2], box[3])
        mask = ellipse_mask((y1 - y0, x1 - x0), local, feather)
        out[y0:y1, x0:x1] *= np.exp2(np.float32(p["ev"]) * mask)[..., None]
    return out


def clipped_mask(rgb: np.ndarray, level: float = CLIP_LEVEL) -> np.ndarray:
    """Pixels with at least one channel at or above ``level`` (clipped highlights)."""
    return np.any(np.asarray(rgb) >= level, axis=-1)


def clip_overlay_png(mask: np.ndarray, color: tuple[int, int, int] = (255, 0, 160)) -> bytes:
    """A transparent PNG, ``color`` where ``mask`` is set."""
    rgba = np.zeros(mask.shape + (4,), dtype=np.uint8)
    rgba[mask] = (*color, 255)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def encode_jpeg(rgb_linear: np.ndarray, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(to_srgb8(rgb_linear), "RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class PreviewCache:
    """Previews of a shoot, cached as files in ``OUT/previews/``.

    File names carry the source's content hash (a changed source gets new
    previews) and, for the "after" view, a key of the operations applied.
    The last few decoded linear previews are kept in memory so that changing
    an amount re-renders without decoding the source again.
    """

    def __init__(self, out_dir: Path, keep_decoded: int = 4) -> None:
        self.root = out_dir / "previews"
        self._decoded: OrderedDict[str, np.ndarray] = OrderedDict()
        self._keep = keep_decoded
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _image_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def linear(self, name: str, source: Path, source_kind: str) -> np.ndarray:
        with self._lock:
            if name in self._decoded:
                self._decoded.move_to_end(name)
                return self._decoded[name]
        rgb = decode_preview(source, source_kind)
        with self._lock:
            self._decoded[name] = rgb
            while len(self._decoded) > self._keep:
                self._decoded.popitem(last=False)
        return rgb

    def get(self, name: str, source: Path, source_kind: str, variant: str,
            operations: list[dict[str, Any]] | None = None, width: int | None = None, after_key: str = "") -> Path:
        """Path of a cached preview file, made first if needed.

        Parameters
        ----------
        name : str
            Cache stem of the image (its name and content hash).
        variant : {"before", "after", "thumb", "clip"}
        operations, width, after_key
            For ``after``: the tonal operations, the full-resolution width
            (to scale boxes) and a key that names this set of operations.

        Raises
        ------
        InputError
            If the source cannot be decoded.
        ValueError
            On an unknown variant.
        """
        suffix = {"before": ".jpg", "thumb": ".thumb.jpg", "clip": ".clip.png"}.get(variant)
        if variant == "after":
            suffix = f".after-{after_key}.jpg"
        if suffix is None:
            raise ValueError(f"unknown preview variant {variant!r}")
        path = self.root / f"{name}{suffix}"
        if path.is_file():
            return path
        with self._image_lock(name):
            if path.is_file():  # made by another request meanwhile
                return path
            rgb = self.linear(name, source, source_kind)
            if variant == "before":
                data = encode_jpeg(rgb)
            elif variant == "thumb":
                data = encode_jpeg(fit_long_edge(rgb, THUMB_LONG_EDGE), quality=80)
            elif variant == "clip":
                data = clip_overlay_png(clipped_mask(rgb))
            else:
                scale = rgb.shape[1] / float(width or rgb.shape[1])
                data = encode_jpeg(apply_corrections(rgb, operations or [], scale))
                for old in self.root.glob(f"{name}.after-*.jpg"):  # one "after" per image is enough
                    old.unlink(missing_ok=True)
            write_bytes_atomic(path, data)
        return path


__all__ = [
    "PREVIEW_LONG_EDGE", "CLIP_LEVEL", "PreviewCache", "apply_corrections", "clip_overlay_png",
    "clipped_mask", "decode_preview", "ellipse_mask", "encode_jpeg", "tonal_operations",
]
