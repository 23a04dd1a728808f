"""Decode stage: each source into its analysis proxy and its camera metadata.

The decoding itself (LibRaw settings, raster colour management, the checks
that turn a bad file into a readable reason) is :func:`pipeline.imaging.decode.decode_proxy`.
This shell copies the metadata into the record, hands the proxy (and, for a
RAW, the scan of its photosites, made while LibRaw held the raw data) on inside
the worker, and leaves LibRaw's decode on disk for the render when the
chart's renditions will need exactly that decode.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from pipeline.imaging.camera_raw import CameraRawBaseline
from pipeline.imaging.color import Proxy
from pipeline.imaging.decode import Decoded, decode_proxy
from pipeline.imaging.render import render_reuses_decode
from pipeline.kernel import decode_cache
from pipeline.kernel.records import CameraRawDefaults, WorkItem
from pipeline.kernel.stage import Resources, Stage


class DecodeRaw(Stage):
    """Decode the source into the analysis proxy; read metadata."""

    name: ClassVar[str] = "decode_raw"
    description: ClassVar[str] = (
        "RAW (LibRaw half-size) or raster decode to a linear proxy; EXIF metadata; Camera Raw's as-shot "
        "white balance, baseline exposure and default crop"
    )
    writes = frozenset({"camera", "frame", "camera_raw"})
    produces = frozenset({"proxy", "photosite_scan"})
    resources = Resources(cpus=1, memory_mb=1200)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        proxy_long_edge: int = Field(1600, ge=256, le=8192, description="Long edge of the analysis proxy in pixels.")
        max_megapixels: float = Field(
            250.0, gt=0, le=2000, description="Refuse sources larger than this (decompression bombs)."
        )
        max_decode_mb: int = Field(
            1200, ge=64, le=1_000_000,
            description="Refuse a raster whose decode (read from its header: size and mode) would take more "
            "memory than this (default: the stage's declared memory); bands of rows are converted at a time, "
            "so a 169 MP PNG needs about 700 MB.",
        )
        render_cache_mb: int = Field(
            4096,
            ge=0,
            le=1_000_000,
            description="Disk (in the output folder, for the run's duration) for RAW decodes the render can "
            "reuse instead of decoding again, and never more than a quarter of the free space; 0 = the render "
            "always decodes.",
        )
        scan_photosites: bool = Field(
            True,
            description="Scan RAW data for hot, dead and stuck photosites while the file is open (about 0.05 "
            "CPU-seconds per 6 MP frame; the end of the run adds the scans up per camera body).",
        )

    def process(self, item: WorkItem) -> None:
        p = self.params
        task = item.task
        decoded = decode_proxy(
            task.path, task.source_kind, p.proxy_long_edge, int(p.max_megapixels * 1e6),
            task.file_size, task.format, p.max_decode_mb << 20, scan_photosites=p.scan_photosites,
            threads=self.context.threads_per_worker, orientation=task.orientation,
        )  # fmt: skip
        self._keep_for_render(item, decoded)
        r = item.record
        for key, value in vars(decoded.meta).items():
            r.set_column(key, value)
        r.frame.proxy_height, r.frame.proxy_width = decoded.rgb.shape[:2]
        if decoded.camera_raw is not None:
            r.camera_raw = camera_raw_defaults(decoded.camera_raw)
        item.artifacts["proxy"] = Proxy(decoded.rgb, decoded.meta.width / decoded.rgb.shape[1], decoded.rgb16,
                                        decoded.opacity)
        item.artifacts["photosite_scan"] = decoded.photosites  # None for raster files

    def _keep_for_render(self, item: WorkItem, decoded: Decoded) -> None:
        """Leave LibRaw's decode for the render when the chart's renditions will need exactly this one."""
        resolved = self.context.chart
        budget = self.params.render_cache_mb * 1024 * 1024
        if decoded.libraw_rgb16 is None or budget <= 0 or resolved is None or not item.task.content_hash:
            return
        meta = decoded.meta
        if render_reuses_decode(resolved.chart.renditions, meta.width, meta.height, decoded.half_size):
            name = decode_cache.entry_name(item.task.content_hash, item.task.orientation)
            decode_cache.put(self.context.out_dir, name, decoded.half_size, decoded.libraw_rgb16, budget)


def camera_raw_defaults(b: CameraRawBaseline) -> CameraRawDefaults:
    """The record's copy of Camera Raw's starting point (:func:`pipeline.imaging.camera_raw.camera_raw_baseline`)."""
    x, y, w, h = b.default_crop
    return CameraRawDefaults(
        as_shot_temperature_k=b.as_shot_temperature_k,
        as_shot_tint=b.as_shot_tint,
        wb_source=b.wb_source,
        baseline_exposure_ev=b.baseline_exposure_ev,
        default_crop_x=x,
        default_crop_y=y,
        default_crop_width=w,
        default_crop_height=h,
    )
