"""Stage shell around :mod:`pipeline.imaging.measure`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from pipeline.imaging.color import Proxy
from pipeline.imaging.measure import measure_all
from pipeline.kernel.records import SourceKind, WorkItem
from pipeline.kernel.stage import Resources, Stage


class MeasureExposure(Stage):
    """Exposure, clipping, white balance, focus, noise, tilt and pHash of the proxy."""

    name: ClassVar[str] = "measure_exposure"
    description: ClassVar[str] = (
        "Exposure offset and verdict, luminance percentiles, clipping, WB cast, sharpness, noise, "
        "horizon/verticals tilt, pHash (on the proxy)"
    )
    reads = frozenset({"width", "height", "source_kind"})
    writes = frozenset(
        {
            "exposure_ev", "exposure_verdict", "exposure_target", "shadow_contrast",
            "luminance_p01", "luminance_p05", "luminance_p50", "luminance_p95", "luminance_p99",
            "clipped_highlights_pct", "clipped_highlights_pct_r", "clipped_highlights_pct_g",
            "clipped_highlights_pct_b", "clipped_shadows_pct_r", "clipped_shadows_pct_g",
            "clipped_shadows_pct_b", "wb_cast_a", "wb_cast_b", "wb_temperature_shift_k",
            "sharpness", "noise_sigma", "horizon_tilt_deg", "verticals_tilt_deg", "lines_found", "phash",
            "saliency_x", "saliency_y",
        }
    )  # fmt: skip
    consumes = frozenset({"proxy"})
    resources = Resources(cpus=1, memory_mb=600)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        target_rendered: float = Field(
            0.40,
            gt=0,
            le=1,
            description=(
                "Median linear luminance of a well-exposed rendered image (JPEG, TIFF). Calibrated on the "
                "reference set: well-exposed photos measure 0.47-0.67 before the shadow-lift term."
            ),
        )
        target_raw: float = Field(
            0.18,
            gt=0,
            le=1,
            description="Median linear luminance of a well-exposed RAW proxy (scene-linear, mid-grey).",
        )
        tolerance_ev: float = Field(
            1.0, ge=0, le=6, description="Half-width of the 'ok' band around the target, in EV."
        )
        highlight_clip_level: float = Field(
            0.995, gt=0.5, le=1.0, description="A channel at or above this linear value is clipped at white."
        )
        shadow_clip_level: float = Field(
            1.0 / 4096, ge=0, lt=0.05, description="A channel at or below this linear value is crushed to black."
        )

    def process(self, item: WorkItem) -> None:
        proxy: Proxy = item.artifacts["proxy"]
        # decode_raw sends RASTER files through Pillow (tone-mapped renders), the rest through LibRaw.
        rendered = item.record.source_kind is SourceKind.RASTER
        p = self.params
        opts = self.context.options
        target = float(opts.get("exposure_target", p.target_rendered if rendered else p.target_raw))
        tolerance = float(opts.get("exposure_tolerance_ev", p.tolerance_ev))
        m = measure_all(proxy.rgb, target, tolerance, rendered, p.highlight_clip_level, p.shadow_clip_level)
        r = item.record
        for key, value in vars(m).items():
            setattr(r, key, value)
        r.exposure_target = target
