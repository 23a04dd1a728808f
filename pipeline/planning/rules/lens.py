"""Lens profile corrections: a RAW frame's lens distortion, vignetting and colour fringes undone, where the chart
asks.

The chart's ``lens`` section says which (``distortion``, ``vignetting``,
``chromatic_aberration``; off in ``base``, on for interiors, where a wide angle
bows the walls and fringes the window frames). The
renderer makes the correction (:mod:`pipeline.imaging.lens_profile`) from the
lensfun profile of the body and lens the file names, at its focal length and
aperture. A frame whose lens has no profile, or names it too loosely to choose
one, is left as the lens drew it: no flag (a retoucher cannot check what no
profile says), but the run's summary counts such frames by why
(:func:`why_lens_left`), and the log says it at info level.
"""

from __future__ import annotations

import logging

from charts.schema import Chart, LensRules
from pipeline.imaging.lens_profile import find_profile
from pipeline.imaging.measure.metering import is_rendered
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.state import PlanState

_log = logging.getLogger(__name__)


def plan_lens_corrections(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """A ``lens_correction`` operation for a RAW frame whose lens lensfun profiles, when the chart asks for one."""
    rules = chart.lens
    if not rules.asked or record.source_kind is None or is_rendered(record.source_kind):
        return []
    camera = record.camera
    match = find_profile(camera.make, camera.model, camera.lens, camera.focal_length_mm, camera.aperture,
                         distortion=rules.distortion, vignetting=rules.vignetting,
                         chromatic_aberration=rules.chromatic_aberration)
    if match.profile is None:
        _log.info("%s: lens not corrected: %s", record.source_path, match.why)
        return []
    plan.lens = match.profile
    return [Operation(
        op_id="lens", kind=OperationKind.LENS_CORRECTION, params=match.profile.as_params(),
        reason=f"lens profile (lensfun): {match.why}; {match.profile.corrections} corrected",
        applied_by=AppliedBy.RENDERER,
    )]


def why_lens_left(record: ImageRecord, rules: LensRules) -> str:
    """Why a RAW frame's lens was not corrected under ``rules`` (the run's summary counts the frames by it)."""
    camera = record.camera
    return find_profile(camera.make, camera.model, camera.lens, camera.focal_length_mm, camera.aperture,
                        distortion=rules.distortion, vignetting=rules.vignetting,
                        chromatic_aberration=rules.chromatic_aberration).why
