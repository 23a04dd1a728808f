"""Write a small sRGB preview of the analysis proxy, for the shoot report and reviews.

Made from the proxy already in memory: no second decode.
"""

from __future__ import annotations

import io
from typing import ClassVar

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from pipeline.imaging.color import Proxy, to_srgb8
from pipeline.imaging.decode import fit_long_edge
from pipeline.kernel.records import WorkItem
from pipeline.kernel.stage import Resources, Stage

PREVIEW_DIR = "previews"


def preview_jpeg(proxy: Proxy, long_edge: int, quality: int) -> bytes:
    """JPEG bytes of the proxy, downscaled to ``long_edge``, sRGB-encoded."""
    rgb8 = to_srgb8(fit_long_edge(proxy.rgb, long_edge))
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
        rel = f"{PREVIEW_DIR}/{item.task.content_hash[:24]}.jpg"
        self.write_file(
            self.out_path(rel), preview_jpeg(item.artifacts["proxy"], self.params.long_edge, self.params.quality)
        )
        item.record.preview_path = rel
