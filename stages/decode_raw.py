"""Stage shell around :mod:`pipeline.imaging.decode`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import rawpy
from pydantic import BaseModel, ConfigDict, Field

from pipeline.imaging.color import Proxy
from pipeline.imaging.decode import (
    SourceMetadata,
    _libraw_message,
    check_measurable,
    check_not_constant,
    check_raw_payload,
    decode_raster,
    decode_raw_linear,
    fit_long_edge,
    libraw_messages,
    open_raw,
    raw_metadata,
    read_raw_make_model,
)
from pipeline.kernel import decode_cache
from pipeline.kernel.errors import InputError
from pipeline.kernel.records import SourceKind, WorkItem
from pipeline.kernel.stage import Resources, Stage


class DecodeRaw(Stage):
    """Decode the source into the analysis proxy; read metadata."""

    name: ClassVar[str] = "decode_raw"
    description: ClassVar[str] = "RAW (LibRaw half-size) or raster decode to a linear proxy; EXIF metadata"
    writes = frozenset(
        {
            "camera_make", "camera_model", "lens", "iso", "shutter_s", "aperture", "focal_length_mm",
            "captured_at", "orientation", "width", "height", "proxy_width", "proxy_height",
        }
    )  # fmt: skip
    produces = frozenset({"proxy"})
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
        min_bits_per_photosite: float = Field(
            0.5, ge=0, le=8, description="Smaller RAW payloads are stubs or truncated files."
        )
        render_cache_mb: int = Field(
            4096,
            ge=0,
            le=1_000_000,
            description="Disk (in the output folder, for the run's duration) for RAW decodes the render can "
            "reuse instead of decoding again; 0 = the render always decodes.",
        )

    def process(self, item: WorkItem) -> None:
        path, kind = item.task.path, item.task.source_kind
        p = self.params
        if item.task.file_size == 0:
            raise InputError("empty file (0 bytes)")
        if kind is SourceKind.RASTER:
            rgb, meta = decode_raster(path, p.proxy_long_edge, int(p.max_megapixels * 1e6), p.max_decode_mb << 20)
        else:
            rgb, meta = self._decode_raw(path, item, unknown=kind is SourceKind.UNKNOWN)
        check_measurable(rgb, meta.width, meta.height)
        check_not_constant(rgb)
        r = item.record
        for key, value in vars(meta).items():
            setattr(r, key, value)
        r.proxy_height, r.proxy_width = rgb.shape[:2]
        item.artifacts["proxy"] = Proxy(rgb=rgb, scale=meta.width / rgb.shape[1])

    def _decode_raw(self, path: Path, item: WorkItem, unknown: bool) -> tuple[np.ndarray, SourceMetadata]:
        p = self.params
        file_size = item.task.file_size
        try:
            raw = open_raw(path, None if unknown else item.task.format)
        except InputError:
            if unknown:
                raise InputError("not an image: neither LibRaw nor Pillow recognises this file") from None
            raise
        try:
            with raw, libraw_messages() as said:
                s = raw.sizes
                if s.raw_width * s.raw_height > p.max_megapixels * 1e6:
                    raise InputError(
                        f"sensor of {s.raw_width}x{s.raw_height} is above the {p.max_megapixels:g} MP limit"
                    )
                check_raw_payload(raw, file_size, p.min_bits_per_photosite)
                meta = raw_metadata(raw, path)
                # Half size whenever it still gives a proxy near the target size.
                half = max(meta.width, meta.height) / 2 >= 0.75 * p.proxy_long_edge
                rgb16 = decode_raw_linear(raw, half_size=half)
        except rawpy.LibRawError as exc:
            make, model = read_raw_make_model(path)
            camera = f" from {make} {model}" if make else ""
            libraw = f" (LibRaw: {'; '.join(dict.fromkeys(said))})" if said else ""
            raise InputError(f"cannot decode RAW data{camera}: {_libraw_message(exc)}{libraw}") from None
        self._keep_for_render(item, half, meta, rgb16)
        # Shrink the 16-bit decode, then convert: a third of the float work and
        # memory (the area filter's rounding to 16 bits is 8e-6 of full scale).
        rgb = fit_long_edge(rgb16, p.proxy_long_edge).astype(np.float32)
        rgb *= np.float32(1 / 65535)
        return np.ascontiguousarray(rgb), meta

    def _keep_for_render(self, item: WorkItem, half: bool, meta: SourceMetadata, rgb16: np.ndarray) -> None:
        """Leave the decode for the render when the chart's renditions will need exactly this one."""
        resolved = self.context.options.get("chart")
        budget = self.params.render_cache_mb * 1024 * 1024
        if budget <= 0 or resolved is None or not resolved.chart.renditions or not item.task.content_hash:
            return
        from pipeline.imaging.render import Adjustments, required_scale

        # The render's own choice (decode_for_render) for an uncropped frame; a
        # crop the plan adds can only ask for more, and then this entry goes unused.
        need = required_scale(resolved.chart.renditions, Adjustments(), meta.width, meta.height)
        if need > 0 and (need <= 0.5) == half:
            decode_cache.put(self.context.out_dir, item.task.content_hash, half, rgb16, budget)
