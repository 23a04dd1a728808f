"""Exposure: one number, the offset the plan corrects, keyed on the faces that count or on the whole frame."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from charts.schema import AcceptanceAction, Chart, ClippingRegion, ExposureMeter
from pipeline.imaging.measure.exposure import BACKDROP_SUBJECT_CLIPPED_PCT
from pipeline.imaging.measure.metering import (
    FACE_LOG2,
    FACE_SPREAD_EV,
    FRAME_SPREAD_EV,
    WHITE_FADE_EV,
    balanced,
    exposed,
    is_rendered,
)
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import check_operation, proposed, rounded
from pipeline.planning.rules.faces import faces_in_a_shadow, lit_band, lit_reading_of_lone_face
from pipeline.planning.rules.white_balance import (
    SKIN_STEPS,
    develops_raw,
    face_colours,
    is_monochrome,
    is_skin,
    shown,
)
from pipeline.planning.state import PlanState

#: A rendered picture the plan would darken by this many EV or more (by any amount, the frame's own rule with the
#: whole frame as the witness: :func:`bright_by_intent`) ...
BRIGHT_BY_INTENT_EV = 1.0
#: ... while fewer than this percent of its highlights' pixels clip at white is left as shot and flagged
#: (:func:`bright_by_intent`).
BRIGHT_BY_INTENT_CLIPPED_PCT = 2.0
#: A darkening of a frame this much of which is clipped at white is proposed to a person, never applied
#: (:func:`clipping_asks_darkening`): most of the picture would turn a flat, featureless grey. Half the
#: frame, by judgement (the blown part is then most of what is seen), not fitted.
BLOWN_MAJORITY_PCT = 50.0


def faces_hold_their_detail(record: ImageRecord, faces: Sequence[int]) -> bool | None:
    """Whether the skin of ``faces`` (indices) keeps its detail: each face's centre under
    :data:`BRIGHT_BY_INTENT_CLIPPED_PCT` % clipped (:attr:`~pipeline.kernel.records.Face.clipped_pct`)
    and still skin-coloured (:func:`~pipeline.planning.rules.white_balance.is_skin`: a face developed
    over with a soft shoulder washes out to grey before it clips). None when there is no face or one
    was not measured (an analysis from before faces were).
    """
    shown = [record.faces[i] for i in faces]
    if not shown or any(f.clipped_pct is None or f.colour_rgb is None for f in shown):
        return None
    return all(f.clipped_pct < BRIGHT_BY_INTENT_CLIPPED_PCT and is_skin(np.asarray(f.colour_rgb))  # type: ignore[operator]
               for f in shown)


def highlight_witnesses(chart: Chart, plan: PlanState) -> tuple[int, ...]:
    """The faces whose skin says whether a picture is bright by intent (:func:`bright_by_intent`).

    Under ``exposure.meter: faces`` (a headshot chart), the faces the plan keys on: the chart reads the
    exposure on them alone because the backdrop says nothing, and a white seamless blown on purpose says
    nothing by its clipping either. Under the blended meter, none (the whole frame's highlights): of the
    FiveK photos developed 1.5 EV over with a soft shoulder, a group of children in shade keeps its faces
    unclipped and skin-coloured (chroma 13-20) while the frame reads 1.2 EV over, and is corrected
    within 0.3 EV of its truth only as long as the frame is the witness.
    """
    return plan.key_faces if chart.exposure.meter is ExposureMeter.FACES else ()


def tolerated_clipping_pct(chart: Chart) -> float:
    """Share of a frame's pixels (%) that may clip at white while its highlights still count as holding their detail
    (:func:`bright_by_intent`): :data:`BRIGHT_BY_INTENT_CLIPPED_PCT`, or the chart's own clipped-highlights limit
    on the whole frame where that allows more (``real_estate_interiors``' 5 %: a listing's windows and ceiling
    lights blow a little by the chart's own standard).

    A bright interior as published (a white kitchen with black appliances, an Unsplash photo of a sample repository,
    ggoni/computer_vision-udd's ``office_desk.jpg``: 4.5 % clipped, the meter 1.3 EV over) was darkened by 1 EV
    under ``real_estate_interiors``: its white cabinets turned grey, the opposite of the chart's "bright and airy,
    white walls read white". Not fitted: the chart's limit, which a client sets. A limit on the faces alone
    (``region: faces``, a headshot chart) says nothing of the frame.
    """
    check = chart.acceptance.clipped_highlights
    if check.region is not ClippingRegion.FRAME:
        return BRIGHT_BY_INTENT_CLIPPED_PCT
    return max(BRIGHT_BY_INTENT_CLIPPED_PCT, check.max_pct)


def bright_by_intent(record: ImageRecord, needed_ev: float, faces: Sequence[int] = (),
                     any_darkening: bool = False, tolerated_pct: float = BRIGHT_BY_INTENT_CLIPPED_PCT) -> str | None:
    """Whether a darkening of ``needed_ev`` (negative) would more likely grey a bright picture than fix an
    over-exposed one: a rendered source (its brightness was chosen when it was developed) darkened by
    :data:`BRIGHT_BY_INTENT_EV` or more whose highlights hold their detail: the skin of ``faces``
    (:func:`highlight_witnesses`, :func:`faces_hold_their_detail`) when given and measured, else the whole
    frame (under ``tolerated_pct`` % of its pixels clipped: :func:`tolerated_clipping_pct`). Returns what holds its
    detail, in the words of :func:`bright_flag`, or None when the darkening stands.

    A picture developed a stop or more over pushes its scene's upper tones past white: the accuracy
    benchmark's rendered twins 1 to 2 EV over clip a median 14-36 % of their pixels, and the centres of
    their faces 5-80 %. A white backdrop, snow or fog developed bright on purpose keeps its whites under
    full scale, and the meter, which cannot tell a white scene from a grey one too bright, read
    photoprism's pineapple on white and tree in snow 2.4 EV over and darkened them 2 EV to grey. A
    high-key headshot blows its seamless on purpose while its skin keeps its detail: read on the whole
    frame (60-66 % clipped), serengil/deepface's two white-seamless portraits were darkened 1.1 EV under
    corporate_portrait, greying the backdrop; their faces clip 0.0-0.2 % and keep a skin chroma of 15,
    where the FiveK couple developed 1.5 EV over, whose faces clip 0.0-0.8 %, have washed out to a chroma
    of 4-5. Set from those figures, not fitted: on the tuning split and on immich-app/test-assets' photos
    the frame's rule changes no decision (no rendered twin loses its correction, no original is spared),
    and it leaves RAWs alone (there it would cost a twin 1 EV over and spare nothing). Measured since
    (2026-12-05): a converter whose shoulder keeps a push under the clipping (darktable's default pipeline,
    ``benchmarks/exposure_converters.py``; Adobe's, the FiveK renders of ``benchmarks/fivek_check.py``) is what it
    costs: on the tuning split's darktable twins it spares six developed 1-2 EV over, and two FiveK renders 1.5 EV
    over; on photoprism's example photos it spares a pineapple and a table on white, a tree against white and two
    more photos read 1.0-2.6 EV over that are right as published (``benchmarks/DO_NO_HARM_PHOTOPRISM.md``). No
    measure of the record tells the two apart (the darkest percentiles, the clipped share and the white point
    overlap), so it stays, and the flag sends both to a person.

    With ``any_darkening`` (the frame's own exposure rule; a scene's matched darkening rests on its frames' camera
    settings and keeps the stop) the whole frame's witness spares a darkening of any size: under a stop, a rendered
    picture under 2 % clipped may be a little over, but the meter reads such pictures over more often than they are.
    On the accuracy benchmark's tuning split its rendered darkenings of 0.33-1 EV under 2 % clipped were six: one
    twin developed a stop over, one 0.4 EV over darkened by 0.88, and four developed 0.7-1 EV *under* (the meter
    read them over: darkened by 0.54-0.88 EV); sparing them all takes its rendered wrong-sign corrections from 4 to 0
    of 85 and the 95th percentile of its rendered errors from 1.54 to 1.30 EV, the median unchanged (0.40). The
    held-out split, checked after: wrong signs 2 -> 1 of 127, rendered 0 EV twins within 0.3 EV 26 -> 28 of 40, the
    median and 95th percentile unchanged (0.49, 1.50); it costs a twin developed 1.5 EV over (darkened 0.78
    before, now left) and leaves two 0.4 EV over as shot. The skin witness keeps the stop.

    A frame on a white backdrop (``exposure.backdrop_pct``: a packshot on a sweep, a portrait on a blown
    seamless; :func:`~pipeline.imaging.measure.exposure.white_backdrop`), RAW or rendered, is never darkened
    by the renderer: its subject is metered alone, and a darkening of any size would grey the backdrop,
    which must stay white. A subject that needs darkening is a retoucher's local work. Unless the subject is
    blown too (:data:`~pipeline.imaging.measure.exposure.BACKDROP_SUBJECT_CLIPPED_PCT` of its pixels or more,
    a backdrop that surrounds it: a glossy product shot over): such a frame was read whole as a scene developed
    over and darkened up to 2 EV, its subject with it; metered on the subject it is darkened less, as its
    clipping allows, and the chart's ``exposure.backdrop_white`` delivers the backdrop white after it.
    """
    backdrop = record.exposure.backdrop_pct
    subject_blown = (record.exposure.clipped_highlights_pct or 0.0) >= BACKDROP_SUBJECT_CLIPPED_PCT
    if needed_ev < 0 and backdrop and not subject_blown:
        return f"a darkening would grey its white backdrop ({backdrop:.0f} % of the frame)"
    stop_or_more = needed_ev <= -BRIGHT_BY_INTENT_EV
    if not (is_rendered(record.source_kind) and (stop_or_more or (any_darkening and needed_ev < 0))):
        return None
    skin = faces_hold_their_detail(record, faces)
    if skin is not None:
        if not stop_or_more:
            return None
        clipped = max(record.faces[i].clipped_pct for i in faces)  # type: ignore[type-var]
        return f"its faces' skin holds its detail ({clipped:.1f} % clipped)" if skin else None
    clipped = record.exposure.clipped_highlights_pct
    if clipped is None or not clipped < tolerated_pct:
        return None
    return f"its highlights hold their detail ({clipped:.1f} % clipped)"


def bright_flag(record: ImageRecord, read: str, held: str, confidence: float = 1.0) -> list[Operation]:
    """The flag of a picture :func:`bright_by_intent` leaves as shot; ``read`` says what it was read to need,
    ``held`` what :func:`bright_by_intent` found holding its detail."""
    return check_operation(
        AcceptanceAction.FLAG, "exposure_bright",
        f"{read}, but {held}: a bright picture by intent (a white backdrop or room, snow, fog)? left as shot, "
        "check by eye",
        record.exposure.meter_ev, 0.0, confidence=confidence)


def clipping_asks_darkening(record: ImageRecord, chart: Chart, plan: PlanState, needed_ev: float) -> str | None:
    """Whether a darkening of ``needed_ev`` (negative) of a frame read whole (no faces keyed) is asked for by its
    clipped pixels: the frame is clipped beyond the chart's ``acceptance.clipped_highlights.max_pct`` and, read
    without its pixels clipped at white (``exposure.unclipped_key_ev``), would not pass the plan's own gate for a
    darkening (beyond ``exposure.tolerance_ev``, at least ``exposure.min_confidence`` sure over the frame reading's
    spread, :func:`offset_confidence`). Returns what the retoucher is told, or None when the darkening stands.

    A white overcast sky filling half a landscape, or a row of blown windows, puts the frame's key in what is
    blown: the Kodak suite's ``kodim20`` (a plane on grass under a white sky, 49.5 % clipped) read 2.3 EV over and
    was darkened by 2 EV, its grass from sRGB 99 to 16, while the grass alone reads 0.6 EV under. A scene
    developed over reads over without its blown part too, mostly (the accuracy benchmark's twins 1 to 2 EV over);
    a frame that reads over only with it may be either, and no meter tells which. Such a darkening is proposed to
    a person (:data:`~pipeline.kernel.records.RENDER_ON_ACCEPT`: the renderer applies it once accepted), not
    applied: the frame is in a person's hands for its clipping already, and a retoucher who sees a landscape
    darkened to mud stops trusting the rest. Not fitted: the chart's clipping limit and its exposure gate. On the
    accuracy benchmark (base) it proposes 29 of the plan's 173 darkenings instead of applying them, on frames 2.8-65 %
    clipped: of the held-out split's 95, 13 of the 75 the truth calls for (0.7 EV or more) and 5 of the 20 it does
    not (a published photo under a bright sky, ``Kleiber``, and its twins at 0 and +0.4 EV, darkened by 0.8-1.3 EV);
    of the tuning split's 78, 11 of the 58 it calls for and none of the 20 it does not. The sign of the rest's
    reading alone (proposed only when it reads under the target) was tried: it proposed 12 darkenings the truth calls
    for and none it does not, and left three of the four photos under a pasted white sky (tests/test_blown_sky.py)
    darkened. Faces, where the plan keys on them, say how bright the picture is, and the darkening stands.

    Whatever the rest reads and whatever is keyed, a frame :data:`BLOWN_MAJORITY_PCT` or more clipped is not darkened
    unseen: its blown part, most of the picture, would turn a flat grey (photoprism's screenshot of a white web
    page, 69 % clipped, its grey bars reading 1.7 EV over, was darkened 2 EV to a grey page; snow and a white shop
    front read so too). On the accuracy benchmark the darkenings it moves from applied to proposed are 8, all of
    twins developed 2 EV over (52-96 % clipped), where the truth asks for them: proposed, they count as made.
    """
    unclipped, clipped = record.exposure.unclipped_key_ev, record.exposure.clipped_highlights_pct
    if needed_ev < 0 and clipped is not None and clipped >= BLOWN_MAJORITY_PCT:
        return (f"{clipped:.0f} % of the frame is clipped at white: a darkening turns it a flat grey (snow, a white "
                "wall or screen?). Proposed, not applied: accept it if the scene is over-exposed")
    if plan.key_faces or not needed_ev < 0 or unclipped is None or clipped is None:
        return None
    ex = chart.exposure
    if not clipped > chart.acceptance.clipped_highlights.max_pct:
        return None
    rest = unclipped - ex.target_ev
    spread = plan.exposure_spread_ev or reading_spread(False, True)
    if rest > ex.tolerance_ev and offset_confidence(rest, spread) >= ex.min_confidence:
        return None
    return (f"{clipped:.0f} % of the frame is clipped at white and the rest alone reads {rest:+.2f} EV: the blown "
            "part (a sky, a window?) makes the reading. Proposed, not applied: accept it if the scene is over-exposed")


def darkening_skin_keeps(record: ImageRecord, gains: Sequence[float], needed_ev: float,
                         lifted: Sequence[int] = (), developed: bool = True) -> tuple[float, tuple[int, ...]]:
    """The largest share of a darkening of ``needed_ev`` (negative) that leaves every face skin-coloured that is
    skin-coloured after the white balance ``gains`` (as the renderer applies them: a rendered source's on its display
    light, :func:`~pipeline.imaging.measure.metering.balanced`), and the faces (indices) the whole darkening would grey.

    A darkening scales a face's channels alike (a rendered source's in its scene light, as the renderer does it:
    :func:`~pipeline.imaging.measure.metering.exposed`), which keeps its hue but not its CIELAB chroma: a pale face
    in a bright picture darkened by a stop and a half reads grey. Of the shared data's three Flickr uploads with
    people its README calls roughly normal, two (sRGB 230-250 on the faces) were darkened by 1.6 EV and their skin
    turned grey-beige; a retoucher who sees that stops trusting the exposure instructions. Not fitted: the
    skin test is the issue's (:func:`~pipeline.planning.rules.white_balance.is_skin`), the shares are the white
    balance's (:data:`~pipeline.planning.rules.white_balance.SKIN_STEPS`). A picture truly developed over has
    washed its faces out already (the FiveK ``_P1.5`` couple's skin reads a chroma of 4-5): they are no skin as
    shot, and its darkening stands. ``needed_ev`` whole and () when it greys no face, a brightening, or a black
    and white picture.

    ``lifted``: faces the faces rule judges on their own (:func:`faces_lifted_alone`): lifted locally or sent to a
    retoucher, the global darkening does not decide their colour. Held for them, a shadow 1 EV deep on faces of
    the tuning split's group photos moved the photo's correction by 0.4-0.9 EV.
    """
    if not needed_ev < 0 or is_monochrome(record):
        return needed_ev, ()
    rendered = is_rendered(record.source_kind)
    # Each face as the renderer's white balance leaves it (a rendered source's gains are display-referred).
    balanced_faces = [(i, balanced(rgb, gains, rendered)) for i, rgb in face_colours(record) if i not in lifted]
    skin = [(i, rgb) for i, rgb in balanced_faces if is_skin(shown(rgb, rendered, developed))]

    def keeps(rgb: np.ndarray, ev: float) -> bool:  # skin as the rendition shows it (:func:`shown`)
        return is_skin(shown(exposed(rgb, ev, rendered), rendered, developed))

    greyed = tuple(i for i, rgb in skin if not keeps(rgb, needed_ev))
    if not greyed:
        return needed_ev, ()
    for share in SKIN_STEPS:  # ends at 0: no darkening keeps every face that was skin
        if all(keeps(rgb, share * needed_ev) for _, rgb in skin):
            return share * needed_ev, greyed
    return 0.0, greyed


def faces_lifted_alone(record: ImageRecord, chart: Chart, plan: PlanState) -> tuple[int, ...]:
    """The faces the faces rule judges on their own once the exposure is keyed on faces (``plan.key_faces``): the
    only face, in a shadow it lifts (:func:`~pipeline.planning.rules.faces.lit_reading_of_lone_face`), or the faces
    of a group it lifts or sends to a person for a shadow (:func:`~pipeline.planning.rules.faces.faces_in_a_shadow`).
    Lifted locally or sent to a person, their colour is not the global darkening's to keep
    (:func:`darkening_skin_keeps`). A face under the key light that the faces rule does neither (its skin or its
    distance from the flash explains its darkness) is the darkening's to keep: every face under the key band was
    left out before, and mmpose's airport photo (ochuman 000817: keyed on a passer-by's face 0.9 EV brighter than
    the two walkers') was darkened 0.98 EV with the walking man's face turned grey, told after the fact."""
    if not plan.key_faces:
        return ()
    if lit_reading_of_lone_face(record, chart, plan.faces_that_count) is not None:
        return plan.key_faces
    return faces_in_a_shadow(record, chart, plan)


def _numbers(indices: Sequence[int]) -> str:
    return ", ".join(str(i + 1) for i in indices)


def skin_hold_note(held_ev: float, greyed: Sequence[int]) -> str:
    """What a held darkening's exposure operation adds to its reason (:func:`darkening_skin_keeps`)."""
    return f"; held at {held_ev:+.2f} EV to keep the skin of face(s) {_numbers(greyed)}"


def skin_hold_flag(read: str, held_ev: float, greyed: Sequence[int], left: bool, measured: float,
                   confidence: float = 1.0) -> list[Operation]:
    """The ``exposure_skin`` flag of a darkening held at ``held_ev`` (left as shot when ``left``) because a fuller one
    would grey the faces ``greyed`` (indices); ``read`` says what the plan read."""
    return check_operation(
        AcceptanceAction.FLAG, "exposure_skin",
        f"{read}, but a darkening of more than {abs(held_ev):.2f} EV turns face(s) {_numbers(greyed)} grey: "
        + ("left as shot" if left else f"darkened by {abs(held_ev):.2f} EV only") + ", check by eye",
        measured, 0.0, confidence=rounded(confidence, 2), faces=[i + 1 for i in greyed])


def key_faces(record: ImageRecord, faces: tuple[int, ...]) -> tuple[int, ...]:
    """The faces among ``faces`` (indices with a reading) within the key band
    (:data:`~pipeline.planning.rules.faces.KEY_FACES_BAND_EV`) of the brightest; in a group of five or more, of the
    face at the group's upper quartile (:func:`~pipeline.planning.rules.faces.lit_band`), as the faces rule reads the
    lit level, in scene light: one face nearest the flash or in a patch of sun does not key the whole frame darker.
    On faces_shadow_fit's twins with one face 1 EV brighter than its group, the global correction moved 0.3 EV or
    more against the same photo's 19 -> 2 of 36 times (tuning; median -0.53 -> 0.00 EV), 24 -> 13 of 46 on dlib's
    testing photos (judged after; the groups of three keep their brightest face); the shadow twins' moves and the
    published twins' corrections as before."""
    levels = {i: record.faces[i].exposure_ev for i in faces if record.faces[i].exposure_ev is not None}
    return lit_band(levels) if levels else ()  # type: ignore[arg-type]


def faces_trust(faces_ev: float) -> float:
    """How far the faces' reading can be taken at its word: 1, fading to 0 as the faces reach full scale.

    A face's reading is the median light of its centre (scene light, 1.0 =
    full scale): a face within :data:`~pipeline.imaging.measure.metering.WHITE_FADE_EV`
    of full scale may be clipped, and a clipped face reads no brighter however
    far the image is over (a face of a well-exposed photo sits 1.3 EV under full
    scale, so a photo 1.3 EV over clips it: at 2 EV over it would read 1.3). Its
    trust fades linearly in stops, as the frame meter's white point's does
    (:func:`~pipeline.imaging.measure.metering.meter_log2`), so the reading moves
    continuously as the faces are pushed into clipping.

    Parameters
    ----------
    faces_ev : float
        The faces' reading against a well-exposed face (the record's ``Face.exposure_ev``, not less the chart's
        face target).
    """
    light_log2 = faces_ev + FACE_LOG2
    return min(1.0, max(0.0, -light_log2 / WHITE_FADE_EV))


def key_reading(faces_ev: float | None, frame_ev: float | None, trust: float = 1.0) -> float | None:
    """One exposure reading from the faces' and the whole frame's, weighted by how far each strays.

    Both say where the image sits against a well-exposed photograph, each with
    its own spread on well-exposed photos (:data:`FACE_SPREAD_EV`,
    :data:`FRAME_SPREAD_EV`): the most likely offset given both is their
    average weighted by the inverse squared spreads. A portrait whose faces and
    frame disagree (a high-key background, a face in the shade of a tree) is
    read between the two, nearer the one that strays less: with the spreads
    fitted now, the frame (66 % to 34 %).

    Faces that may be clipped (``trust`` below 1, :func:`faces_trust`) say only
    that the image is at least this bright: their weight fades with ``trust``,
    and the reading is kept from falling below theirs by the share it lost.
    """
    if faces_ev is None:
        return frame_ev
    if frame_ev is None:
        return faces_ev
    w_faces, w_frame = trust * FACE_SPREAD_EV**-2, FRAME_SPREAD_EV**-2
    blend = (w_faces * faces_ev + w_frame * frame_ev) / (w_faces + w_frame)
    return blend + (1.0 - trust) * max(0.0, faces_ev - blend)


def faces_floor(faces_ev: float, white_ev: float | None) -> tuple[float, bool]:
    """A faces-only reading (``exposure.meter: faces``) floored at the frame's white point, and whether it was.

    Metered for skin alone, a headshot's reading is as dark as its skin: a
    dark-skinned face, or a face in the dim half of a stage, reads up to a stop
    under a well-exposed one while the picture is right. The backdrop's key
    says nothing (a white or black seamless), but its highlights do, as the
    whole frame's meter reads them (:func:`~pipeline.imaging.measure.metering.meter_log2`:
    never darker than its white point says): a frame whose white point reaches
    where a well-exposed photograph's does is not brightened because its faces
    are dark. A picture under-exposed all over has its highlights under too, and
    is read by its faces as before; a dark face before a bright window is the
    faces rule's to lift, not the whole frame's. Of 85 press and studio
    portraits (serengil/deepface, ageitgey/face_recognition samples) under
    ``corporate_portrait``, two well-exposed frames keyed on faces 0.9-1.0 EV
    under, whose highlights read +0.3, were brightened by a stop; they are left
    as shot, and nothing else moved. The same 42 of them made 1 EV darker (a
    rendered twin each) are floored in none. No constant: the white point's
    reference is the frame meter's (:data:`~pipeline.imaging.measure.metering.WHITE_LOG2`).

    Parameters
    ----------
    faces_ev : float
        The faces' reading against a well-exposed face, before the chart's face target.
    white_ev : float or None
        The record's ``exposure_white_ev``; None (an analysis from before it was measured) floors nothing.
    """
    if white_ev is None or not white_ev > faces_ev:
        return faces_ev, False
    return white_ev, True


def reading_spread(on_faces: bool, on_frame: bool, trust: float = 1.0) -> float:
    """How far (EV, one standard deviation) a reading strays from 0 on well-exposed photographs.

    The faces' and the whole frame's spreads (:data:`FACE_SPREAD_EV`,
    :data:`FRAME_SPREAD_EV`); a reading of both (:func:`key_reading`) strays
    less than either: ``(FACE_SPREAD_EV**-2 + FRAME_SPREAD_EV**-2) ** -0.5``.
    Faces that may be clipped count by their ``trust`` (:func:`faces_trust`).

    Raises
    ------
    ValueError
        If neither was read.
    """
    if not (on_faces or on_frame):
        raise ValueError("a reading needs the faces, the frame or both")
    weight = (trust * FACE_SPREAD_EV**-2 if on_faces else 0.0) + (FRAME_SPREAD_EV**-2 if on_frame else 0.0)
    if not weight > 0:  # only clipped faces: at least this bright, as unsure as the faces of a well-exposed photo
        return FACE_SPREAD_EV
    return weight**-0.5


def offset_confidence(offset_ev: float, spread_ev: float) -> float:
    """The chance that an image read ``offset_ev`` from the target really is off in that direction.

    For a reading whose error on well-exposed photographs is normal with
    ``spread_ev``: ``Phi(|offset| / spread)`` (0.5 = a coin toss), as the
    white balance judges a cast (:func:`pipeline.planning.rules.white_balance.cast_confidence`).
    A night scene, a snowfield or a low-key portrait reads up to about a stop
    from 0 while exposed as its photographer meant (the tuning split's
    well-exposed photographs stray 0.74 EV rms): such a reading is not
    evidence enough to change the picture.
    """
    z = abs(offset_ev) / max(spread_ev, 1e-6)
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def compensation_kept(record: ImageRecord, chart: Chart, offset: float) -> float:
    """How much of ``offset`` (EV, + = over) the photographer's exposure compensation explains: 0 or more in
    the offset's direction, never beyond it.

    A camera JPEG (any rendered source) with EXIF ExposureBiasValue ``c`` was made ``c`` EV brighter than the
    camera's meter wanted, on purpose: a snowfield or a high-key portrait dialled up, a night street dialled
    down. When the picture reads off in the direction of ``c``, up to ``|c|`` of it is the photographer's
    intent and is kept (``exposure.keep_compensation``); off the other way, nothing is explained. A RAW's
    compensation is a capture choice (highlights protected) that its development is meant to undo: never
    kept.
    """
    comp = record.camera.exposure_compensation_ev
    if not chart.exposure.keep_compensation or not is_rendered(record.source_kind) or not comp or offset * comp <= 0:
        return 0.0
    return math.copysign(min(abs(offset), abs(comp)), offset)


def plan_exposure(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """Read the offset from the target, correct it beyond ``exposure.tolerance_ev`` when sure, flag it beyond the cap.

    With faces that count, the offset is keyed on those in the brightest light
    (:func:`key_faces`; a portrait photographer meters for skin; the chart's
    ``faces.target_ev`` says how bright skin should be) together with the
    whole frame's meter (``exposure_meter_ev``), by :func:`key_reading`
    (with ``exposure.meter: faces`` and faces that cannot be clipped, on the
    faces alone); without, on the whole frame's meter alone. Sets ``plan.exposure_offset_ev``
    (the record's ``exposure_ev``: negative = needs brightening),
    ``plan.exposure_keyed_on``, ``plan.key_faces`` and ``plan.exposure_ev``
    (the correction applied: the opposite of the offset, capped; 0 within the
    tolerance). An offset beyond the tolerance is corrected only when the plan
    is at least ``exposure.min_confidence`` sure of it (:func:`offset_confidence`
    over the reading's :func:`reading_spread`; ``plan.exposure_confidence``):
    otherwise the image is left as shot. The part of the offset a camera JPEG's
    exposure compensation explains is kept first (:func:`compensation_kept`).
    """
    ex = chart.exposure
    keyed = key_faces(record, plan.faces_that_count)
    frame_ev = record.exposure.meter_ev
    trust = 1.0
    if keyed:
        # The only face, in a shadow the faces rule lifts, keys the exposure as it reads lit.
        lone_lit = lit_reading_of_lone_face(record, chart, plan.faces_that_count)
        read_ev = float(np.median([record.faces[i].exposure_ev for i in keyed]))
        trust = faces_trust(read_ev)
        faces_read = read_ev if lone_lit is None else lone_lit
        floored = False
        if ex.meter is ExposureMeter.FACES and trust >= 1.0:
            frame_ev = None  # a headshot's backdrop says nothing of its exposure (faces that may be clipped do not say all)
            faces_read, floored = faces_floor(faces_read, record.exposure.white_ev)
        key_ev = key_reading(faces_read - chart.faces.target_ev, frame_ev, trust)
        plan.exposure_keyed_on, plan.key_faces = "faces", keyed
        keyed_on = (f"keyed on {len(keyed)} face(s)" + ("" if frame_ev is None else " and the whole frame")
                    + (", no darker than the frame's highlights read" if floored else ""))
    elif frame_ev is not None:
        key_ev = frame_ev
        plan.exposure_keyed_on = "frame"
        backdrop = record.exposure.backdrop_pct
        keyed_on = (f"keyed on the subject, its white backdrop of {backdrop:.0f} % of the frame left out" if backdrop
                    else "keyed on the whole frame")
    else:
        return []
    offset = key_ev - ex.target_ev
    kept = compensation_kept(record, chart, offset)
    offset -= kept
    plan.exposure_offset_ev = offset
    plan.exposure_spread_ev = reading_spread(bool(keyed), frame_ev is not None, trust)
    confidence = offset_confidence(offset, plan.exposure_spread_ev)
    plan.exposure_confidence = confidence
    needed = -offset
    if not abs(needed) > ex.tolerance_ev:  # (not <=: a NaN measurement plans nothing)
        return []
    if confidence < ex.min_confidence:
        # Within what well-exposed photographs read: left as the photographer shot it.
        return []
    held = bright_by_intent(record, needed, highlight_witnesses(chart, plan), any_darkening=True,
                            tolerated_pct=tolerated_clipping_pct(chart))
    if held:
        return bright_flag(record, f"reads {offset:+.2f} EV over, {keyed_on}", held, confidence)
    beyond = abs(needed) > ex.max_correction_ev
    capped = max(-ex.max_correction_ev, min(ex.max_correction_ev, needed))
    # (The faces rule's judgement of each face only where there is a darkening to hold.)
    skin_ev, greyed = darkening_skin_keeps(record, plan.white_balance_gains, capped,
                                           faces_lifted_alone(record, chart, plan) if capped < 0 else (),
                                           develops_raw(chart))
    skin_flag: list[Operation] = []
    if greyed:
        left = abs(skin_ev) <= ex.tolerance_ev
        skin_flag = skin_hold_flag(f"reads {offset:+.2f} EV over ({keyed_on})", skin_ev, greyed, left, offset,
                                   confidence)
        if left:
            return skin_flag
    plan.exposure_ev = skin_ev  # the capped correction, or the share of it that keeps the skin
    ask = clipping_asks_darkening(record, chart, plan, skin_ev)
    ops = [Operation(
        op_id="exposure", kind=OperationKind.EXPOSURE, params={"ev": rounded(plan.exposure_ev, 2)},
        reason=f"image is {abs(offset):.2f} EV {'under' if offset < 0 else 'over'} the target "
               f"(exposure_ev {offset:+.2f}, {keyed_on})"
               + (f"; the photographer's {kept:+.2f} EV exposure compensation kept" if kept else "")
               + (f"; correction capped at {ex.max_correction_ev:g} EV" if beyond and not greyed else "")
               + (skin_hold_note(skin_ev, greyed) if greyed else ""),
        measured=rounded(offset, 2), target=0.0,
        confidence=rounded(confidence, 2),
        applied_by=AppliedBy.RENDERER,
    )]
    if ask:
        ops[0] = proposed(ops[0], ask)
        plan.exposure_ev = 0.0  # nothing applied until a person accepts it
    if beyond:
        ops += check_operation(
            AcceptanceAction.FLAG, "exposure_range",
            f"needs {needed:+.2f} EV, beyond the automatic {ex.max_correction_ev:g} EV: check by eye",
            offset, 0.0)
    return ops + skin_flag
