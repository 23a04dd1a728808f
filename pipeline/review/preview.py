"""Previews for the review app: the source as shot, and as it will be delivered.

Both go through the imaging core, the same functions as the pipeline: the
analysis proxy's decode (:func:`pipeline.imaging.decode.decode_proxy`, same
LibRaw settings), and the renderer's own path at preview size
(:func:`pipeline.imaging.render.render_preview`): the instruction file's
operations become typed :class:`~pipeline.kernel.records.Operation` objects,
then :func:`~pipeline.imaging.render.adjustments_from_operations`, then white
balance, exposure and face lifts exactly as the export applies them. What a
retoucher approves is what is delivered, at another size. Crops and
straightening are drawn as overlays by the browser, over the uncropped image
(and so a lens correction shows its vignetting's, not its geometry).
Gallery thumbnails are the same "after" picture, rendered from the run's own
small preview; the 100% view is in :mod:`pipeline.review.tiles`.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.decode import decode_proxy, fit_long_edge
from pipeline.imaging.measure.metering import is_rendered, undevelop
from pipeline.imaging.merge import merge_for_delivery
from pipeline.imaging.render import Adjustments, adjustments_from_operations, render_preview
from pipeline.kernel.files import write_bytes_atomic
from pipeline.kernel.records import SourceKind, awaiting_decision, renderer_applies
from pipeline.outputs.instructions import operation_from_doc
from pipeline.outputs.shoot import DEVELOPED_PREVIEW_SUFFIX

PREVIEW_LONG_EDGE = 1600
THUMB_LONG_EDGE = 400
# What measure_exposure counts as clipped: only 8-bit 255 survives the threshold.
CLIP_LEVEL = 0.995
MAX_MEGAPIXELS = 250.0
#: Part of every cached preview's file name; bumped when the pictures change
#: (2: the renderer's own path, issue 10; 3: thumbnails show the corrected picture; 4: a rendered source
#: darkened in its scene light; 5: a RAW developed through the camera-like curve; 6: a RAW's turn in the name where
#: it is not 1, so a frame its XMP turns between two runs is not shown from an older version's cache as it was).
PREVIEW_VERSION = 6
# Operations the "after" view applies (the tonal ones, and a face blurred for privacy); everything else is drawn or
# listed only.
TONAL_KINDS = ("white_balance", "exposure", "brighten_face", "blur_face", "red_eye", "reduce_noise", "whiten_backdrop",
               "lift_shadows", "merge_bracket", "lens_correction")  # (its vignetting: see preview_adjustments)


def decode_preview(path: Path, source_kind: SourceKind | str, long_edge: int = PREVIEW_LONG_EDGE,
                   orientation: int | None = None) -> np.ndarray:
    """Decode a source to an oriented scene-linear preview: the decode stage's proxy at ``long_edge``.

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
    return decode_proxy(path, SourceKind(source_kind), long_edge, int(MAX_MEGAPIXELS * 1e6),
                        orientation=orientation).rgb


def tonal_operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The operations the renderer will apply: its own kinds, not rejected by a reviewer (and a person's it
    applies once accepted: :func:`~pipeline.kernel.records.renderer_applies`)."""
    return [
        op for op in doc["operations"]
        if op["kind"] in TONAL_KINDS and renderer_applies(op["applied_by"], op["params"], op.get("review"))
    ]  # fmt: skip


def pending_proposals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The operations proposed to a person that the renderer applies once accepted
    (:data:`~pipeline.kernel.records.RENDER_ON_ACCEPT`), neither accepted nor rejected yet."""
    return [op for op in doc["operations"]
            if op["kind"] in TONAL_KINDS and awaiting_decision(op["params"], op.get("review"))]


def proposed_operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """What the renderer would apply were every pending proposal accepted: :func:`tonal_operations` and
    :func:`pending_proposals` (as accepted copies), in the document's order (the "proposed" preview a reviewer
    judges them on)."""
    pending = {id(op) for op in pending_proposals(doc)}
    applied = {id(op) for op in tonal_operations(doc)}
    return [{**op, "review": {**(op.get("review") or {}), "status": "accepted"}} if id(op) in pending else op
            for op in doc["operations"] if id(op) in pending or id(op) in applied]


def develops(source_kind: SourceKind | str, develop_raw: bool = True) -> bool:
    """Whether a source's pictures are developed through the camera-like curve: a RAW's, where the run's chart
    develops RAWs so (``develop_raw``: its ``exposure.raw_tone_curve`` is ``camera``), as the render stage does."""
    return develop_raw and not is_rendered(SourceKind(source_kind))


def preview_adjustments(operations: list[dict[str, Any]], display_referred: bool = False,
                        develop_curve: bool = False) -> Adjustments:
    """The renderer's adjustments for the instruction file's operation documents (of a rendered source:
    ``display_referred``, as the render stage makes them; of a RAW developed through the camera-like curve:
    ``develop_curve``, :func:`develops`).

    Raises
    ------
    ValueError
        If an operation is malformed (see :func:`pipeline.imaging.render.adjustments_from_operations`).
    """
    adjustments = adjustments_from_operations([operation_from_doc(op) for op in operations], display_referred,
                                              develop_curve)
    lens = adjustments.lens
    if lens is not None:
        # The uncropped picture the crops and faces are drawn over stays as the lens drew it: of a lens correction
        # the preview shows the vignetting's (the corners' brightness, as delivered), not its geometry.
        kept = dataclasses.replace(lens, distortion=False, chromatic_aberration=False) if lens.vignetting else None
        adjustments = dataclasses.replace(adjustments, lens=kept)
    if adjustments.keystone is not None:
        # Nor a keystone's: the straightening's overlay draws the verticals as measured, through their vanishing point.
        adjustments = dataclasses.replace(adjustments, keystone=None)
    return adjustments


def after_preview(rgb: np.ndarray, operations: list[dict[str, Any]], width: int, height: int,
                  display_referred: bool = False, develop_curve: bool = False) -> np.ndarray:
    """The "after" picture: the renderer's corrections on a linear preview, in 8-bit sRGB.

    Parameters
    ----------
    rgb : ndarray, float32, (h, w, 3)
        Linear preview (:func:`decode_preview`).
    operations : list of dict
        Operation documents of the instruction file; the renderer's share is applied.
    width, height : int
        Full-resolution size of the image (operation boxes are full-resolution).
    display_referred : bool
        The source is a rendered picture (:attr:`pipeline.imaging.render.Adjustments.display_referred`).
    develop_curve : bool
        A RAW developed through the camera-like curve (:func:`develops`).

    Returns
    -------
    ndarray, uint8, (h, w, 3)

    Raises
    ------
    ValueError
        If an operation is malformed or the size is not positive.
    """
    return render_preview(rgb, width, height, preview_adjustments(operations, display_referred, develop_curve))


def bracket_frames(operations: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """The other frames of the bracket the operations merge in (``merge_bracket``): (source path, offset EV)."""
    merge = next((o for o in operations if o["kind"] == "merge_bracket"), None)
    return [] if merge is None else [(f["source_path"], float(f["offset_ev"])) for f in merge["params"]["frames"]]


def merged_preview(rgb: np.ndarray, frames: list[tuple[Path, float]], source_kind: SourceKind | str,
                   orientation: int | None = None) -> np.ndarray:
    """A bracket's middle frame's linear preview with its other ``frames`` (file, offset EV) merged in, as the
    renderer merges them (:func:`pipeline.imaging.merge.merge_for_delivery`), each decoded at the preview's size
    (in the middle frame's turn, ``orientation``)."""
    long_edge = max(rgb.shape[:2])
    return merge_for_delivery(rgb, ((decode_preview(path, source_kind, long_edge, orientation), offset, path.name)
                                    for path, offset in frames))


def before_preview(rgb: np.ndarray, develop_curve: bool = False) -> np.ndarray:
    """The "before" picture: the linear preview encoded by the same path with no corrections (a RAW developed as
    the "after" one is: ``develop_curve``)."""
    h, w = rgb.shape[:2]
    return render_preview(rgb, w, h, Adjustments(develop_curve=develop_curve))


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


def encode_jpeg(srgb8: np.ndarray, quality: int = 88, full_chroma: bool = False) -> bytes:
    """JPEG file of an 8-bit sRGB picture (``full_chroma``: no colour subsampling, for the 100% view)."""
    buf = io.BytesIO()
    Image.fromarray(srgb8, "RGB").save(buf, format="JPEG", quality=quality, subsampling=0 if full_chroma else -1)
    return buf.getvalue()


class PreviewCache:
    """Previews of a shoot, cached as files in ``OUT/previews/``.

    File names carry the source's content hash (a changed source gets new
    previews) and, for the "after" view, a key of the operations applied.
    The last few decoded linear previews are kept in memory so that changing
    an amount re-renders without decoding the source again.
    """

    def __init__(self, out_dir: Path, keep_decoded: int = 4, develop_raw: bool = True) -> None:
        self.root = out_dir / "previews"
        #: RAWs are developed through the camera-like curve (the run's chart's ``exposure.raw_tone_curve``).
        self.develop_raw = develop_raw
        self._decoded: OrderedDict[str, np.ndarray] = OrderedDict()
        self._keep = keep_decoded
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _image_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def linear(self, name: str, source: Path, source_kind: str, orientation: int | None = None) -> np.ndarray:
        return self._remembered(name, lambda: decode_preview(source, source_kind, orientation=orientation))

    def _remembered(self, key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        """The linear picture kept under ``key`` (the last :attr:`_keep` are), made now if it is not."""
        with self._lock:
            if key in self._decoded:
                self._decoded.move_to_end(key)
                return self._decoded[key]
        rgb = make()
        with self._lock:
            self._decoded[key] = rgb
            while len(self._decoded) > self._keep:
                self._decoded.popitem(last=False)
        return rgb

    def get(self, name: str, source: Path, source_kind: str, variant: str,
            operations: list[dict[str, Any]] | None = None, width: int | None = None,
            height: int | None = None, after_key: str = "", run_preview: Path | None = None,
            bracket: list[tuple[Path, float]] | None = None, orientation: int | None = None) -> Path:
        """Path of a cached preview file, made first if needed.

        Parameters
        ----------
        name : str
            Cache stem of the image (its name and content hash).
        variant : {"before", "after", "proposed", "thumb", "clip"}
            ``thumb`` is the "after" picture at :data:`THUMB_LONG_EDGE`.
        operations, width, height, after_key
            For ``after`` and ``thumb``: the tonal operations, the full-resolution
            size (the operations' coordinates) and a key that names this set of operations.
        run_preview : Path, optional
            The run's small sRGB preview of the image (``write_preview``): a
            thumbnail is rendered from it, without decoding the source again.
        bracket : list of (Path, float), optional
            For ``after`` and ``thumb`` of a bracket's middle frame: its other frames' files and offsets
            (:func:`bracket_frames`), merged in as the renderer merges them (:func:`merged_preview`).
        orientation : int, optional
            The turn the image was developed in (its record's: a RAW's XMP may have turned it).

        Raises
        ------
        InputError
            If the source cannot be decoded.
        ValueError
            On an unknown variant.
        """
        suffix = {"before": ".jpg", "clip": ".clip.png"}.get(variant)
        if variant in ("after", "proposed", "thumb"):
            suffix = f".{variant}-{after_key}.jpg"
        if suffix is None:
            raise ValueError(f"unknown preview variant {variant!r}")
        # The version in the name: previews made by an older preview path are not served again.
        path = self.root / f"{name}.v{PREVIEW_VERSION}{suffix}"
        if path.is_file():
            return path
        with self._image_lock(name):
            if path.is_file():  # made by another request meanwhile
                return path
            if variant == "thumb":
                rgb = self._thumb_source(run_preview, source, source_kind, orientation)
            else:
                rgb = self.linear(name, source, source_kind, orientation)
            develop_curve = develops(source_kind, self.develop_raw)
            if variant == "before":
                data = encode_jpeg(before_preview(rgb, develop_curve))
            elif variant == "clip":
                data = clip_overlay_png(clipped_mask(rgb))
            else:
                if bracket:
                    rgb = self._merged(name, rgb, bracket, source_kind, orientation)
                full_w, full_h = width or rgb.shape[1], height or rgb.shape[0]
                data = encode_jpeg(after_preview(rgb, operations or [], full_w, full_h,
                                                 is_rendered(SourceKind(source_kind)), develop_curve),
                                   quality=80 if variant == "thumb" else 88)
                for old in self.root.glob(f"{name}.*{variant}-*.jpg"):  # one per image is enough
                    if old != path:
                        old.unlink(missing_ok=True)
            write_bytes_atomic(path, data)
        return path

    def _merged(self, name: str, rgb: np.ndarray, bracket: list[tuple[Path, float]], source_kind: str,
                orientation: int | None = None) -> np.ndarray:
        """:func:`merged_preview`, kept beside the decodes: a reviewer moving an amount re-renders the "after"
        picture, and the bracket's frames are not decoded and merged again for it."""
        key = f"{name}.merged{rgb.shape[1]}x{rgb.shape[0]}:{bracket!r}"
        return self._remembered(key, lambda: merged_preview(rgb, bracket, source_kind, orientation))

    @staticmethod
    def _thumb_source(run_preview: Path | None, source: Path, source_kind: str,
                      orientation: int | None = None) -> np.ndarray:
        """Linear pixels to render a thumbnail from: the run's preview when there is one (no decode), a RAW's
        developed one (``.dev.jpg``) taken back to its scene light."""
        if run_preview is not None and run_preview.is_file():
            try:
                with Image.open(run_preview) as im:
                    im.draft("RGB", (THUMB_LONG_EDGE, THUMB_LONG_EDGE))
                    srgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
                linear = srgb_to_linear(srgb)
                if run_preview.name.endswith(DEVELOPED_PREVIEW_SUFFIX):
                    linear = undevelop(linear)
                return fit_long_edge(linear, THUMB_LONG_EDGE)
            except OSError:
                pass  # unreadable: decode the source instead
        return fit_long_edge(decode_preview(source, source_kind, THUMB_LONG_EDGE, orientation), THUMB_LONG_EDGE)


__all__ = [
    "PREVIEW_LONG_EDGE", "CLIP_LEVEL", "PreviewCache", "after_preview", "before_preview", "clip_overlay_png",
    "clipped_mask", "decode_preview", "develops", "encode_jpeg", "preview_adjustments", "tonal_operations",
]
