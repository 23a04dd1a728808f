"""Render stage: each image's renditions, as arrays, from its decode and its planned operations.

The renderer is :mod:`pipeline.imaging.render` (one decode at the size the
largest rendition needs, the corrections in linear light, one resampling per
rendition); this shell picks the decode to start from (the analysis proxy
still in the worker, LibRaw's decode the decode stage kept on disk, an open
LibRaw handle, or a fresh decode) and records the render key.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from charts.schema import Chart
from pipeline.imaging.color import Proxy
from pipeline.imaging.render import (
    RENDER_VERSION,
    adjustments_from_operations,
    decode_covers,
    decode_for_render,
    preview_size,
    raw_half_size,
    render_frame,
    render_key,
    render_renditions,
    rendition_frame,
    rendition_size,
    required_scale,
)
from pipeline.kernel import decode_cache
from pipeline.kernel.errors import InputError
from pipeline.kernel.records import SourceKind, Verdict, WorkItem
from pipeline.kernel.stage import Resources, Stage

#: Long edge of the corrected picture the report shows (the report's previews are this size).
AFTER_PREVIEW_LONG_EDGE = 640


class Render(Stage):
    """Apply the plan's corrections and produce every rendition's pixels (in the worker)."""

    name: ClassVar[str] = "render"
    description: ClassVar[str] = (
        "One decode at the size the largest rendition needs; white balance, exposure, face lifts, "
        "straighten and crop in linear light; per-rendition size, sharpening, colour space, bit depth"
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

    def process(self, item: WorkItem) -> None:
        item.artifacts["renditions"] = self._render(item)

    def _render(self, item: WorkItem) -> dict[str, np.ndarray]:
        chart: Chart = self.context.require_chart(self.name)
        r = item.record
        if r.plan.verdict == Verdict.REJECT or not chart.renditions:
            return {}  # not delivered under the chart: nothing to render
        if not r.frame.width or not r.frame.height:
            raise InputError("image size unknown (decode did not run)")
        r.render_key = render_key(r.content_hash, chart, r.operations)
        adjustments = adjustments_from_operations(r.operations)
        for name, rendition in chart.renditions.items():
            w, h = rendition_size(rendition, rendition_frame(rendition, adjustments, r.frame.width, r.frame.height))
            if max(w, h) > rendition.format.max_side_px:
                raise InputError(
                    f"rendition {name} would be {w}x{h} px, and {rendition.format.value} holds at most "
                    f"{rendition.format.max_side_px} px a side: give the rendition a long_edge_px"
                )
        need = required_scale(chart.renditions, adjustments, r.frame.width, r.frame.height)
        proxy: Proxy | None = item.artifacts.get("proxy")
        decoded: np.ndarray | None = None
        if self.params.reuse_proxy and proxy is not None and decode_covers(proxy.rgb.shape[1], r.frame.width, need):
            decoded = proxy.rgb
        elif r.source_kind is not SourceKind.RASTER and r.content_hash:
            # The decode stage's own LibRaw output when it is the one needed: no second decode.
            decoded = decode_cache.take(self.context.out_dir, r.content_hash, half_size=raw_half_size(need))
        if decoded is None:
            decoded = decode_for_render(
                item.task.path, r.source_kind, r.frame.width, r.frame.height, need, int(self.params.max_megapixels * 1e6),
                max_bytes=self.params.max_decode_mb << 20,
            )
        # The report's thumbnail: the whole frame as corrected, by the same path (crops are drawn over it).
        item.artifacts["after_preview"] = render_frame(
            decoded, r.frame.width, r.frame.height, replace(adjustments, angle_deg=0.0),
            (0.0, 0.0, float(r.frame.width), float(r.frame.height)),
            preview_size(r.frame.width, r.frame.height, AFTER_PREVIEW_LONG_EDGE), "srgb", 0.0, 8,
        )
        return render_renditions(
            decoded, r.frame.width, r.frame.height, adjustments, chart.renditions, self.params.sharpen_radius_px
        )
