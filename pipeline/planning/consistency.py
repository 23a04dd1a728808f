"""Consistent corrections within a scene: one key and one neutral for every frame of it.

Works on whatever the image rules decide, after they ran: for each frame it
asks the chart's own exposure and white-balance rules what they want for that
frame without their dead band (``tolerance_ev``, ``tolerance_mired`` set to 0),
takes the camera's part off (the exposure settings, the As Shot white), and
takes the scene's median. Every frame of the scene is then planned toward that
one key and that one neutral, its own camera part put back on, by the chart's
``consistency.strictness``:

- a frame shot 1 EV under in a bracket is brought 1 EV further than its
  siblings, so all of them deliver the scene at one brightness;
- a frame whose own content pulls its meter (a close-up on a white plate, a dark
  suit) was shot at its siblings' settings and gets their correction, not its meter's;
- frames the camera balanced differently under one light get one white;
- a scene with a ColorChecker in some of its frames (a studio's reference shot) gets the chart's white: the
  median of those frames alone, applied to every frame in full.

As the image rules leave an image alone within their tolerance (and, for exposure, below
the chart's ``exposure.min_confidence``), a scene whose key (or neutral) is within the
tolerance of the chart's target, or whose key the plan is not sure of, is left at its own
(the median frame's settings, the median As Shot white), and only the frames
that differ from it are brought to it.

One key must be one key for every frame: a frame that cannot reach it within the
chart's automatic ``exposure.max_correction_ev`` (the darkest of a bracket, in a
scene that itself needs a push) would be delivered darker than its siblings. The
scene's key is then held back toward what every frame can reach, by at most
``exposure.tolerance_ev`` (the chart takes an image within it as on target);
a frame still out of reach is capped and flagged, as the exposure rule does.

Exposure is matched among frames of one kind of source, white balance among frames
of one reference (:class:`pipeline.planning.scenes.Reference`): a camera JPEG's
tone curve and baked-in white balance are not a RAW's.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from charts.schema import Chart, WhiteBalancePolicy
from pipeline.imaging.camera_raw import D65_XY
from pipeline.imaging.scene_light import (
    gains_for_white,
    mired_tint,
    rendered_white,
    seen_as,
    uv_to_xy,
    xy_to_uv,
)
from pipeline.imaging.white_balance import D65_CCT_K, D65_MIRED, mired, white_balance_gains
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind, SourceKind, Status
from pipeline.planning.operations import applied_or_proposed
from pipeline.planning.scenes import FrameLight, frame_light
from pipeline.planning.state import PlanState


@dataclass(frozen=True)
class ExposureMatch:
    """One frame's exposure planned with its scene.

    Attributes
    ----------
    ev : float
        The correction to apply (capped at ``exposure.max_correction_ev``).
    wanted_ev : float
        What the scene asks for this frame, before the cap and the strictness.
    held_ev : float
        How far the scene's key was moved from its median so that every frame reaches
        it within the cap (:func:`reachable_key`; + = brighter, 0 = not held).
    own_ev : float or None
        What the frame's own meter asks (the exposure rule without its tolerance).
    applied_ev : float
        What the image rules planned.
    settings_offset_ev : float
        This frame's camera exposure against the scene's median settings (+ = shot brighter).
    frames : int
        Frames the scene's key rests on.
    left_as_shot : bool
        The scene's key was within the tolerance of the target, or it rests on clipped pixels (``clipping``): the
        scene keeps its median exposure.
    clipping : tuple of float or None
        The scene read over with its frames' clipped pixels and, without them, not surely so (the plan's own
        darkening gate): (how far over it reads, how far without, the frames' median clipped share in percent).
        None otherwise.
    """

    ev: float
    wanted_ev: float
    held_ev: float
    own_ev: float | None
    applied_ev: float
    settings_offset_ev: float
    frames: int
    left_as_shot: bool
    clipping: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class WhiteMatch:
    """One frame's white balance planned with its scene.

    Attributes
    ----------
    gains : ndarray, shape (3,)
        Linear gains rendering the frame at ``white_xy``.
    white_xy : (float, float)
        The white (light chromaticity) the frame is rendered at.
    scene_xy : (float, float)
        The scene's white.
    own_xy : (float, float) or None
        The white the frame's own estimate asks for.
    as_shot_xy : (float, float) or None
        The frame's As Shot white (None: a rendered file).
    frames : int
        Frames the scene's white rests on.
    left_as_shot : bool
        The scene's white was within the tolerance of its median As Shot white, which it keeps.
    chart_frames : int
        Frames of the scene whose light a ColorChecker gave: when any, the scene's white is theirs alone, and
        every frame is rendered at it whatever ``consistency.strictness`` (the chart is the sure reading).
    held_mired : float or None
        The shift (mired, + warmer) from the scene's median As Shot white to the white its pictures ask for, when
        it is beyond the chart's ``white_balance.propose_above_mired`` and guessed (no ColorChecker or white
        backdrop in the scene read it): the scene keeps its median As Shot white instead (``left_as_shot``), and a
        person decides the shift for the whole series. Held so too, whatever the chart allows unseen, where its
        frames' light estimates scatter (their median uncertainty, weighed with the skin where faces weigh in:
        :func:`~pipeline.planning.rules.white_balance.light_uncertainty`) by more than
        :data:`~pipeline.planning.rules.white_balance.VISIBLE_SHIFT_MIRED`: no neutral surface says their light (a
        frame's own such correction is proposed, :func:`~pipeline.planning.rules.white_balance.proposal_note`).
        None otherwise.
    held_scatter : float or None
        That median scatter (mired) when it held the shift; None otherwise.
    """

    gains: np.ndarray
    white_xy: tuple[float, float]
    scene_xy: tuple[float, float]
    own_xy: tuple[float, float] | None
    as_shot_xy: tuple[float, float] | None
    frames: int
    left_as_shot: bool
    chart_frames: int = 0
    held_mired: float | None = None
    held_scatter: float | None = None


def scene_members(records: Sequence[ImageRecord], min_frames: int) -> dict[int, list[int]]:
    """Scene id -> indices of its analysed frames, for the scenes of at least ``min_frames``."""
    scenes: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        if r.status is Status.OK and r.plan.scene_id is not None:
            scenes.setdefault(r.plan.scene_id, []).append(i)
    return {sid: idx for sid, idx in scenes.items() if len(idx) >= min_frames}


def own_exposure(record: ImageRecord, chart: Chart, plan: PlanState) -> tuple[float, float] | None:
    """What the chart's exposure rule wants for this frame without its tolerance, confidence gate or cap, and
    the spread of the reading it rests on (EV; :func:`~pipeline.planning.rules.exposure.reading_spread`).
    None: nothing to meter.

    Uncapped: the cap limits what is applied, not what the meter reads, and a
    scene's key taken over readings cut at the cap would sit lower (higher) the
    more of its frames were shot far under (over).
    """
    if record.exposure.meter_ev is None or not math.isfinite(record.exposure.meter_ev):
        return None
    from pipeline.planning.rules.exposure import plan_exposure  # here: the rules import this module

    # The rule reads the offset (and what it keyed on) before its tolerance, confidence gate and cap decide
    # what to apply: the probe's offset is the reading whatever those say.
    probe = dataclasses.replace(plan, exposure_ev=0.0, exposure_offset_ev=None)
    plan_exposure(record, chart, probe)
    if probe.exposure_offset_ev is None or probe.exposure_spread_ev is None:
        return None
    return -probe.exposure_offset_ev, probe.exposure_spread_ev


def own_unclipped_exposure(record: ImageRecord, chart: Chart, plan: PlanState) -> float | None:
    """What the chart's exposure rule would want for this frame read without its pixels clipped at white
    (``exposure.unclipped_key_ev``; as :func:`own_exposure`, uncapped), for a frame it reads whole; None for a frame
    it keys on faces (they say how bright it is), or one not measured."""
    from pipeline.planning.rules.exposure import plan_exposure  # here: as in own_exposure

    unclipped = record.exposure.unclipped_key_ev
    if unclipped is None or record.exposure.meter_ev is None:
        return None
    probe = dataclasses.replace(plan, exposure_ev=0.0, exposure_offset_ev=None)
    plan_exposure(record, chart, probe)
    if probe.exposure_keyed_on != "frame":
        return None
    return -(unclipped - chart.exposure.target_ev)


def reachable_key(key: float, settings: Sequence[float], max_correction_ev: float, max_hold_ev: float) -> float:
    """The scene's key, moved by at most ``max_hold_ev`` toward one every frame reaches within the cap.

    A frame shot at ``settings[i]`` (stops of light on the sensor) reaches the
    key with a correction of ``key - settings[i]``; every frame does when the key
    lies in ``[max(settings) - cap, min(settings) + cap]``. The key is moved
    into that range, or as far toward it as ``max_hold_ev`` allows; when the
    range is empty (the frames span more than twice the cap) it is left as is.

    Parameters
    ----------
    key : float
        The scene's key, in the units of ``settings``.
    settings : sequence of float
        The frames' camera exposure settings.
    max_correction_ev : float
        The largest automatic correction (``exposure.max_correction_ev``).
    max_hold_ev : float
        The furthest the key may move (``exposure.tolerance_ev``: within it, the
        chart takes an image as on target).

    Returns
    -------
    float
        The key every frame is planned toward.

    Raises
    ------
    ValueError
        If ``settings`` is empty or a limit is negative.
    """
    if not settings:
        raise ValueError("reachable_key needs the settings of at least one frame")
    if max_correction_ev < 0 or max_hold_ev < 0:
        raise ValueError(f"limits must be >= 0, got cap {max_correction_ev} and hold {max_hold_ev}")
    low, high = max(settings) - max_correction_ev, min(settings) + max_correction_ev
    if low > high:
        return key
    hold = min(max(key, low), high) - key
    return key + max(-max_hold_ev, min(max_hold_ev, hold))


def own_white_gains(record: ImageRecord, chart: Chart, plan: PlanState) -> np.ndarray | None:
    """The gains the chart's white-balance rule wants for this frame without its tolerance (None: no estimate)."""
    from pipeline.planning.rules.white_balance import plan_white_balance  # here: as in own_exposure

    # A correction the rule is unsure of is no wish, proposed to a reviewer or not (white_balance.propose_unsure).
    relaxed = chart.model_copy(update={"white_balance": chart.white_balance.model_copy(
        update={"tolerance_mired": 0.0, "propose_unsure": False})})
    for op in plan_white_balance(record, relaxed, dataclasses.replace(plan)):
        # A correction proposed to a person (a big one of a guessed light) is the frame's wish all the same.
        if op.kind is OperationKind.WHITE_BALANCE and applied_or_proposed(op):
            return np.asarray(op.params["gains"], dtype=np.float64)
    return None


def applied_exposure(ops: Sequence[Operation]) -> float:
    """The global exposure change the renderer applies among ``ops``."""
    return sum(float(o.params["ev"]) for o in ops
               if o.kind is OperationKind.EXPOSURE and o.applied_by is AppliedBy.RENDERER)


def applied_gains(ops: Sequence[Operation]) -> np.ndarray:
    """The white-balance gains the renderer applies among ``ops`` (ones when none)."""
    gains = np.ones(3)
    for o in ops:
        if o.kind is OperationKind.WHITE_BALANCE and o.applied_by is AppliedBy.RENDERER:
            gains = gains * np.asarray(o.params["gains"], dtype=np.float64)
    return gains


def match_exposure(records: Sequence[ImageRecord], chart: Chart, plans: Mapping[int, PlanState],
                   operations: Mapping[int, Sequence[Operation]], members: Sequence[int]) -> dict[int, ExposureMatch]:
    """The exposure of every frame of one scene that has camera settings, planned toward the scene's key.

    The key is the median of the frames' own readings at their settings; a scene whose key is within the tolerance
    of the target, or not surely off, keeps its usual exposure (each frame levelled to the median settings). So does
    a scene the key darkens whose frames are clipped beyond ``acceptance.clipped_highlights.max_pct`` (their
    median) and whose key read without their clipped pixels (:func:`own_unclipped_exposure`) would not pass the
    same gate: the frame rule's test (:func:`~pipeline.planning.rules.exposure.clipping_asks_darkening`) on the
    scene, where a window blown in every frame of a room's series would otherwise darken the whole series
    (``ExposureMatch.clipping``; the scene rule flags it).

    Parameters
    ----------
    records, plans, operations
        The shoot, each image's plan so far and its operations so far, by index.
    chart : Chart
        Its ``exposure`` and ``consistency`` sections are read.
    members : sequence of int
        The scene's frames.

    Returns
    -------
    dict
        Index -> :class:`ExposureMatch`, for the frames matched (those with
        exposure settings, in a kind of source with at least
        ``consistency.min_frames`` frames that the rule could meter).
    """
    from pipeline.planning.rules.exposure import BLOWN_MAJORITY_PCT, offset_confidence  # here: as in own_exposure

    rules, ex = chart.consistency, chart.exposure
    out: dict[int, ExposureMatch] = {}
    lights = {i: frame_light(records[i]) for i in members}
    for kind in (SourceKind.RAW, SourceKind.RASTER, SourceKind.UNKNOWN):
        group = [i for i in members if records[i].source_kind is kind and lights[i].settings_ev is not None]
        read = {i: own_exposure(records[i], chart, plans[i]) for i in group}
        own = {i: None if r is None else r[0] for i, r in read.items()}
        keyed = [i for i in group if own[i] is not None]
        if len(keyed) < rules.min_frames:
            continue
        settings = {i: lights[i].settings_ev for i in group}
        key = statistics.median(settings[i] + own[i] for i in keyed)  # type: ignore[operator]
        usual = statistics.median(settings[i] for i in keyed)
        # The scene's frames share its content, so its median reading strays as one frame's does.
        spread = statistics.median(read[i][1] for i in keyed)  # type: ignore[index]
        left = not abs(key - usual) > ex.tolerance_ev or offset_confidence(key - usual, spread) < ex.min_confidence
        # A darkening of the scene that its frames' clipped pixels ask for (a window blown in every frame of a room's
        # series, a white sky over a street's): the frame rule's test (clipping_asks_darkening) on the scene's key.
        clipping = None
        clipped = statistics.median(records[i].exposure.clipped_highlights_pct or 0.0 for i in keyed)
        if not left and key < usual and clipped > chart.acceptance.clipped_highlights.max_pct:
            unclipped = {i: own_unclipped_exposure(records[i], chart, plans[i]) for i in keyed}
            rest = {i: own[i] if unclipped[i] is None else unclipped[i] for i in keyed}
            key_rest = statistics.median(settings[i] + rest[i] for i in keyed)  # type: ignore[operator]
            over_rest = usual - key_rest
            if clipped >= BLOWN_MAJORITY_PCT or not (
                    over_rest > ex.tolerance_ev and offset_confidence(over_rest, spread) >= ex.min_confidence):
                clipping, left = (usual - key, over_rest, clipped), True
        if left:
            key = usual
        held = reachable_key(key, [settings[i] for i in group], ex.max_correction_ev, ex.tolerance_ev) - key  # type: ignore[misc]
        key += held
        for i in group:
            wanted = key - settings[i]  # type: ignore[operator]
            applied = applied_exposure(operations[i])
            ev = applied + rules.strictness * (wanted - applied)
            ev = max(-ex.max_correction_ev, min(ex.max_correction_ev, ev))
            offset = settings[i] - usual  # type: ignore[operator]
            out[i] = ExposureMatch(ev, wanted, held, own[i], applied, offset, len(keyed), left, clipping)
    return out


def _median_uv(whites: Sequence[tuple[float, float]]) -> tuple[float, float]:
    uv = [xy_to_uv(w) for w in whites]
    return uv_to_xy((statistics.median(u for u, _ in uv), statistics.median(v for _, v in uv)))


def _blend(a: tuple[float, float], b: tuple[float, float], share: float) -> tuple[float, float]:
    ua, ub = xy_to_uv(a), xy_to_uv(b)
    return uv_to_xy((ua[0] + share * (ub[0] - ua[0]), ua[1] + share * (ub[1] - ua[1])))


def match_white_balance(records: Sequence[ImageRecord], chart: Chart, plans: Mapping[int, PlanState],
                        operations: Mapping[int, Sequence[Operation]], members: Sequence[int]) -> dict[int, WhiteMatch]:
    """The white balance of every frame of one scene, planned toward the scene's white.

    Nothing under ``white_balance.policy: as_shot`` (the chart keeps the
    camera's white). Parameters and returns as :func:`match_exposure`, with
    :class:`WhiteMatch` values; a frame without a cast estimate of its own is
    matched too (it follows its scene), provided its reference has at least
    ``consistency.min_frames`` frames with one. A black-and-white frame follows nothing: it has no colour to
    match (:func:`~pipeline.planning.rules.white_balance.is_monochrome`).
    """
    from pipeline.planning.rules.white_balance import (  # here: as in own_exposure
        VISIBLE_SHIFT_MIRED,
        is_monochrome,
        light_uncertainty,
    )

    if chart.white_balance.policy is WhiteBalancePolicy.AS_SHOT:
        return {}
    rules = chart.consistency
    out: dict[int, WhiteMatch] = {}
    lights: dict[int, FrameLight] = {i: frame_light(records[i]) for i in members}
    for reference in sorted({lights[i].reference for i in members}):
        group = [i for i in members if lights[i].reference == reference]
        own: dict[int, tuple[float, float] | None] = {}
        for i in group:
            gains = own_white_gains(records[i], chart, plans[i])
            own[i] = None if gains is None else rendered_white(gains, lights[i].as_shot_xy)
        # A ColorChecker in some frames gives the scene's white: its greys are the one sure reading of the light.
        on_chart = [i for i in group if own[i] is not None and records[i].colour.colour_checker]
        wishes = [own[i] for i in (on_chart or group) if own[i] is not None]
        if len(wishes) < (1 if on_chart else rules.min_frames):
            continue
        scene = _median_uv(wishes)
        as_shot = _median_uv([lights[i].as_shot_xy or D65_XY for i in group])
        left = not abs(mired_tint(scene)[0] - mired_tint(as_shot)[0]) > chart.white_balance.tolerance_mired
        # A guessed shift beyond the chart's limit is a person's to make, as a frame's own is
        # (:func:`~pipeline.planning.rules.white_balance.proposal_note`); the series is still levelled to one white.
        shift = mired_tint(as_shot)[0] - mired_tint(scene)[0]
        spreads = [light_uncertainty(records[i], chart) for i in group if own[i] is not None]
        known = [u for u in spreads if u is not None]
        scatter = float(np.median(known)) if known else None
        beyond = abs(shift) > chart.white_balance.propose_above_mired
        scattered = scatter is not None and scatter > VISIBLE_SHIFT_MIRED
        held = (shift if not left and not on_chart and not any(records[i].colour.backdrop for i in group)
                and (beyond or scattered) else None)
        held_scatter = scatter if held is not None and not beyond else None
        if left or held is not None:
            scene = as_shot
        for i in group:
            if is_monochrome(records[i]):
                continue
            white_as_shot = lights[i].as_shot_xy
            applied = rendered_white(applied_gains(operations[i]), white_as_shot)
            white = _blend(applied, scene, 1.0 if on_chart else rules.strictness)
            out[i] = WhiteMatch(gains_for_white(white, white_as_shot), white, scene, own[i], white_as_shot,
                                len(wishes), left or held is not None, len(on_chart), held, held_scatter)
    return out


def shifts_for_gains(gains: Sequence[float], measured_shift_k: float | None,
                     cast_b: float | None) -> tuple[float, float] | None:
    """The ``(temperature_shift_k, tint_shift)`` that give ``gains`` in the white-balance rule's terms.

    The rule (and a reviewer's temperature and tint edit,
    :func:`pipeline.planning.rules.white_balance.reviewed_params`) moves the
    frame's measured neutral (``D65 + measured_shift_k``, Lab b* ``cast_b``, a*
    ``-tint_shift``) to a Planckian white ``temperature_shift_k`` cooler. A
    matched white balance moves another colour (the scene's white as this
    frame shows it); written in those terms, a reviewer's edit starts from the
    matched white instead of jumping back to the frame's own. None when the
    frame has no measured cast, or no such shift gives the gains (beyond the
    locus' ends).
    """
    if measured_shift_k is None or cast_b is None:
        return None
    # Imported here: scipy.optimize takes 0.23-0.7 s to import, and most runs match no white balance.
    from scipy.optimize import least_squares

    g = np.asarray(gains, dtype=np.float64)
    want = np.log([g[0] / g[1], g[2] / g[1]])

    def residual(x: np.ndarray) -> np.ndarray:
        got = white_balance_gains(x[0], cast_b, 1e6 / x[1])
        return np.log([got[0] / got[1], got[2] / got[1]]) - want

    # Started off D65: within a kelvin of it the rule aims at D65 itself, a flat spot for the search.
    fit = least_squares(residual, x0=[0.0, 1e6 / D65_CCT_K + 15.0], bounds=([-100.0, 40.0], [100.0, 600.0]),
                        xtol=1e-12, ftol=1e-12, diff_step=1e-4)
    if not np.all(np.abs(fit.fun) < 1e-3):
        return None
    a, target_mired = fit.x
    return D65_CCT_K + measured_shift_k - 1e6 / target_mired, -a


def matched_white_balance_params(match: WhiteMatch, scene_id: int, measured_shift_k: float | None = None,
                                 cast_b: float | None = None, cast_mired: float | None = None) -> dict[str, object]:
    """The operation parameters of a matched white balance, in the white-balance rule's terms.

    ``gains`` for the renderer; ``mired_shift`` (+ warmer), ``temperature_shift_k``
    and ``tint_shift`` as the white-balance rule reports them, relative to the
    frame's measured neutral when it has one (:func:`shifts_for_gains`; ``mired_shift`` from its
    ``cast_mired`` where known, which the kelvin column caps for a light bluer than infinite kelvin), else
    of the colour the gains turn grey; ``white``: Camera Raw's ``[Temperature,
    Tint]`` the frame is rendered at (the XMP writer uses it); ``scene_id``.
    """
    temperature, tint = 1e6 / mired_tint(match.white_xy)[0], mired_tint(match.white_xy)[1]
    gains = np.asarray(match.gains, dtype=np.float64)
    shifts = shifts_for_gains(gains, measured_shift_k, cast_b)
    if shifts is not None:
        temperature_shift_k, tint_shift = shifts
        measured_cct = D65_CCT_K + measured_shift_k  # type: ignore[operator]
        neutrals = mired(measured_cct) if cast_mired is None else D65_MIRED + cast_mired
        mired_shift = mired(measured_cct - temperature_shift_k) - neutrals
    else:
        as_shot = match.as_shot_xy or D65_XY
        mired_shift = mired_tint(as_shot)[0] - mired_tint(match.white_xy)[0]
        a, _ = seen_as(match.white_xy, match.as_shot_xy)
        # (the colour the gains turn grey, in kelvin, less D65's; a shift beyond the locus' end is clamped)
        temperature_shift_k = 1e6 / max(1.0, mired(D65_CCT_K) - mired_shift) - D65_CCT_K
        tint_shift = -a
    return {
        "gains": [round(float(g), 4) for g in gains],
        "mired_shift": round(mired_shift, 1),
        "temperature_shift_k": round(temperature_shift_k, 0),
        "tint_shift": round(tint_shift, 2),
        "white": [round(temperature, 0), round(tint, 1)],
        "scene_id": scene_id,
    }
