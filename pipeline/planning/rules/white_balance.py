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


#: Target white a reviewer may ask for (the Planckian fit's range, :func:`pipeline.imaging.white_balance.cct_to_xy`).
MIN_TARGET_CCT, MAX_TARGET_CCT = 1667.0, 25000.0


def white_balance_params(measured_shift_k: float, cast_b: float, temperature_shift_k: float,
                         tint_shift: float) -> dict[str, float | list[float]]:
    """The white-balance operation's parameters for a temperature and tint shift a reviewer chose.

    The inverse of :func:`plan_white_balance`'s choice: neutrals measured at
    ``D65 + measured_shift_k`` move to ``that - temperature_shift_k`` kelvin
    (Lightroom's sign: + = warmer), and ``tint_shift`` is the Lab a* the
    correction removes. With the plan's own shifts this gives the plan's gains.

    Parameters
    ----------
    measured_shift_k : float
        The measurement ``wb_temperature_shift_k`` (neutrals' CCT minus D65).
    cast_b : float
        The measurement ``wb_cast_b`` (Lab b* of the neutrals).
    temperature_shift_k, tint_shift : float
        The shifts wanted.

    Returns
    -------
    dict
        ``gains``, ``mired_shift``, ``temperature_shift_k``, ``tint_shift``.

    Raises
    ------
    ValueError
        If the target white falls outside 1667-25000 K (a shift too large for the measured light).
    """
    measured_cct = D65_CCT_K + measured_shift_k
    target_cct = measured_cct - temperature_shift_k
    if not MIN_TARGET_CCT <= target_cct <= MAX_TARGET_CCT:
        raise ValueError(f"a temperature shift of {temperature_shift_k:+.0f} K moves the neutrals measured at "
                         f"{measured_cct:.0f} K to {target_cct:.0f} K, outside {MIN_TARGET_CCT:.0f}-"
                         f"{MAX_TARGET_CCT:.0f} K")
    gains = white_balance_gains(-tint_shift, cast_b, target_cct)
    return {
        "gains": [rounded(g, 4) for g in gains],
        "mired_shift": rounded(mired(target_cct) - mired(measured_cct), 1),
        "temperature_shift_k": rounded(temperature_shift_k, 0),
        "tint_shift": rounded(tint_shift, 2),
    }
