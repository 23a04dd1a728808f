"""A white backdrop delivered white, as a retoucher cleans a packshot's background.

A product on a white sweep or a portrait on a white seamless is lit so that
the backdrop is pure white (marketplaces ask for 255, 255, 255), and the
exposure rule meters the subject and darkens such a frame only where the subject
is blown too. The backdrop
can still come out short of white: read a little under full scale (250 of
255), or blown in its brightest channel alone under a tinted light, which the
white balance makes neutral but light grey (a sweep 45 mired warm renders at
237 of 255: the gains keep luminance). Where the frame has a backdrop
(``exposure_backdrop_pct``) and its colour (``exposure_backdrop_rgb``) would
render short of white after the plan's white balance and exposure
(:func:`~pipeline.imaging.render.backdrop_level`), the rule asks the renderer
to whiten it: the pixels of the backdrop's colour are delivered white, the
subject as the corrections render it, its rim blended between
(:func:`~pipeline.imaging.render.backdrop_alpha`). A white point set on the
sweep instead (a levels move on the whole picture) clipped 3-8 % of a red
cup's highlights. A sweep whose light falls off towards the frame's corners
(``exposure_backdrop_falloff``) is whitened against its level at each place, and
the rule asks for it where its darkest part renders short of white.
The chart's ``exposure.backdrop_white: false`` leaves the
backdrop as the corrections render it.
"""

from __future__ import annotations

import math

import numpy as np

from charts.schema import Chart
from pipeline.imaging.icc import ColorSpace
from pipeline.imaging.measure.exposure import falloff_level
from pipeline.imaging.measure.metering import is_rendered
from pipeline.imaging.render import Adjustments, backdrop_level, shoulder_white
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import rounded
from pipeline.planning.state import PlanState

#: A backdrop that renders at this encoded level or above is white already (254.5 of 255: 255 once rounded).
WHITE_ALREADY = 254.5 / 255.0


def plan_whiten_backdrop(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """A ``whiten_backdrop`` operation where the frame's white backdrop would render short of white.

    Reads ``plan.white_balance_gains`` and ``plan.exposure_ev`` (the scene rules' included): the backdrop's
    colour goes through the renderer's own steps with them, as an sRGB rendition; the source's white for the
    shoulder of a push is the backdrop's brightest channel (the frame's white, where a backdrop fills 10 % of it
    or more). Where the backdrop's light falls off, the level is its darkest part's within the frame.
    """
    colour = record.exposure.backdrop_rgb
    if not (chart.exposure.backdrop_white and colour and record.exposure.backdrop_pct):
        return []
    falloff = record.exposure.backdrop_falloff
    darkest = 1.0 if not falloff else darkest_level(falloff)
    adjustments = Adjustments(wb_gains=plan.white_balance_gains, exposure_ev=plan.exposure_ev,
                              display_referred=is_rendered(record.source_kind),
                              backdrop_rgb=tuple(float(c) * darkest for c in colour))  # type: ignore[arg-type]
    white = shoulder_white(adjustments, max(colour))
    level = backdrop_level(adjustments, ColorSpace.SRGB, white, 2.0**adjustments.gain_ev if white > 1.0 else None)
    if level >= WHITE_ALREADY:
        return []
    params = {"backdrop_rgb": [rounded(c, 4) for c in colour], "level": rounded(level * 255.0, 1)}
    falls = ""
    if falloff:
        params["falloff"] = [rounded(c, 4) for c in falloff]
        falls = f" where its light falls off most ({math.log2(darkest):+.1f} EV)"
    return [Operation(
        op_id="whiten_backdrop", kind=OperationKind.WHITEN_BACKDROP, params=params,
        reason=f"the white backdrop ({record.exposure.backdrop_pct:.0f} % of the frame) would render at "
               f"{level * 255.0:.0f} of 255{falls} after the corrections: its pixels are delivered white, the "
               "subject as corrected",
        measured=rounded(level * 255.0, 1), target=255.0, confidence=1.0, applied_by=AppliedBy.RENDERER,
    )]


def darkest_level(falloff: list[float]) -> float:
    """A falling-off backdrop's lowest level within the frame against its brightest (:func:`falloff_level`, read
    on a 33 x 33 grid over the frame)."""
    t = np.linspace(0.0, 1.0, 33, dtype=np.float32)
    return float(falloff_level(falloff, t[None, :], t[:, None]).min())
