"""Write a small sRGB preview of the analysis proxy, for the shoot report and reviews.

Made from the proxy already in memory: no second decode. A RAW's is developed through the camera-like curve
(:func:`~pipeline.imaging.measure.metering.develop`), as its renditions are by default, and named
``<hash>.dev.jpg`` (:data:`~pipeline.outputs.shoot.DEVELOPED_PREVIEW_SUFFIX`) so that whoever reads it back as
light (the review's thumbnails) knows to undo it.
"""

from __future__ import annotations

import io
from typing import ClassVar

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from pipeline.imaging.color import Proxy, to_srgb8
from pipeline.imaging.decode import fit_long_edge
from pipeline.imaging.measure.metering import develop, is_rendered
from pipeline.outputs.shoot import DEVELOPED_PREVIEW_SUFFIX
from pipeline.kernel.records import WorkItem
from pipeline.kernel.stage import Resources, Stage

PREVIEW_DIR = "previews"


def preview_jpeg(proxy: Proxy, long_edge: int, quality: int, develop_curve: bool = False) -> bytes:
    """JPEG bytes of the proxy, downscaled to ``long_edge``, developed through the camera-like curve when asked
    (a RAW's scene light), sRGB-encoded."""
    rgb = fit_long_edge(proxy.rgb, long_edge)
    rgb8 = to_srgb8(develop(rgb) if develop_curve else rgb)
    buf = io.BytesIO()
    Image.fromarray(rgb8).save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


class WritePreview(Stage):
    """Proxy -> ``previews/<content hash>.jpg``."""

    name: ClassVar[str] = "write_preview"
    description: ClassVar[str] = "small sRGB JPEG of the proxy for the report and the review app"
    consumes = frozenset({"proxy"})
    writes = frozenset({"preview_path"})
    writes_files = True
    resources = Resources(cpus=1, memory_mb=100)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        long_edge: int = Field(640, ge=64, le=4096, description="Long edge of the preview in pixels.")
        quality: int = Field(82, ge=30, le=100, description="JPEG quality.")

    def process(self, item: WorkItem) -> None:
        developed = not is_rendered(item.record.source_kind)
        rel = f"{PREVIEW_DIR}/{item.task.content_hash[:24]}{DEVELOPED_PREVIEW_SUFFIX if developed else '.jpg'}"
        self.write_file(self.out_path(rel), preview_jpeg(item.artifacts["proxy"], self.params.long_edge,
                                                         self.params.quality, developed))
        item.record.preview_path = rel
