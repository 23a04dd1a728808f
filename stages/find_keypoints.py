"""Stage shell around :func:`pipeline.imaging.measure.keypoints.find_keypoints`.

The keypoints are found on the analysis proxy already in memory, in the
worker; what leaves the worker is a small evidence file (descriptors,
positions, surface colours: about 20 KB, no pixels) that planning reads to
group the shoot into scenes.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from pipeline.imaging.color import Proxy
from pipeline.imaging.measure.keypoints import MAX_KEYPOINTS, find_keypoints, keypoints_bytes, keypoints_path
from pipeline.kernel.records import WorkItem
from pipeline.kernel.stage import Resources, Stage


class FindKeypoints(Stage):
    """Proxy -> ``.postprod/keypoints/<content hash>.npz`` (what tells two views of one place from two places)."""

    name: ClassVar[str] = "find_keypoints"
    description: ClassVar[str] = (
        "ORB keypoints of the proxy at 640 px (descriptors, positions, surface colours) for scene grouping"
    )
    consumes = frozenset({"proxy"})
    writes = frozenset({"keypoints_path"})
    writes_files = True
    resources = Resources(cpus=1, memory_mb=100)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        max_keypoints: int = Field(
            MAX_KEYPOINTS, ge=16, le=2000,
            description="Keypoints kept per frame (the strongest, spread over the frame).")

    def process(self, item: WorkItem) -> None:
        proxy: Proxy = item.artifacts["proxy"]
        rel = keypoints_path(item.task.content_hash)
        self.write_file(self.out_path(rel), keypoints_bytes(find_keypoints(proxy.rgb, self.params.max_keypoints)))
        item.record.keypoints_path = rel
