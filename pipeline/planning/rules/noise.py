"""Noise reduction (the chart's ``noise``): the renderer reads each picture's noise at its own size and takes it down.

The plan cannot know how much noise a rendition holds (a web picture made small from a 24 MP frame has averaged most
of it away, a full-size master has not), so the rule only says how far to go, one ``reduce_noise`` operation an
image that a reviewer can turn down; the renderer reads the noise of every picture it makes and leaves alone one
whose grain reads as a clean photograph's (:mod:`pipeline.imaging.denoise`). Its reason gives what the analysis
read on the proxy and the ISO, for a person deciding whether a frame is too noisy to deliver.
"""

from __future__ import annotations

from charts.schema import Chart, NoiseSources
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind, SourceKind
from pipeline.planning.operations import rounded
from pipeline.planning.state import PlanState


def plan_noise(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """A ``reduce_noise`` operation where the chart reduces noise and the source is one it names."""
    rules = chart.noise
    if not (rules.luminance or rules.colour):
        return []
    if rules.sources is NoiseSources.RAW and record.source_kind is not SourceKind.RAW:
        return []
    iso = record.camera.iso
    read = record.focus.noise_sigma
    seen = ", ".join(([f"ISO {iso:.0f}"] if iso else [])
                     + ([f"{read:.1f} of 255 on the proxy"] if read is not None else []))
    return [Operation(
        op_id="reduce_noise", kind=OperationKind.REDUCE_NOISE,
        params={"luminance": rounded(rules.luminance, 2), "colour": rounded(rules.colour, 2)},
        reason=f"noise read at each delivered size and taken down where it shows ({seen or 'no reading'}): "
               f"luminance {rules.luminance:g}, colour {rules.colour:g} of the measured amount",
        measured=None if read is None else rounded(read, 2), confidence=1.0, applied_by=AppliedBy.RENDERER,
    )]
