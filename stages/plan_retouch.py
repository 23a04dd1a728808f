"""Stage shell around :mod:`pipeline.planning.plan`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from charts.schema import Chart
from pipeline.kernel.records import ImageRecord
from pipeline.kernel.stage import Resources, Stage
from pipeline.planning.plan import plan_shoot


class PlanRetouch(Stage):
    """Measurements + chart -> operations, verdict and faces to brighten."""

    name: ClassVar[str] = "plan_retouch"
    description: ClassVar[str] = "chart + measurements -> retouch operations (no pixels; shoot scope)"
    scope: ClassVar[str] = "shoot"
    reads = frozenset(
        {
            "width",
            "height",
            "exposure_ev",
            "faces",
            "sharpness",
            "phash",
            "lines_found",
            "horizon_tilt_deg",
            "verticals_tilt_deg",
            "wb_temperature_shift_k",
            "wb_cast_a",
            "wb_cast_b",
            "clipped_highlights_pct",
        }
    )
    writes = frozenset({"operations", "verdict", "faces_to_brighten"})
    resources = Resources(cpus=0.1, memory_mb=100)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        chart: str = Field("base", min_length=1, description="Chart used when the run names none (--chart).")

    def chart(self) -> Chart:
        resolved = self.context.options.get("chart")
        if resolved is None:
            from charts.loader import load_chart

            resolved = load_chart(self.params.chart)
        return resolved.chart

    def preflight(self) -> None:
        self.chart()  # a bad chart stops the run here, naming file, line and key

    def process(self, item) -> None:  # noqa: ANN001 - shoot scope: see process_shoot
        raise TypeError("plan_retouch runs on the whole shoot; executors call process_shoot")

    def process_shoot(self, records: list[ImageRecord]) -> None:
        plan_shoot(records, self.chart())
