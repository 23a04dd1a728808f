"""Stage shell around :mod:`pipeline.imaging.render`."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import rawpy
from pydantic import BaseModel, ConfigDict, Field

from charts.schema import Chart
from pipeline.imaging.color import Proxy
from pipeline.imaging.render import (
    RENDER_VERSION,
    adjustments_from_operations,
    decode_for_render,
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


class Render(Stage):
    """Apply the plan's corrections and produce every rendition's pixels (in the worker)."""

    name: ClassVar[str] = "render"
    description: ClassVar[str] = (
        "One decode at the size the largest rendition needs; white balance, exposure, face lifts, "
        "straighten and crop in linear light; per-rendition size, sharpening, colour space, bit depth"
    )
    reads = frozenset({"width", "height", "operations", "verdict", "content_hash", "source_kind"})
    writes = frozenset({"render_key"})
    # The analysis proxy is used when it is still in the worker and big enough
    # (a graph with no shoot-scope stage between decode and render); with the
    # default graph render decodes on its own, after planning.
    produces = frozenset({"renditions"})
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
        # An open LibRaw handle the decode stage may leave behind (optional): saves re-reading the file.
        raw: rawpy.RawPy | None = item.artifacts.pop("raw", None)
        try:
            item.artifacts["renditions"] = self._render(item, raw)
        finally:
            if raw is not None:
                raw.close()  # idempotent: decode_for_render may have closed it already

    def _render(self, item: WorkItem, raw: rawpy.RawPy | None) -> dict[str, np.ndarray]:
        chart: Chart = self.context.options["chart"].chart
        r = item.record
        if r.verdict == Verdict.REJECT or not chart.renditions:
            return {}  # not delivered under the chart: nothing to render
        if not r.width or not r.height:
            raise InputError("image size unknown (decode did not run)")
        r.render_key = render_key(r.content_hash, chart, r.operations)
        adjustments = adjustments_from_operations(r.operations)
        for name, rendition in chart.renditions.items():
            w, h = rendition_size(rendition, rendition_frame(rendition, adjustments, r.width, r.height))
            if max(w, h) > rendition.format.max_side_px:
                raise InputError(
                    f"rendition {name} would be {w}x{h} px, and {rendition.format.value} holds at most "
                    f"{rendition.format.max_side_px} px a side: give the rendition a long_edge_px"
                )
        need = required_scale(chart.renditions, adjustments, r.width, r.height)
        proxy: Proxy | None = item.artifacts.get("proxy")
        decoded: np.ndarray | None = None
        if self.params.reuse_proxy and proxy is not None and proxy.rgb.shape[1] >= need * r.width - 0.5:
            decoded = proxy.rgb
        elif r.source_kind is not SourceKind.RASTER and raw is None and r.content_hash:
            # The decode stage's own LibRaw output when it is the one needed: no second decode.
            decoded = decode_cache.take(self.context.out_dir, r.content_hash, half_size=need <= 0.5)
        if decoded is None:
            decoded = decode_for_render(
                item.task.path, r.source_kind, r.width, r.height, need, int(self.params.max_megapixels * 1e6), raw,
                max_bytes=self.params.max_decode_mb << 20,
            )
        return render_renditions(
            decoded, r.width, r.height, adjustments, chart.renditions, self.params.sharpen_radius_px
        )
