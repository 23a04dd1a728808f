"""Stage shell around :mod:`pipeline.outputs.encode`."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from collections.abc import Callable
from typing import ClassVar, Iterator, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from charts.naming import output_path
from charts.schema import Chart, ImageFormat, Rendition
from pipeline.imaging.render import RenditionStrips
from pipeline.imaging.watermark import draw_mark, make_mark
from pipeline.kernel.files import write_bytes_atomic
from pipeline.kernel.records import ExportedFile, WorkItem
from pipeline.kernel.stage import Resources, Stage
from pipeline.outputs.cmyk import cmyk_profile_bytes, soft_proof
from pipeline.outputs.contact_sheet import ThumbnailOfStrips, contact_thumbnail, thumbnail_path
from pipeline.outputs.encode import (
    EXPORTS_DIR,
    EncoderSettings,
    build_metadata,
    capture_date,
    export_rendition,
    export_rendition_strips,
    read_source_gps,
)
from pipeline.outputs.shoot import after_preview_name


class Export(Stage):
    """Encode each rendition to its file under ``exports/``, with ICC profile and metadata."""

    name: ClassVar[str] = "export"
    description: ClassVar[str] = (
        "JPEG/WebP/TIFF/PNG (8/16-bit) with ICC profile, EXIF/IPTC/XMP, file-size caps; atomic writes "
        "named by the chart's template"
    )
    reads = frozenset({"camera", "render_key"})
    writes = frozenset({"exports", "error"})
    needs_chart: ClassVar[bool] = True
    consumes = frozenset({"renditions", "after_preview"})
    resources = Resources(cpus=1, memory_mb=1000)
    writes_files: ClassVar[bool] = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        jpeg_progressive: bool = Field(
            True, description="Progressive JPEGs: show early on slow links, 2% smaller, about 4x slower to encode."
        )
        webp_method: int = Field(
            2, ge=0, le=6, description="libwebp effort 0-6: 4 (its default) is 2.4x slower than 2 for 4% smaller files."
        )
        tiff_compression: Literal["none", "lzw", "deflate"] = Field(
            "none",
            description="TIFF compression: none (every RIP reads it; 12x faster than deflate), lzw, or deflate "
            "(with the horizontal predictor; about 25% smaller on 16-bit photos).",
        )
        png_compression: int = Field(3, ge=0, le=9, description="zlib level for PNG (lossless at every level).")
        avif_speed: int = Field(
            9, ge=0, le=10,
            description="libavif/AOM speed 0-10: 9 is 4x faster than 8 and 9x faster than 6 (libavif's default) "
            "for 5% and 10% larger files at the same PSNR (2048 px, quality 60).",
        )

        def encoder_settings(self) -> EncoderSettings:
            return EncoderSettings(self.jpeg_progressive, self.webp_method, self.tiff_compression, self.png_compression,
                                   self.avif_speed)

    def process(self, item: WorkItem) -> None:
        chart: Chart = self.context.require_chart(self.name)
        rendered: dict[str, np.ndarray | RenditionStrips] = item.artifacts.pop("renditions", None) or {}
        after: np.ndarray | None = item.artifacts.pop("after_preview", None)
        r = item.record
        r.exports = []
        if not rendered:
            return
        if after is not None:  # the report's thumbnail of what is delivered
            self.write_file(self.out_path(after_preview_name(r.content_hash)), _jpeg(after))
        out_dir = Path(self.context.out_dir).resolve()
        shoot = self.context.shoot_id or Path(self.context.shoot_dir).name
        stem = item.task.stem or Path(item.task.source_path).stem
        gps_cache: dict[str, dict[str, str]] = {}
        warnings: list[str] = []
        try:
            for name in list(rendered):
                pixels = rendered.pop(name)  # freed as soon as it is written
                try:
                    self._export(item, name, pixels, chart, out_dir, shoot, stem, warnings, gps_cache)
                finally:
                    if isinstance(pixels, RenditionStrips):
                        pixels.release()  # the open RAW file the strips are read from
                del pixels
        except BaseException:
            # An image is delivered whole or not at all: a full disk (or any error) on its second
            # rendition must not leave the first on disk, listed nowhere.
            for e in r.exports:
                (out_dir / e.path).unlink(missing_ok=True)
            r.exports = []
            raise
        finally:
            for pixels in rendered.values():
                if isinstance(pixels, RenditionStrips):
                    pixels.release()
        if warnings:
            r.error = "; ".join(([r.error] if r.error else []) + warnings)

    def _export(self, item: WorkItem, name: str, pixels: np.ndarray | RenditionStrips, chart: Chart, out_dir: Path,
                shoot: str, stem: str, warnings: list[str], gps_cache: dict[str, dict[str, str]]) -> None:
        r = item.record
        rendition = chart.renditions[name]
        policy = chart.metadata_for(name)
        gps = None
        if not policy.strip_gps:
            if "gps" not in gps_cache:
                gps_cache["gps"] = read_source_gps(item.task.path)
            gps = gps_cache["gps"]
        height, width = pixels.shape[:2]
        meta = build_metadata(r, policy, None if rendition.cmyk_profile else rendition.color_space, (width, height),
                              chart.client, shoot, name, gps, ppi=rendition.ppi)
        path = output_path(
            out_dir / EXPORTS_DIR,
            chart.naming,
            client=chart.client,
            shoot=shoot,
            date=capture_date(r),
            seq=item.task.seq,
            stem=stem,
            rendition=name,
            ext=rendition.extension,
        )
        rel = path.relative_to(out_dir).as_posix()
        settings = self.params.encoder_settings()
        mark = (None if rendition.watermark is None
                else make_mark(rendition.watermark, width, height, rendition.color_space))
        proof = press_proof(rendition)
        if isinstance(pixels, RenditionStrips) and rendition.format is ImageFormat.TIFF and \
                settings.tiff_compression in ("none", "deflate"):
            thumb = ThumbnailOfStrips(width, height, rendition.color_space.value, proof=proof)

            def strips() -> Iterator[np.ndarray]:
                row = 0
                for strip in pixels.strips():
                    if mark is not None:
                        draw_mark(strip, mark, row)
                    row += strip.shape[0]
                    thumb.add(strip)
                    yield strip

            size, digest = export_rendition_strips(strips(), (width, height), rendition, meta, path, settings,
                                                  durable=False)
            write_bytes_atomic(thumbnail_path(out_dir, rel), thumb.jpeg(), durable=False)
        else:
            if isinstance(pixels, RenditionStrips):  # another format: it has to be whole to be encoded
                pixels = np.concatenate(list(pixels.strips()))
            if mark is not None:
                draw_mark(pixels, mark)
            encoded = export_rendition(pixels, rendition, meta, settings)
            if not encoded.fits:
                warnings.append(
                    f"warning: rendition {name} is {len(encoded.data) / 1024:.0f} KB at quality 1, "
                    f"above its max_file_kb of {rendition.max_file_kb}; delivered anyway"
                )
            self.write_file(path, encoded.data)
            write_bytes_atomic(thumbnail_path(out_dir, rel),
                               contact_thumbnail(pixels, rendition.color_space.value, proof=proof), durable=False)
            size, digest = len(encoded.data), hashlib.sha256(encoded.data).hexdigest()
        r.exports.append(
            ExportedFile(
                rendition=name,
                path=rel,
                width=width,
                height=height,
                bytes=size,
                format=rendition.format.value,
                sha256=digest,
            )
        )


def press_proof(rendition: Rendition) -> Callable[[np.ndarray], np.ndarray] | None:
    """A CMYK rendition's soft proof for its contact-sheet cell (:func:`pipeline.outputs.cmyk.soft_proof`); None
    for an RGB one."""
    if rendition.cmyk_profile is None:
        return None
    profile = cmyk_profile_bytes(rendition.cmyk_profile)
    space, intent = rendition.color_space.value, rendition.rendering_intent
    return lambda small: soft_proof(small, space, profile, intent)


def _jpeg(srgb8: np.ndarray, quality: int = 82) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(srgb8, "RGB").save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()
