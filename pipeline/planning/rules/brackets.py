"""Exposure brackets (a shoot rule): frames of one view shot in quick succession at different shutter speeds.

A photographer brackets a scene brighter than one exposure holds (a room and
its windows, a church and its stained glass): the camera's AEB fires three,
five or seven frames a stop or two apart, on a tripod. Delivered one by one,
the client gets the same view several times, each with either the windows
or the room blown. With ``brackets.merge`` in the chart, each bracket is
delivered once: its middle frame carries a ``merge_bracket`` operation
naming the others, which the renderer merges in scene light
(:mod:`pipeline.imaging.merge`), and the others are rejected as merged into it.

A bracket is a run of consecutive RAW frames (in capture order) of one
camera, at one ISO, aperture and focal length, each taken within
``brackets.max_gap_s`` of the previous frame's end, whose shutter speeds all
differ and span at least ``brackets.min_span_ev``, none of them lit by its
flash (a flash frame shot with an ambient bracket is another light); where the frames have
keypoints, each must show the view of the one before it unmoved
(:data:`MAX_SHIFT`). A meter following the light through a burst moves a
third of a stop or so; a bracket's steps are a stop or more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from charts.schema import AcceptanceAction, Chart
from pipeline.imaging.scene_light import exposure_settings_ev
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind, SourceKind, Status
from pipeline.planning.operations import check_operation
from pipeline.planning.rules.checks import crushed_pct
from pipeline.planning.state import PlanState
from pipeline.planning.views import MIN_INLIERS, matched_keypoints

#: The median shift of two frames' matched keypoints, as a share of the long edge, above which they are not one
#: view on a tripod (a hand-held bracket moves a few pixels; the renderer aligns what is left).
MAX_SHIFT = 0.01
#: Two settings are the same within this many stops (EXIF rounds: f/5.6 is 2**2.5 = 5.66).
SAME_STOPS = 1 / 6
#: Two shutter speeds of one bracket are at least this many stops apart.
MIN_STEP_EV = 0.5


@dataclass(frozen=True)
class _Shot:
    index: int
    at: datetime
    camera: tuple[str | None, str | None, int | None, int | None]
    iso: float
    aperture: float
    focal: float | None
    shutter_s: float
    settings_ev: float


def _shot(i: int, r: ImageRecord) -> _Shot | None:
    c = r.camera
    if (r.status is not Status.OK or r.duplicate_of is not None or r.source_kind is not SourceKind.RAW
            or c.captured_at is None or c.iso is None or c.aperture is None or c.shutter_s is None
            or c.flash_fired):  # (a flash frame beside an ambient bracket, "flambient": another light, no exposure)
        return None
    ev = exposure_settings_ev(c.shutter_s, c.aperture, c.iso)
    if ev is None:
        return None
    return _Shot(i, c.captured_at, (c.make, c.model, r.frame.width, r.frame.height), float(c.iso), float(c.aperture),
                 c.focal_length_mm, float(c.shutter_s), ev)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a > 0 and b > 0 and abs(math.log2(a / b)) <= SAME_STOPS


def _follows(prev: _Shot, nxt: _Shot, max_gap_s: float) -> bool:
    """Whether ``nxt`` can be the next frame of ``prev``'s bracket, by its settings and time."""
    gap = (nxt.at - prev.at).total_seconds()
    return (prev.camera == nxt.camera and _same(prev.iso, nxt.iso) and _same(prev.aperture, nxt.aperture)
            and _same(prev.focal, nxt.focal) and 0 <= gap <= max_gap_s + prev.shutter_s + 1.0)


def _one_view(plans: Mapping[int, PlanState], i: int, j: int) -> bool:
    """Whether frames ``i`` and ``j`` show one view, unmoved (True when either has no keypoints to say)."""
    a, b = plans[i].read_keypoints(), plans[j].read_keypoints()
    if a is None or b is None:
        return True
    qa, qb = matched_keypoints(a, b)
    if len(qa) < MIN_INLIERS:
        return False
    return float(np.median(np.hypot(*(a.xy[qa] - b.xy[qb]).T))) <= MAX_SHIFT


def find_brackets(records: Sequence[ImageRecord], chart: Chart, plans: Mapping[int, PlanState]) -> list[list[int]]:
    """The shoot's brackets, each as its frames' record indices in capture order (see the module's docstring)."""
    return [[s.index for s in run] for run in _bracket_runs(records, chart, plans)]


def _bracket_runs(records: Sequence[ImageRecord], chart: Chart, plans: Mapping[int, PlanState]) -> list[list[_Shot]]:
    rule = chart.brackets
    shots = sorted((s for i, r in enumerate(records) if i in plans and (s := _shot(i, r)) is not None),
                   key=lambda s: (s.at, s.index))
    runs: list[list[_Shot]] = []
    for shot in shots:
        run = runs[-1] if runs else None
        if (run is not None and len(run) < rule.max_frames and _follows(run[-1], shot, rule.max_gap_s)
                and all(abs(shot.settings_ev - s.settings_ev) >= MIN_STEP_EV for s in run)
                and _one_view(plans, run[-1].index, shot.index)):
            run.append(shot)
        else:
            runs.append([shot])
    return [run for run in runs if len(run) >= 2
            and max(s.settings_ev for s in run) - min(s.settings_ev for s in run) >= rule.min_span_ev - 1e-6]


def reference_frame(settings_ev: Sequence[float]) -> int:
    """The position of the frame a bracket is delivered as: the middle exposure (of two, the darker, whose
    highlights hold)."""
    order = sorted(range(len(settings_ev)), key=lambda k: settings_ev[k])
    return order[(len(order) - 1) // 2]


def plan_brackets(records: Sequence[ImageRecord], chart: Chart,
                  plans: Mapping[int, PlanState]) -> dict[int, list[Operation]]:
    """With ``brackets.merge``: each bracket's middle frame merges the others (``merge_bracket``, by the
    renderer); each other frame is rejected as merged into it (check ``bracket``). Each frame's plan gets its
    bracket (:attr:`~pipeline.planning.state.PlanState.bracket`)."""
    if not chart.brackets.merge:
        return {}
    out: dict[int, list[Operation]] = {}
    for run in _bracket_runs(records, chart, plans):
        members = [s.index for s in run]
        for i in members:
            plans[i].bracket = tuple(members)  # (the duplicates check leaves a bracket's frames alone)
        frames = [records[i] for i in members]
        evs = [s.settings_ev for s in run]
        ref = reference_frame(evs)
        reference = frames[ref]
        darkest, brightest = (frames[pick(range(len(frames)), key=lambda k: evs[k])] for pick in (min, max))
        plans[members[ref]].merged_clipped_pct = darkest.exposure.clipped_highlights_pct
        plans[members[ref]].merged_crushed_pct = crushed_pct(brightest)
        others = [k for k in range(len(frames)) if k != ref]
        span = max(evs) - min(evs)
        out[members[ref]] = [Operation(
            op_id="merge_bracket", kind=OperationKind.MERGE_BRACKET,
            params={"frames": [{"source_path": frames[k].source_path, "content_hash": frames[k].content_hash,
                                "offset_ev": round(evs[k] - evs[ref], 3)} for k in others]},
            reason=f"bracket of {len(frames)} frames over {span:.1f} EV merged into this one (its middle exposure): "
                   + ", ".join(f"{frames[k].source_path} ({evs[k] - evs[ref]:+.1f} EV)" for k in others),
            measured=round(span, 2), target=None, confidence=1.0, applied_by=AppliedBy.RENDERER,
        )]
        for k in others:
            out[members[k]] = check_operation(
                AcceptanceAction.REJECT, "bracket",
                f"merged into {reference.source_path} ({evs[k] - evs[ref]:+.1f} EV of a bracket of {len(frames)})",
                round(evs[k] - evs[ref], 2), None, merged_into=reference.source_path)
    return out
