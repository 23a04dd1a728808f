"""Scenes (a shoot rule) and their consistent white balance and exposure (scene rules).

:func:`plan_scenes` writes every frame's ``scene_id`` (:mod:`pipeline.planning.scenes`),
whatever the chart says about consistency. The two scene rules run once every
image's white balance and exposure are decided and before anything reads them
(the faces, the sharpness check): with ``consistency.enabled`` they replace each
frame's white-balance and exposure operations by the ones its scene asks for
(:mod:`pipeline.planning.consistency`) and say why in the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence

from charts.schema import AcceptanceAction, Chart
from pipeline.imaging.measure.keypoints import Keypoints
from pipeline.imaging.scene_light import mired_tint
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind, Status
from pipeline.planning.consistency import (
    ExposureMatch,
    WhiteMatch,
    match_exposure,
    match_white_balance,
    matched_white_balance_params,
    scene_members,
)
from pipeline.planning.operations import applied_or_proposed, check_operation, rounded
from pipeline.planning.rules.exposure import (
    BLOWN_MAJORITY_PCT,
    bright_by_intent,
    bright_flag,
    darkening_skin_keeps,
    faces_lifted_alone,
    highlight_witnesses,
    skin_hold_flag,
    skin_hold_note,
    tolerated_clipping_pct,
)
from pipeline.planning.rules.white_balance import develops_raw
from pipeline.planning.scenes import group_scenes
from pipeline.planning.state import PlanState

#: Smallest exposure change worth an operation: a twentieth of a stop is below what anyone sees
#: side by side, and keeps matched frames already on the key free of instructions.
MIN_EXPOSURE_STEP_EV = 0.05
#: Smallest white change worth an operation, in mired and in tint units.
MIN_WHITE_STEP = 1.0
#: A frame whose own meter disagrees with its scene by more than this many EV is flagged for a
#: look: a close-up of a white plate should follow its scene, a frame of another room should not.
DISAGREEMENT_FLAG_EV = 1.5
#: Confidence of a matched correction: it rests on the whole scene, not on one frame's reading.
MATCHED_CONFIDENCE = 0.9

#: The frame's own exposure flags, replaced by the scene's exposure where the scene rule re-plans it.
EXPOSURE_FLAGS = ("exposure_range", "exposure_bright", "exposure_skin")


class _Readers(Mapping[int, Keypoints]):
    """The frames' keypoints read through their plans when the grouping asks (one run at a time).

    Over the plans themselves: a dict of the frames with keypoints would be one more entry a frame.
    """

    def __init__(self, plans: Mapping[int, PlanState]) -> None:
        self._plans = plans

    def __getitem__(self, index: int) -> Keypoints:
        plan = self._plans.get(index)
        found = None if plan is None else plan.read_keypoints()
        if found is None:
            raise KeyError(index)
        return found

    def __contains__(self, index: object) -> bool:
        plan = self._plans.get(index)  # type: ignore[call-overload]
        return plan is not None and plan.keypoint_source is not None

    def __iter__(self) -> Iterator[int]:
        return (i for i, p in self._plans.items() if p.keypoint_source is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def plan_scenes(records: Sequence[ImageRecord], chart: Chart, plans: Mapping[int, PlanState]) -> dict[int, list[Operation]]:
    """Write each analysed frame's ``plan.scene_id`` (same place and light); asks for no operation."""
    keypoints = _Readers(plans)
    for record, scene in zip(records, group_scenes(records, chart.consistency.max_gap_s, keypoints=keypoints)):
        if record.status is Status.OK:
            record.plan.scene_id = scene
    return {}


def _strictness_note(chart: Chart) -> str:
    s = chart.consistency.strictness
    return "" if s >= 1.0 else f"; {s:.0%} of the way from its own plan (strictness)"


def _replace(ops: Sequence[Operation], drop, new: list[Operation]) -> list[Operation]:  # noqa: ANN001
    """``ops`` without those ``drop`` selects, with ``new`` where the first of them stood.

    With none to drop, ``new`` goes after the white-balance operations (a
    retoucher's order: white balance, then exposure), else first.
    """
    at = next((k for k, o in enumerate(ops) if drop(o)), None)
    if at is None:
        at = max((k + 1 for k, o in enumerate(ops) if o.kind is OperationKind.WHITE_BALANCE), default=0)
    kept = [o for o in ops if not drop(o)]
    return kept[:at] + new + kept[at:]


def _white_balance_ops(match: WhiteMatch, scene: int, chart: Chart, record: ImageRecord) -> list[Operation]:
    white_m, white_tint = mired_tint(match.white_xy)
    shot_m, shot_tint = mired_tint(match.as_shot_xy) if match.as_shot_xy else mired_tint((0.3127, 0.3290))
    if abs(white_m - shot_m) < MIN_WHITE_STEP and abs(white_tint - shot_tint) < MIN_WHITE_STEP:
        return []
    scene_m, scene_tint = mired_tint(match.scene_xy)
    why = (f"its median As Shot white (the {abs(match.held_mired):.0f} mired shift its pictures ask for is held for a "
           "person)" if match.held_mired is not None
           else "its median As Shot white (the scene's light is within the chart's tolerance)" if match.left_as_shot
           else f"the white of the ColorChecker in {match.chart_frames} of its frames" if match.chart_frames
           else "the scene's white")
    own = "" if match.own_xy is None else f"; its own estimate read {1e6 / mired_tint(match.own_xy)[0]:.0f} K"
    colour = record.colour
    params = matched_white_balance_params(match, scene, colour.temperature_shift_k, colour.cast_b, colour.cast_mired)
    return [Operation(
        op_id="white_balance", kind=OperationKind.WHITE_BALANCE, params=params,
        reason=f"matched to scene {scene} ({match.frames} frame{'s' if match.frames != 1 else ''}): rendered at {why}, "
               f"{1e6 / scene_m:.0f} K / tint {scene_tint:+.0f}{own}{_strictness_note(chart)}",
        measured=None if match.own_xy is None else rounded(mired_tint(match.own_xy)[0], 1),
        target=rounded(scene_m, 1), confidence=MATCHED_CONFIDENCE, applied_by=AppliedBy.RENDERER,
    )]


def plan_scene_white_balance(records: Sequence[ImageRecord], chart: Chart, plans: Mapping[int, PlanState],
                             operations: Mapping[int, Sequence[Operation]]) -> dict[int, list[Operation]]:
    """With ``consistency.enabled``: render every frame of a scene at the scene's white."""
    if not chart.consistency.enabled:
        return {}
    out: dict[int, list[Operation]] = {}
    for scene, members in scene_members(records, chart.consistency.min_frames).items():
        for i, match in match_white_balance(records, chart, plans, operations, members).items():
            # A ColorChecker in the scene settles what the frame's own estimate was unsure of: its flag goes too.
            # The scene's white replaces the frame's own, applied or proposed.
            is_wb = lambda o, m=match: (  # noqa: E731
                (o.kind is OperationKind.WHITE_BALANCE and applied_or_proposed(o))
                or (m.chart_frames > 0 and o.kind is OperationKind.FLAG and o.params.get("check") == "white_balance"))
            matched = _white_balance_ops(match, scene, chart, records[i])
            out[i] = _replace(operations[i], is_wb, matched + _held_white_flag(match, scene, chart))
            plans[i].white_balance_gains = (tuple(float(g) for g in matched[0].params["gains"])  # type: ignore[assignment]
                                            if matched else (1.0, 1.0, 1.0))
            plans[i].white_balance_matched = bool(matched)
    return out


def _held_white_flag(match: WhiteMatch, scene: int, chart: Chart) -> list[Operation]:
    """The flag of a scene kept at its median As Shot white because the shift its pictures ask for is a guess beyond
    the chart's ``white_balance.propose_above_mired``, or read by estimates that scatter
    (:attr:`~pipeline.planning.consistency.WhiteMatch.held_mired`, ``held_scatter``)."""
    if match.held_mired is None:
        return []
    held, limit = match.held_mired, chart.white_balance.propose_above_mired
    why = (f"more than the chart's {limit:g} applied unseen (a scene's own colour, firelight or a warm room, reads so "
           "as readily as a cast)" if match.held_scatter is None else
           f"read by light estimates that disagree by +-{match.held_scatter:.0f} mired (no neutral surface says the "
           "light: a sky, water or foliage reads as a cast too)")
    return check_operation(
        AcceptanceAction.FLAG, "scene_white_balance",
        f"scene {scene}'s pictures ask for a {abs(held):.0f} mired {'warmer' if held > 0 else 'cooler'} white, "
        f"{why}: its frames are kept at their median As Shot white; if the light is a cast, correct a frame in the "
        "review and propagate it to the scene", held, 0.0)


def _exposure_ops(match: ExposureMatch, scene: int, chart: Chart) -> list[Operation]:
    ex = chart.exposure
    ops: list[Operation] = []
    if abs(match.ev) >= MIN_EXPOSURE_STEP_EV:
        key = ("median key" if not match.left_as_shot
               else "median exposure (its key rests on clipped pixels)" if match.clipping
               else "median exposure (its key is within the tolerance of the target)")
        bracket = (f"; shot {match.settings_offset_ev:+.1f} EV from the scene's usual settings"
                   if abs(match.settings_offset_ev) >= 0.1 else "")
        own = "" if match.own_ev is None else f"; its own meter asked {match.own_ev:+.2f} EV"
        held = (f"; the key held {abs(match.held_ev):.2f} EV {'brighter' if match.held_ev > 0 else 'darker'} toward "
                f"one every frame of the scene reaches within the automatic {ex.max_correction_ev:g} EV"
                if abs(match.held_ev) >= 0.005 else "")
        ops.append(Operation(
            op_id="exposure", kind=OperationKind.EXPOSURE,
            params={"ev": rounded(match.ev, 2), "scene_id": scene,
                    "own_ev": None if match.own_ev is None else rounded(match.own_ev, 2)},
            reason=f"matched to scene {scene} ({match.frames} frames): {match.ev:+.2f} EV to its {key}"
                   f"{bracket}{own}{held}{_strictness_note(chart)}",
            measured=None if match.own_ev is None else rounded(match.own_ev, 2), target=rounded(match.wanted_ev, 2),
            confidence=MATCHED_CONFIDENCE, applied_by=AppliedBy.RENDERER,
        ))
    wanted = match.applied_ev + chart.consistency.strictness * (match.wanted_ev - match.applied_ev)
    if abs(wanted) > ex.max_correction_ev:
        ops += check_operation(
            AcceptanceAction.FLAG, "exposure_range",
            f"needs {wanted:+.2f} EV to match scene {scene}, beyond the automatic {ex.max_correction_ev:g} EV: "
            "check by eye", wanted, ex.max_correction_ev)
    if match.clipping:
        over, rest, clipped = match.clipping
        why = ("a darkening turns most of them a flat grey" if clipped >= BLOWN_MAJORITY_PCT else
               f"without their blown part (a sky, a window?) it reads {rest:+.2f} EV")
        ops += check_operation(
            AcceptanceAction.FLAG, "scene_exposure_clipping",
            f"scene {scene} reads {over:.2f} EV over, but its frames are {clipped:.0f} % clipped at white and {why}: "
            "kept at its usual exposure, not darkened; if the scene is over-exposed, darken it in the review (the "
            "scene's exposure)", over, 0.0)
    if match.own_ev is not None and abs(match.ev - match.own_ev) > DISAGREEMENT_FLAG_EV:
        ops += check_operation(
            AcceptanceAction.FLAG, "scene_exposure",
            f"follows scene {scene} ({match.ev:+.2f} EV) although its own meter asks {match.own_ev:+.2f} EV: "
            "right for a bright or dark subject in the scene's light, wrong for another light; check by eye",
            match.own_ev, match.ev)
    return ops


def _skin_held(record: ImageRecord, chart: Chart, plan: PlanState, ops: list[Operation], scene: int,
               ev: float) -> list[Operation]:
    """A frame's scene exposure ``ops`` with its darkening held where a fuller one would grey a face's skin
    (:func:`~pipeline.planning.rules.exposure.darkening_skin_keeps`), flagged ``exposure_skin``."""
    exposure = next((o for o in ops if o.kind is OperationKind.EXPOSURE), None)
    if exposure is None:
        return ops
    ev = float(exposure.params["ev"])
    held_ev, greyed = darkening_skin_keeps(record, plan.white_balance_gains, ev,
                                           faces_lifted_alone(record, chart, plan) if ev < 0 else (),
                                           develops_raw(chart))
    if not greyed:
        return ops
    left = abs(held_ev) <= chart.exposure.tolerance_ev
    others = [o for o in ops if o is not exposure]
    flag = skin_hold_flag(f"matched to scene {scene} ({ev:+.2f} EV)", held_ev, greyed, left, ev)
    if left:
        return others + flag
    kept = dataclasses.replace(exposure, params={**exposure.params, "ev": rounded(held_ev, 2)},
                               reason=exposure.reason + skin_hold_note(held_ev, greyed))
    return [kept, *others, *flag]


def plan_scene_exposure(records: Sequence[ImageRecord], chart: Chart, plans: Mapping[int, PlanState],
                        operations: Mapping[int, Sequence[Operation]]) -> dict[int, list[Operation]]:
    """With ``consistency.enabled``: bring every frame of a scene to the scene's key; sets ``plan.exposure_ev``."""
    if not chart.consistency.enabled:
        return {}
    out: dict[int, list[Operation]] = {}
    for scene, members in scene_members(records, chart.consistency.min_frames).items():
        for i, match in match_exposure(records, chart, plans, operations, members).items():
            new = _exposure_ops(match, scene, chart)
            held = bright_by_intent(records[i], match.ev, highlight_witnesses(chart, plans[i]),
                                    tolerated_pct=tolerated_clipping_pct(chart))
            if held:  # as the frame's own rule: no darkening greys it
                new = [o for o in new if o.kind is not OperationKind.EXPOSURE] + bright_flag(
                    records[i], f"matched to scene {scene} ({match.ev:+.2f} EV)", held)
            else:  # as the frame's own rule: no darkening greys a face's skin
                new = _skin_held(records[i], chart, plans[i], new, scene, match.ev)
            plans[i].exposure_ev = next((float(o.params["ev"]) for o in new if o.kind is OperationKind.EXPOSURE), 0.0)
            # The offset the plan now corrects is the one from the scene's key (the manifest's exposure_ev).
            plans[i].exposure_offset_ev, plans[i].exposure_keyed_on = -match.wanted_ev, "scene"
            # The scene's key passed its own confidence gate (or the scene was left at its usual settings):
            # what is left of the frame's offset is its settings' difference, which the camera records.
            plans[i].exposure_confidence = None
            # The frame's own exposure, applied or proposed (clipping_asks_darkening), gives way to its scene's, which
            # makes the same test on the scene's key (match_exposure: ExposureMatch.clipping).
            is_exposure = lambda o: (o.kind is OperationKind.EXPOSURE  # noqa: E731
                                     or (o.kind is OperationKind.FLAG and o.params.get("check") in EXPOSURE_FLAGS))
            out[i] = _replace(operations[i], is_exposure, new)
    return out
