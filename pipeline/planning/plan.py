"""Turn measurements and a chart into retouch instructions. No pixels.

Planning is cheap and deterministic: the same records and chart always give
the same operations, so a shoot can be re-planned after a chart change
(``postprod process --only plan``) without decoding anything. It is a
shoot-scope stage: it sees every image at once, which the near-duplicate
check needs.

The plan is a fold over short rule functions (:mod:`pipeline.planning.rules`),
each with its thresholds named in the chart or as constants beside it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from charts.schema import Chart
from pipeline.imaging.measure.exposure import exposure_verdict
from pipeline.imaging.measure.keypoints import Keypoints
from pipeline.imaging.white_balance import lab_to_linear_srgb, white_balance_gains
from pipeline.kernel.records import (
    AppliedBy,
    ExposureVerdict,
    ImageRecord,
    Operation,
    OperationKind,
    Status,
    Verdict,
)
from pipeline.planning.rules import (
    RULES,
    SCENE_RULES,
    SCENE_RULES_AFTER,
    SHOOT_RULES,
    ImageRule,
    SceneRule,
    ShootRule,
)
from pipeline.planning.state import PlanState

# The colour maths lived here before the imaging core had it; callers that
# import it from here keep working.
__all__ = ["lab_to_linear_srgb", "plan_image", "plan_shoot", "verdict_of", "white_balance_gains"]


def plan_image(record: ImageRecord, chart: Chart, rules: Sequence[ImageRule] = RULES,
               plan: PlanState | None = None) -> list[Operation]:
    """The operations one image needs under ``chart``.

    Parameters
    ----------
    record : ImageRecord
        An analysed image (``status == ok``; exposure and face fields filled).
    chart : Chart
        The resolved chart.
    rules : sequence of rule functions
        The image rules, in order (:data:`pipeline.planning.rules.RULES`).
    plan : PlanState, optional
        The plan so far (what shoot rules found); a fresh one by default.

    Returns
    -------
    list of Operation
        In the order a retoucher would work: white balance, exposure, white backdrop, faces,
        straightening, crops, then flags and rejections.

    Raises
    ------
    ValueError
        If the record was not analysed (no size); failed records have no plan.
    """
    plan = plan if plan is not None else PlanState.start(record, chart)
    ops: list[Operation] = []
    for rule in rules:
        ops += rule(record, chart, plan)
    return ops


def verdict_of(ops: list[Operation]) -> Verdict:
    """Reject if any operation rejects; flag if any flags or needs a retoucher; else accept."""
    if any(op.kind is OperationKind.REJECT for op in ops):
        return Verdict.REJECT
    if any(op.kind is OperationKind.FLAG or op.applied_by is AppliedBy.RETOUCHER for op in ops):
        return Verdict.FLAG
    return Verdict.ACCEPT


class OperationsSoFar(Mapping[int, list[Operation]]):
    """The operations each analysed frame has of its own so far, read off its record (by record index).

    What the scene rules get: the records hold their operations while the
    shoot is planned, so a lazy sequence of records (a record store's
    editable view) keeps them on disk instead of planning holding every
    frame's in memory. The shoot rules' operations, which wait at the end of
    the record's list (``PlanState.shoot_ops``), are not among them.
    """

    def __init__(self, records: Sequence[ImageRecord], plans: Mapping[int, PlanState]) -> None:
        self._records = records
        self._plans = plans

    def __getitem__(self, i: int) -> list[Operation]:
        return _split_shoot_ops(self._records[i], self._plans[i])[0]

    def __iter__(self) -> Iterator[int]:
        return iter(self._plans)

    def __len__(self) -> int:
        return len(self._plans)


def _split_shoot_ops(record: ImageRecord, plan: PlanState) -> tuple[list[Operation], list[Operation]]:
    """A frame's own operations and the shoot rules', the last ``plan.shoot_ops`` of its record's
    (:func:`plan_shoot`); the record's own list and none when a shoot rule gave it none."""
    ops, n = record.operations, plan.shoot_ops
    return (ops[:len(ops) - n], ops[len(ops) - n:]) if n else (ops, [])


def _from_shoot(record: ImageRecord, plan: PlanState) -> list[Operation]:
    return _split_shoot_ops(record, plan)[1]


def _failed_in_planning(record: ImageRecord, exc: Exception) -> None:
    """A frame whose own rules raised (a bug on a record no test had) fails alone, as a stage's internal error
    does (:class:`~pipeline.kernel.runner.Runner`): its row says so, the shoot's other frames are planned and
    delivered. The tests' strict runs (``POSTPROD_CHECK_DECLARATIONS``) raise it instead."""
    from pipeline.kernel.runner import fail_internal  # here: the runner imports the stages, which import planning
    from pipeline.kernel.stage import check_declarations_requested

    if check_declarations_requested():
        raise exc
    fail_internal(record, "plan_retouch", exc)
    record.operations = []


def plan_shoot(records: list[ImageRecord], chart: Chart, rules: Sequence[ImageRule] = RULES,
               shoot_rules: Sequence[ShootRule] = SHOOT_RULES, scene_rules: Sequence[SceneRule] = SCENE_RULES,
               scene_rules_after: ImageRule | None = SCENE_RULES_AFTER,
               keypoints: Mapping[int, Keypoints] | None = None) -> None:
    """Plan every analysed record in place (operations, verdicts, exposure_ev, faces_to_brighten,
    scene_id).

    Failed records are left as they are. The shoot rules run first, on every
    record; their operations follow each image's own. The image rules run in
    two parts: every image up to ``scene_rules_after`` (all of them when it is
    not among ``rules``), then the scene rules over the whole shoot, then the
    rest of the image rules on what the scene rules left.

    ``keypoints`` (by record index, read from ``find_keypoints``' evidence
    files) are what the scene grouping matches; each frame's
    :class:`PlanState` names the mapping and its index, read one run at a time, so
    a mapping that reads files when asked
    (:class:`~pipeline.imaging.measure.keypoints.KeypointFiles`) keeps the
    shoot's keypoints out of memory.

    Raises
    ------
    ValueError
        If a record with status ok was not analysed (no size).
    """
    plans = {i: PlanState.start(r, chart) for i, r in enumerate(records) if r.status is Status.OK}
    for i in keypoints or {}:
        if (plan := plans.get(i)) is not None:
            # Read when the scene grouping reaches the frame's run, not now (keypoints may read files).
            plan.keypoint_source, plan.frame = keypoints, i
    # The shoot rules' operations wait on their records, not in a dict of the shoot's (a record store's view keeps
    # them on disk: a burst's near-duplicate flags were about 0.6 KB a frame held through planning); they follow
    # the frame's own, counted by its plan's shoot_ops. What a record carried before planning is not kept.
    for shoot_rule in shoot_rules:
        for i, ops in shoot_rule(records, chart, plans).items():
            if i not in plans:
                raise KeyError(f"shoot rule {getattr(shoot_rule, '__name__', shoot_rule)} planned record {i}, which is not analysed")
            if ops:
                records[i].operations = _from_shoot(records[i], plans[i]) + ops
                plans[i].shoot_ops += len(ops)
    split = list(rules).index(scene_rules_after) + 1 if scene_rules_after in rules else len(rules)
    # Each frame's operations so far live on its record, not in a dict of the whole shoot's: a view of a
    # record store saves them with the record (planning's memory then does not grow with the shoot).
    for i, plan in list(plans.items()):
        try:
            records[i].operations = plan_image(records[i], chart, rules[:split], plan) + _from_shoot(records[i], plan)
        except Exception as exc:
            _failed_in_planning(records[i], exc)
            del plans[i]
    so_far = OperationsSoFar(records, plans)
    for scene_rule in scene_rules:
        for i, ops in scene_rule(records, chart, plans, so_far).items():
            records[i].operations = ops + _from_shoot(records[i], plans[i])
    for i, plan in plans.items():
        record = records[i]
        try:
            own, from_shoot = _split_shoot_ops(record, plan)
            record.operations = own + plan_image(record, chart, rules[split:], plan) + from_shoot
        except Exception as exc:
            _failed_in_planning(record, exc)
            continue
        record.plan.faces_to_brighten = sum(op.kind is OperationKind.BRIGHTEN_FACE for op in record.operations)
        record.plan.verdict = verdict_of(record.operations)
        # One exposure number for the manifest, the verdict, the instructions and the review: the plan's.
        offset = plan.exposure_offset_ev
        record.plan.exposure_ev = offset
        record.plan.exposure_keyed_on = plan.exposure_keyed_on
        # An offset the plan is not sure of is within what well-exposed photographs read: ok.
        unsure = plan.exposure_confidence is not None and plan.exposure_confidence < chart.exposure.min_confidence
        record.plan.exposure_verdict = (None if offset is None else ExposureVerdict.OK if unsure
                                        else exposure_verdict(offset, chart.exposure.tolerance_ev))
