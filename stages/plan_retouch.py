"""Stage shell around :mod:`pipeline.planning.plan`."""

from __future__ import annotations

import os
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from charts.schema import Chart
from pipeline.imaging.measure.keypoints import KeypointFiles
from pipeline.kernel.records import ImageRecord, Status
from pipeline.kernel.stage import Resources, Stage
from pipeline.planning.plan import plan_shoot


class PlanRetouch(Stage):
    """Measurements + chart -> operations, verdict and faces to brighten."""

    name: ClassVar[str] = "plan_retouch"
    description: ClassVar[str] = "chart + measurements -> retouch operations (no pixels; shoot scope)"
    scope: ClassVar[str] = "shoot"
    reads = frozenset({"source_kind", "camera", "frame", "camera_raw", "exposure", "colour", "focus", "lines",
                       "content", "faces"})
    # find_keypoints' evidence, when the graph has it: scenes are then told apart by what frames show.
    reads_if_present = frozenset({"keypoints_path", "unsure_faces"})
    writes = frozenset({"operations", "plan"})
    needs_chart: ClassVar[bool] = True
    resources = Resources(cpus=0.1, memory_mb=100)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        chart: str = Field("base", min_length=1, description="Chart used when the run names none (--chart).")

    def chart(self) -> Chart:
        return self.context.require_chart(self.name)

    def process(self, item) -> None:  # noqa: ANN001 - shoot scope: see process_shoot
        raise TypeError("plan_retouch runs on the whole shoot; executors call process_shoot")

    def process_shoot(self, records: list[ImageRecord]) -> None:
        # The keypoints are evidence files (descriptors, no pixels), read one run of frames at a time by the
        # scene grouping (KeypointFiles keeps none); one that is missing or damaged leaves its frame to be
        # grouped by its light and palette alone.
        # Paths as text: a Path a frame, held through planning, made pathlib intern every file name, and
        # Python's table of interned strings never shrinks (3.7 MB more at 3,000 frames; RESULTS.md, target 5).
        # Handed over one at a time: KeypointFiles keeps a hash-named file's 32 bytes, not the path.
        out = str(self.out_path())
        keypoints = KeypointFiles((i, os.path.join(out, r.keypoints_path)) for i, r in enumerate(records)
                                  if r.status is Status.OK and r.keypoints_path
                                  and ".." not in r.keypoints_path.split("/"))
        plan_shoot(records, self.chart(), keypoints=keypoints)
