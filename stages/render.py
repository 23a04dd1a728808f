"""Render stage: each image's renditions, as arrays, from its decode and its planned operations.

The renderer is :mod:`pipeline.imaging.render` (one decode at the size the
largest rendition needs, the corrections in linear light, one resampling per
rendition); this shell picks the decode to start from (the analysis proxy
still in the worker, LibRaw's decode the decode stage kept on disk, an open
LibRaw handle, or a fresh decode), merges a bracket's other frames into it
(:mod:`pipeline.imaging.merge`) and records the render key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Callable, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from charts.schema import Chart, RawToneCurve, Rendition
from pipeline.imaging import bayer
from pipeline.imaging.color import Proxy
from pipeline.imaging.decode import develop_flip, open_raw
from pipeline.imaging.denoise import NoiseLevels
from pipeline.imaging.measure.metering import is_rendered
from pipeline.imaging.merge import merge_for_delivery
from pipeline.imaging.render import (
    RENDER_VERSION,
    WHOLE_DECODE_MAX_MEGAPIXELS,
    Adjustments,
    BlurSampler,
    RenditionStrips,
    adjustments_from_operations,
    decode_covers,
    decode_for_render,
    noise_acting,
    preview_size,
    raw_half_size,
    render_frame,
    render_key,
    region_sampler,
    render_renditions,
    render_rows,
    rendition_frame,
    rendition_size,
    required_scale,
    rows_noise,
    source_white,
)
from pipeline.kernel import decode_cache
from pipeline.kernel.errors import InputError
from pipeline.kernel.records import Operation, OperationKind, SourceKind, Verdict, WorkItem
from pipeline.kernel.stage import Resources, Stage

_log = logging.getLogger(__name__)

#: Long edge of the corrected picture the report shows (the report's previews are this size).
AFTER_PREVIEW_LONG_EDGE = 640


class Render(Stage):
    """Apply the plan's corrections and produce every rendition's pixels (in the worker)."""

    name: ClassVar[str] = "render"
    description: ClassVar[str] = (
        "One decode at the size the largest rendition needs (a bracket's other frames merged in); white balance, "
        "exposure, face lifts, straighten and crop in linear light; per-rendition size, noise reduction (read at that "
        "size), sharpening, colour space, bit depth"
    )
    reads = frozenset({"frame.width", "frame.height", "operations", "plan.verdict", "content_hash", "source_kind"})
    writes = frozenset({"render_key"})
    needs_chart: ClassVar[bool] = True
    # The analysis proxy is used when it is still in the worker and big enough
    # (a graph with no shoot-scope stage between decode and render); with the
    # default graph render decodes on its own, after planning.
    produces = frozenset({"renditions", "after_preview"})
    version = RENDER_VERSION
    resources = Resources(cpus=1, memory_mb=2500)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        sharpen_radius_px: float = Field(
            0.8, gt=0, le=5, description="Unsharp-mask radius (Gaussian sigma) in output pixels."
        )
        max_megapixels: float = Field(
            250.0, gt=0, le=2000, description="Refuse raster sources larger than this (decompression bombs)."
        )
        max_decode_mb: int = Field(
            2500, ge=64, le=1_000_000,
            description="Refuse a raster whose decode at the size the renditions need would take more memory "
            "than this (default: the stage's declared memory; a full-resolution rendition of a 150 MP image "
            "needs 2.4 GB, a 1080 px one of it 0.6 GB).",
        )
        reuse_proxy: bool = Field(
            True, description="Render from the analysis proxy when it is large enough for every rendition."
        )
        whole_decode_max_megapixels: float = Field(
            WHOLE_DECODE_MAX_MEGAPIXELS,
            gt=0,
            le=2000,
            description="RAW files above this many megapixels render their full-resolution renditions region "
            "by region (bounded memory; OpenCV's edge-aware demosaic instead of LibRaw's AHD); LibRaw's whole "
            "demosaic takes about 17 MB per megapixel.",
        )

    def process(self, item: WorkItem) -> None:
        item.artifacts["renditions"] = self._render(item)

    def _render(self, item: WorkItem) -> dict[str, np.ndarray | RenditionStrips]:
        chart: Chart = self.context.require_chart(self.name)
        r = item.record
        if r.plan.verdict == Verdict.REJECT or not chart.renditions:
            return {}  # not delivered under the chart: nothing to render
        if not r.frame.width or not r.frame.height:
            raise InputError("image size unknown (decode did not run)")
        r.render_key = render_key(r.content_hash, chart, r.operations)
        adjustments = adjustments_from_operations(
            r.operations, display_referred=is_rendered(r.source_kind),
            develop_curve=chart.exposure.raw_tone_curve is RawToneCurve.CAMERA)
        for name, rendition in chart.renditions.items():
            w, h = rendition_size(rendition, rendition_frame(rendition, adjustments, r.frame.width, r.frame.height))
            if max(w, h) > rendition.format.max_side_px:
                raise InputError(
                    f"rendition {name} would be {w}x{h} px, and {rendition.format.value} holds at most "
                    f"{rendition.format.max_side_px} px a side: give the rendition a long_edge_px"
                )
        need = required_scale(chart.renditions, adjustments, r.frame.width, r.frame.height)
        large = r.frame.width * r.frame.height > self.params.whole_decode_max_megapixels * 1e6
        if large and not raw_half_size(need) and r.source_kind is not SourceKind.RASTER:
            if any(o.kind is OperationKind.MERGE_BRACKET for o in r.operations):
                _log.warning("%s: a %.0f MP bracket is rendered region by region, from its middle frame alone: "
                             "merge it by hand", r.source_path, r.frame.width * r.frame.height / 1e6)
            return self._render_by_regions(item, chart, adjustments)
        proxy: Proxy | None = item.artifacts.get("proxy")
        decoded: np.ndarray | None = None
        if self.params.reuse_proxy and proxy is not None and decode_covers(proxy.rgb.shape[1], r.frame.width, need):
            decoded = proxy.rgb
        elif r.source_kind is not SourceKind.RASTER and r.content_hash:
            # The decode stage's own LibRaw output when it is the one needed: no second decode.
            kept = decode_cache.entry_name(r.content_hash, item.task.orientation)
            decoded = decode_cache.take(self.context.out_dir, kept, half_size=raw_half_size(need))
        if decoded is None:
            decoded = decode_for_render(
                item.task.path, r.source_kind, r.frame.width, r.frame.height, need, int(self.params.max_megapixels * 1e6),
                max_bytes=self.params.max_decode_mb << 20, orientation=item.task.orientation,
            )
        merge = next((o for o in r.operations if o.kind is OperationKind.MERGE_BRACKET
                      and (o.review or {}).get("status") != "rejected"), None)
        if merge is not None and r.source_kind is not SourceKind.RASTER:
            decoded = self._merged(decoded, merge, item, need)
        # The source's highlights (and a rendered source's level), measured once for the after picture and every
        # rendition of a push.
        white = source_white(decoded) if adjustments.exposure_ev > 0 else None
        adjustments = adjustments.for_source(decoded)
        item.artifacts["after_preview"] = _after_preview(decoded, r.frame.width, r.frame.height, adjustments, white)
        return render_renditions(
            decoded, r.frame.width, r.frame.height, adjustments, chart.renditions, self.params.sharpen_radius_px,
            white, threads=self.context.threads_per_worker,
        )

    def _merged(self, decoded: np.ndarray, merge: Operation, item: WorkItem, need: float) -> np.ndarray:
        """The reference's decode with the other frames of its bracket merged in (:mod:`pipeline.imaging.merge`),
        its highlights above full scale rolled off below white, as a decode of the same type."""
        r = item.record

        def frames() -> Iterator[tuple[np.ndarray, float, str]]:
            for f in merge.params["frames"]:
                path = self.context.shoot_dir / f["source_path"]
                try:
                    # (the bracket's frames in the reference's turn: a photographer turns a bracket as one)
                    frame = decode_for_render(path, r.source_kind, r.frame.width, r.frame.height, need,
                                              int(self.params.max_megapixels * 1e6), self.params.max_decode_mb << 20,
                                              orientation=item.task.orientation)
                except (InputError, OSError) as exc:  # (gone or changed since it was analysed)
                    _log.warning("%s: bracket frame %s left out of the merge: %s", r.source_path, f["source_path"], exc)
                    continue
                yield frame, float(f["offset_ev"]), f["source_path"]

        merged = merge_for_delivery(decoded, frames())  # (at the reference's size: it may be the analysis proxy)
        if decoded.dtype == np.uint16:
            return np.rint(merged * np.float32(65535.0)).astype(np.uint16)
        return merged

    def _render_by_regions(
        self, item: WorkItem, chart: Chart, adjustments: Adjustments
    ) -> dict[str, np.ndarray | RenditionStrips]:
        """A large sensor: renditions that need more than half its resolution are rendered by regions
        of the photosites as the export writes them; the others from LibRaw's half-size decode."""
        r = item.record
        width, height = r.frame.width, r.frame.height
        sigma = self.params.sharpen_radius_px
        # Each rendition's frame as its crop turns and pads it (a reviewer's turn, a packshot's canvas).
        framed = {name: adjustments.for_crop(rend.crop) for name, rend in chart.renditions.items()}
        frames = {name: rendition_frame(rend, framed[name], width, height) for name, rend in chart.renditions.items()}
        sizes = {name: rendition_size(chart.renditions[name], frame) for name, frame in frames.items()}
        small = {name: rend for name, rend in chart.renditions.items()
                 if raw_half_size(max(sizes[name][0] / frames[name][2], sizes[name][1] / frames[name][3]))}
        out: dict[str, np.ndarray | RenditionStrips] = {}
        # LibRaw's half-size decode: the renditions that need no more, and the report's after picture.
        kept = decode_cache.entry_name(r.content_hash, item.task.orientation) if r.content_hash else None
        decoded = decode_cache.take(self.context.out_dir, kept, half_size=True) if kept else None
        if decoded is None:
            decoded = decode_for_render(item.task.path, r.source_kind, width, height, 0.5,
                                        int(self.params.max_megapixels * 1e6), orientation=item.task.orientation)
        # The source's highlights for the strips' shoulder: read here, where the whole frame is at hand
        # (and once for the after picture and the renditions made from this decode).
        white = source_white(decoded) if adjustments.exposure_ev > 0 else 1.0
        item.artifacts["after_preview"] = _after_preview(decoded, width, height, adjustments, white)
        out.update(render_renditions(decoded, width, height, adjustments, small, sigma, white))
        del decoded
        # A handle of its own: the strips read the photosites while the export writes them, after this stage.
        handle = open_raw(item.task.path)
        flip = develop_flip(handle, item.task.orientation)
        if not bayer.supports(handle, flip):  # not a plain Bayer sensor: LibRaw demosaics it whole
            handle.close()
            decoded = decode_for_render(item.task.path, r.source_kind, width, height, 1.0,
                                        int(self.params.max_megapixels * 1e6), orientation=item.task.orientation)
            rest = {name: rend for name, rend in chart.renditions.items() if name not in small}
            out.update(render_renditions(decoded, width, height, adjustments, rest, sigma))
            return {name: out[name] for name in chart.renditions}
        source = bayer.BayerFrame(handle, flip)
        if (source.width, source.height) != (width, height):
            handle.close()
            raise InputError(f"the photosites make a {source.width}x{source.height} frame, the decode said "
                             f"{width}x{height}")
        holders = _SharedClose(handle.close)
        for name, rend in chart.renditions.items():
            if name in small:
                continue
            frame, size = frames[name], sizes[name]
            # The rendition's noise, read once for all its strips; its reduction dropped where it would do nothing.
            levels = None if framed[name].noise is None else rows_noise(source.region, width, height, framed[name],
                                                                         frame, size)

            def rows(v0: int, v1: int, frame: tuple = frame, size: tuple = size, rend: Rendition = rend,
                     adjusted: Adjustments = noise_acting(framed[name], levels), levels: NoiseLevels | None = levels,
                     sampler: BlurSampler = region_sampler(source.region, width, height)) -> np.ndarray:
                return render_rows(source.region, width, height, adjusted, frame, size, (v0, v1),
                                   rend.color_space, rend.sharpen_amount, rend.bit_depth, sigma, white, sampler,
                                   levels)

            out[name] = RenditionStrips(size[0], size[1], rend.bit_depth, rows, _rows_per_strip(size[0]),
                                        holders.add())
        holders.seal()
        return {name: out[name] for name in chart.renditions}


def _after_preview(decoded: np.ndarray, width: int, height: int, adjustments: Adjustments,
                   white_of_source: float | None = None) -> np.ndarray:
    """The report's thumbnail: the whole frame as corrected, by the same path (crops are drawn over it)."""
    return render_frame(
        decoded, width, height, replace(adjustments, angle_deg=0.0), (0.0, 0.0, float(width), float(height)),
        preview_size(width, height, AFTER_PREVIEW_LONG_EDGE), "srgb", 0.0, 8, white_of_source=white_of_source,
    )


def _rows_per_strip(width: int) -> int:
    """Rows a strip renders at once: about 1.5 million pixels (100-150 MB of working arrays)."""
    return max(16, 1_500_000 // max(1, width))


class _SharedClose:
    """Closes a resource when every holder handed out has released it (and no more will come)."""

    def __init__(self, close: Callable[[], None]) -> None:
        self._close: Callable[[], None] | None = close
        self._open = 0
        self._sealed = False

    def add(self) -> Callable[[], None]:
        self._open += 1
        done = False

        def release() -> None:
            nonlocal done
            if not done:
                done = True
                self._open -= 1
                self._maybe_close()

        return release

    def seal(self) -> None:
        self._sealed = True
        self._maybe_close()

    def _maybe_close(self) -> None:
        if self._sealed and self._open == 0 and self._close is not None:
            self._close()
            self._close = None
