"""Acceptance checks: flag or reject a frame that fails one of the chart's limits."""

from __future__ import annotations

from charts.schema import AcceptanceAction, Chart, ClippingRegion
from pipeline.imaging.measure.common import WORK_LONG_EDGE
from pipeline.imaging.measure.metering import balanced, exposed, is_rendered
from pipeline.kernel.records import ImageRecord, Operation
from pipeline.planning.operations import check_operation, rounded
from pipeline.planning.rules.exposure import offset_confidence, reading_spread
from pipeline.planning.rules.white_balance import develops_raw, face_colours, is_monochrome, is_skin, shown, sky_turned
from pipeline.planning.state import PlanState

# Variance of the Laplacian of sRGB values scales with contrast squared; after a
# gain of 2**ev in linear light, sRGB contrast grows by about 2**(ev/2.2).
SHARPNESS_EV_EXPONENT = 2 / 2.2
# Confidence that a frame is soft: a coin toss just under the limit, rising by
# the shortfall as a fraction of the limit (certain at half the limit).
SOFT_AT_LIMIT_CONFIDENCE = 0.5
#: A face's sharpness (:func:`~pipeline.imaging.faces.face_sharpness`: the Laplacian's variance on 8-bit grey,
#: 0-255, the face resampled 128 px wide) in the units of the frame's (the same variance on encoded luma in
#: [0, 1] times 1e4, the frame 512 px long): 255**2 / 1e4. A headshot's face is about a quarter of the frame,
#: so at those sizes the two read one scale: sharp portraits blurred alike (a Gaussian of 0.5-1.0 px at
#: 512 px, 50 photos of serengil/deepface's and ageitgey/face_recognition's samples) read a median face /
#: frame ratio of 5.3-7.2.
FACE_TO_FRAME_UNITS = 255.0**2 / 1e4
#: A frame is in focus somewhere when its sharpest part (:attr:`~pipeline.kernel.records.FocusMeasure.sharpness_peak`:
#: its three sharpest tiles of 48) reads this many times the chart's minimum for the whole frame: a subject in focus
#: before a background blurred on purpose. Fitted by ``benchmarks/sharpness_check.py --fit`` on the accuracy
#: benchmark's 24 tuning photos and their twins blurred by a Gaussian of 0.7, 1 and 2 px of the 512-px copy: the
#: whole frame alone flagged 6 of the 24 as published (a ladybird, an apple blossom, a marigold, a leaf in
#: backlight, fog over a field, a misty lake at dusk); any value from 2.5 to 3.0 flags 1 (the lake, soft all
#: over) and finds the 1-px twins as often as without it (22 of 24; 0.7 px: 13 -> 10 or 11); 2.7 lies inside.
#: Judged after on the held-out split (SHARPNESS.md: the whole frame's rule replayed on the manifest, against
#: postprod's flags): originals flagged 9 -> 2 of 31, 0.7-px twins found 25 -> 20, 1-px 29 -> 27, 2-px 31 of 31.
SHARP_PART_TO_FRAME = 2.7


def check_sharpness(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """Soft or missed focus: sharpness, as it will look after ``plan.exposure_ev``, under the chart's minimum.

    The figure is read on a copy :data:`~pipeline.imaging.measure.common.WORK_LONG_EDGE` px long, where the
    chart's minimum is set: a picture smaller than that is enlarged to it, and reads soft however sharp it is
    (ianare/exif-samples' 100 px thumbnails read 0.5-4.5 against 15), so it is not judged.

    A frame with faces that count is in focus when its sharpest face is, in the frame's units
    (:data:`FACE_TO_FRAME_UNITS`): a portrait's background is often soft on purpose, and read whole, 12 of 79
    press and studio portraits (serengil/deepface's and ageitgey/face_recognition's samples, faces reading
    108-356 where sharp faces read 200-1100) were rejected as soft under ``corporate_portrait``. One-way: a
    soft face does not condemn a sharp frame (smooth skin and make-up read soft: a sharp made-up face read
    101), so a focus missed onto the background is left to the equipment checks' focus misses.

    So is a frame whose sharpest part is sharp (:data:`SHARP_PART_TO_FRAME`): a macro's subject, a figurine
    before a blurred lamp, a drop on a blade of grass. Read whole, their soft backgrounds made a quarter of the
    accuracy benchmark's published photos "soft or out of focus".
    """
    if record.focus.sharpness is None or max(record.frame.width or 0, record.frame.height or 0) < WORK_LONG_EDGE:
        return []
    gain = 2 ** (plan.exposure_ev * SHARPNESS_EV_EXPONENT)
    seen = record.focus.sharpness * gain
    limit = chart.acceptance.sharpness.min_laplacian_var
    faces = [record.faces[i].sharpness for i in plan.faces_that_count if record.faces[i].sharpness is not None]
    if faces and max(faces) * gain >= limit * FACE_TO_FRAME_UNITS:
        return []
    peak = record.focus.sharpness_peak
    if peak is not None and peak * gain >= limit * SHARP_PART_TO_FRAME:
        return []  # in focus where it is sharp: the rest is soft on purpose (:data:`SHARP_PART_TO_FRAME`)
    if seen < limit:
        return check_operation(chart.acceptance.sharpness.action, "sharpness",
                               f"soft or out of focus: sharpness {seen:.1f} < {limit:g}", seen, limit,
                               confidence=min(1.0, (limit - seen) / limit + SOFT_AT_LIMIT_CONFIDENCE))
    return []


def check_clipped_highlights(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """More clipped at white than ``acceptance.clipped_highlights.max_pct``: of the whole frame (of a merged
    bracket's darkest frame), or with ``region: faces`` of the skin of the faces that count (the largest share; the
    frame's when none was measured).
    """
    rule = chart.acceptance.clipped_highlights
    skin = [record.faces[i].clipped_pct for i in plan.faces_that_count]
    rest = None
    if rule.region is ClippingRegion.FACES and skin and None not in skin:
        clipped, where = max(skin), "of the skin of a face"  # type: ignore[type-var]
    elif plan.merged_clipped_pct is not None:  # what the bracket's darkest frame left clipped
        clipped, where = plan.merged_clipped_pct, "of pixels, after merging its bracket,"
    else:
        clipped, where = record.exposure.clipped_highlights_pct, "of pixels"
        rest = backlit_rest_ev(record, chart, plan)
    if clipped is not None and clipped > rule.max_pct:
        note, extra = "", {}
        if rest is not None:
            after = " after the correction" if plan.exposure_ev else ""
            ask = ("a lift of the shadows is proposed (lift_shadows)" if lifts_backlit_shadows(chart, plan)
                   else "lift the shadows locally if they should show")
            note = (f"; the rest of the frame reads {rest:+.2f} EV{after}: backlit (a sky, a window)? a global "
                    f"brightening would clip more: {ask}")
            extra = {"rest_ev": rounded(rest, 2)}
        share = over_limit_pct(clipped, rule.max_pct)
        return check_operation(rule.action, "clipped_highlights",
                               f"{share}% {where} clipped in the highlights (max {rule.max_pct:g}%){note}",
                               clipped, rule.max_pct, **extra)
    return []


def over_limit_pct(value: float, limit: float) -> str:
    """A share over its limit as a flag says it: one decimal, or as many more (up to three) as it takes for the
    printed figure to read over the limit ("1.04% ... (max 1%)", not "1.0% ... (max 1%)")."""
    for decimals in (1, 2, 3):
        text = f"{value:.{decimals}f}"
        if float(text) > limit:
            return text
    return text


def lifts_backlit_shadows(chart: Chart, plan: PlanState) -> bool:
    """Whether a backlit frame (:func:`backlit_rest_ev`) is proposed a lift of its shadows
    (:mod:`pipeline.planning.rules.shadows`): where the chart asks for it and no face counts."""
    return chart.exposure.lift_backlit_shadows and not plan.faces_that_count


def backlit_rest_ev(record: ImageRecord, chart: Chart, plan: PlanState) -> float | None:
    """What the rest of a frame whose own clipping is flagged reads (EV against the chart's target, after the plan's
    correction), read without its clipped pixels (``exposure.unclipped_key_ev``), when it stays under the target
    as surely as the plan's gate asks of a correction (beyond ``exposure.tolerance_ev``, ``exposure.min_confidence``
    sure over the reading's spread, :func:`~pipeline.planning.rules.exposure.offset_confidence`); None otherwise.
    The clipped-highlights flag then says so in its reason and gives it as ``params.rest_ev``.

    None also when the exposure is keyed on faces (they say how bright the picture is), on a white backdrop
    (white by design: a logo on white, 80 % of its frame, read its rest 2 EV under), and when the frame reads over
    as surely as a darkening asks: the darkening, applied or proposed, is the plan's answer, and a note asking for
    the opposite would contradict it (the Kodak suite's ``kodim20``, a plane on grass under a white sky, reads
    2.3 EV over and its rest 0.6 under: :func:`~pipeline.planning.rules.exposure.clipping_asks_darkening` proposes
    its darkening). A merged bracket's clipping and a face's skin (``region: faces``) are not asked about.

    A dusk sky or a window at white holds the whole frame's reading near the target (the meter is never read
    darker than its white point: :func:`~pipeline.imaging.measure.metering.meter_log2`), so a backlit frame gets
    no brightening and the flag alone read as a call to darken. The FiveK balcony at dusk developed 1.5 EV
    under (the shared data's ``a4874..._N1.5``) is 5.3 % clipped and read 0.3 EV over, "ok", while its table and
    diner read 2.1 EV under: the retoucher's work there is a local lift of the shadows, which a global push
    cannot do without clipping the sky further. A bright sky over a foreground dark by intent (a sunset's
    silhouettes) reads the same: the note says what the rest reads and leaves the choice to the eye. The mirror
    case, a blown part making a frame read over, is :func:`~pipeline.planning.rules.exposure.clipping_asks_darkening`.
    """
    unclipped = record.exposure.unclipped_key_ev
    if plan.key_faces or unclipped is None or record.exposure.backdrop_pct:
        return None
    ex = chart.exposure
    offset = plan.exposure_offset_ev
    if offset is not None and offset > ex.tolerance_ev and (plan.exposure_confidence or 0.0) >= ex.min_confidence:
        return None
    rest = unclipped - ex.target_ev + plan.exposure_ev  # after the plan's correction (+ = brightened)
    spread = plan.exposure_spread_ev or reading_spread(False, True)
    if not (rest < -ex.tolerance_ev and offset_confidence(rest, spread) >= ex.min_confidence):
        return None
    return rest


def check_clipped_shadows(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """More of the frame crushed to black (:func:`crushed_pct`) than ``acceptance.clipped_shadows.max_pct`` (of a
    merged bracket's brightest frame)."""
    rule = chart.acceptance.clipped_shadows
    shadows = crushed_pct(record) if plan.merged_crushed_pct is None else plan.merged_crushed_pct
    if shadows is not None and shadows > rule.max_pct:
        where = ", after merging its bracket," if plan.merged_crushed_pct is not None else ""
        share = over_limit_pct(shadows, rule.max_pct)
        return check_operation(rule.action, "clipped_shadows",
                               f"{share}% of pixels{where} crushed to black (max {rule.max_pct:g}%)",
                               shadows, rule.max_pct)
    return []


def crushed_pct(record: ImageRecord) -> float | None:
    """The share of a frame's pixels crushed to black: black in every channel (None when not measured).

    A channel at black in a saturated colour is not a shadow without detail: the red of a deep blue sky, the blue
    of a yellow flower or of a green fern. Counted in the worst channel, as it was, the flag told a retoucher
    "16.4 % of pixels crushed to black" of a sunlit cliff under a blue sky whose darkest pixels are dark grey:
    of the 27 published photos no constant saw (photoprism's 47 examples, immich's test photos, 49 Wikimedia
    photos, the Kodak suite) that had more than 5 % of their pixels at black in some channel, 23 had under 5 % of
    black pixels, most none (a shark in blue water 47.6 % against 0.0, a fern 36.3 % against 0.0); the four with
    a real black (an elephant on black, a night street, a beach through a colour filter, a Wikimedia night view)
    still are flagged. A record measured before the black share was (``clipped_shadows_pct`` null) is read on its
    worst channel, as it was then.
    """
    ex = record.exposure
    if ex.clipped_shadows_pct is not None:
        return ex.clipped_shadows_pct
    shadows = [v for v in (ex.clipped_shadows_pct_r, ex.clipped_shadows_pct_g, ex.clipped_shadows_pct_b)
               if v is not None]
    return max(shadows) if shadows else None


def check_face_required(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """No face that counts, where the chart requires one (headshots)."""
    if plan.faces_that_count:
        return []
    return check_operation(chart.acceptance.face_required.action, "face_required",
                           "no face large enough for this chart" if record.faces else "no face found", 0.0, 1.0)


def check_colour_checker(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """A ColorChecker in the frame (``record.colour.colour_checker``): not for the client's eyes. Where it is
    goes with the flag (``params["region"]``, fractions of the frame) for the retoucher who removes it."""
    if not record.colour.colour_checker:
        return []
    box = record.colour.colour_checker_box
    where = ("" if box is None else f" ({box[0]:.0%}-{box[2]:.0%} across, {box[1]:.0%}-{box[3]:.0%} down)")
    region = {} if box is None else {"region": [float(v) for v in box]}
    return check_operation(chart.acceptance.colour_checker.action, "colour_checker",
                           f"a ColorChecker in the frame{where}, its white balance read off it: remove the chart "
                           "or leave the reference frame out of the delivery", 1.0, 0.0, **region)


def check_skin_after_exposure(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """Faces skin-coloured before the exposure correction, or as shot under a scene's matched white, that the
    correction the renderer makes takes it from.

    The white-balance rule keeps skin skin under its own gains; the exposure
    correction, decided after it, scales every channel alike, which keeps a
    face's hue but not its CIELAB chroma: a pale face darkened by a stop and a
    half or more reads grey (chroma under 10). A scene's matched white
    (``plan.white_balance_matched``) replaces the rule's own gains with ones no
    rule judged the skin under: a face skin-coloured as shot that the scene's
    cooler white turns pink or grey is lost to it, exposure or none. Judged on
    each detected face's colour after ``plan.white_balance_gains`` and
    ``plan.exposure_ev``, as the renderer will show it (a rendered source's
    white balance display-referred,
    :func:`~pipeline.imaging.measure.metering.balance_display_referred`, and
    its darkening in its scene light,
    :func:`~pipeline.imaging.measure.metering.darken_display_referred`; the
    faces' local lifts aside); a retoucher is told which faces. Nothing for a
    black-and-white picture.
    """
    matched = plan.white_balance_matched
    if not (plan.exposure_ev or matched) or is_monochrome(record):
        return []
    rendered, developed = is_rendered(record.source_kind), develops_raw(chart)
    lost = []
    for i, rgb in face_colours(record):
        balanced_rgb = balanced(rgb, plan.white_balance_gains, rendered)
        before = shown(rgb if matched else balanced_rgb, rendered, developed)
        after = shown(exposed(balanced_rgb, plan.exposure_ev, rendered), rendered, developed)
        if is_skin(before) and not is_skin(after):
            lost.append(i)
    if not lost:
        return []
    faces = ", ".join(str(i + 1) for i in lost)
    by = " and ".join(([f"the {plan.exposure_ev:+.2f} EV exposure correction"] if plan.exposure_ev else [])
                      + (["the scene's matched white balance"] if matched else []))
    return check_operation(AcceptanceAction.FLAG, "skin_exposure",
                           f"face(s) {faces} lose their skin colour with {by} (grey, off-hue or washed out): check skin "
                           "tones by eye", plan.exposure_ev, 0.0, faces=[i + 1 for i in lost])


def check_sky_after_scene_white(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """A frame rendered at its scene's matched white (``plan.white_balance_matched``) whose blue sky that white turns
    teal, green, yellow, purple or grey (:func:`~pipeline.planning.rules.white_balance.sky_turned`): a retoucher is
    told.

    The white-balance rule proposes, and does not apply, a correction of its own that would do so; a scene's matched
    white replaces the frame's own with one the scene's other frames asked for, and is applied to keep the scene
    consistent: it is kept, and the frame flagged (as :func:`check_skin_after_exposure` flags the faces it greys).
    """
    if not plan.white_balance_matched:
        return []
    turned = sky_turned(record, plan.white_balance_gains)
    if turned is None:
        return []
    return check_operation(AcceptanceAction.FLAG, "sky_white_balance",
                           f"the scene's matched white balance: {turned}: check the sky by eye (a frame corrected "
                           "on its own, or the scene's white moved in the review)", None, None)
