"""White balance: move the neutrals to the chart's white, in mired."""

from __future__ import annotations

from charts.schema import Chart, WhiteBalancePolicy
from pipeline.imaging.white_balance import D65_CCT_K, mired, white_balance_gains
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import rounded
from pipeline.planning.state import PlanState

# How sure the plan is of a white-balance correction. Fixed: the cast is read
# from the image's near-neutral pixels, which a scene without greys (a red
# wall, a sunset) can mislead, and the measurement does not yet say how many
# such pixels it found; "likely" (0.8) rather than "certain" until it does.
WHITE_BALANCE_CONFIDENCE = 0.8


def plan_white_balance(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """Neutralise (or warm) a cast bigger than ``white_balance.tolerance_mired``; nothing under ``as_shot``."""
    wb = chart.white_balance
    colour = record.colour
    if wb.policy is WhiteBalancePolicy.AS_SHOT or colour.temperature_shift_k is None:
        return []
    measured_cct = D65_CCT_K + colour.temperature_shift_k
    cast_mired = mired(measured_cct) - mired(D65_CCT_K)  # + = warm cast
    target_mired = wb.warm_shift_mired if wb.policy is WhiteBalancePolicy.WARM else 0.0
    shift = target_mired - cast_mired
    if not abs(shift) > wb.tolerance_mired:  # (not <=: a NaN measurement plans nothing)
        return []
    target_cct = 1e6 / (mired(D65_CCT_K) + target_mired)
    gains = white_balance_gains(colour.cast_a or 0.0, colour.cast_b or 0.0, target_cct)
    return [Operation(
        op_id="white_balance", kind=OperationKind.WHITE_BALANCE,
        params={
            "gains": [rounded(g, 4) for g in gains],
            "mired_shift": rounded(shift, 1),
            # Lightroom-style: + = warmer. Neutrals at measured_cct move to target_cct.
            "temperature_shift_k": rounded(measured_cct - target_cct, 0),
            "tint_shift": rounded(-(colour.cast_a or 0.0), 2),
        },
        reason=f"neutrals read {abs(cast_mired):.0f} mired {'warm' if cast_mired > 0 else 'cool'}"
               f" ({measured_cct:.0f} K); the chart wants {wb.policy}",
        measured=rounded(cast_mired, 1), target=target_mired,
        confidence=WHITE_BALANCE_CONFIDENCE, applied_by=AppliedBy.RENDERER,
    )]
