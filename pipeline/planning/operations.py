"""Building operations: the rounding every plan uses and the flag/reject of an acceptance check."""

from __future__ import annotations

import dataclasses
from typing import Any

from charts.schema import AcceptanceAction
from pipeline.kernel.records import RENDER_ON_ACCEPT, AppliedBy, Operation, OperationKind


def rounded(value: float, digits: int = 3) -> float:
    """``value`` as a plain float rounded to ``digits`` (instruction files stay short and stable)."""
    return float(round(value, digits))


def check_operation(action: AcceptanceAction, check: str, reason: str, measured: float | None,
                    target: float | None, confidence: float = 1.0, **params: Any) -> list[Operation]:
    """The flag or reject a failed acceptance check asks for, as a list: empty when the chart ignores it.

    Parameters
    ----------
    action : AcceptanceAction
        What the chart does with a frame that fails ``check``.
    check : str
        The check's name (``"sharpness"``); also the operation's ``params["check"]``.
    reason : str
        Why, in the retoucher's words.
    measured, target : float or None
        The measured value and the limit it broke.
    confidence : float
        How sure the plan is that the frame fails.
    **params
        More kind-specific values (``duplicate_of``).
    """
    if action is AcceptanceAction.IGNORE:
        return []
    kind = OperationKind.REJECT if action is AcceptanceAction.REJECT else OperationKind.FLAG
    return [Operation(
        op_id=f"{kind}-{check}", kind=kind, params={"check": check, **params}, reason=reason,
        measured=None if measured is None else rounded(measured), target=target,
        confidence=rounded(confidence, 2), applied_by=AppliedBy.RETOUCHER,
    )]


def proposed(op: Operation, note: str) -> Operation:
    """``op`` handed to a person with ``note``: the renderer applies it once a reviewer accepts it
    (:data:`~pipeline.kernel.records.RENDER_ON_ACCEPT`), the same amount, not before."""
    return dataclasses.replace(op, applied_by=AppliedBy.RETOUCHER, params={**op.params, RENDER_ON_ACCEPT: True},
                               reason=f"{op.reason}; but {note}")


def applied_or_proposed(op: Operation) -> bool:
    """Whether ``op`` is the renderer's, or a proposal it applies once a reviewer accepts it (:func:`proposed`):
    a frame's correction either way, for a scene's rules that replace it or read it as the frame's wish."""
    return op.applied_by is AppliedBy.RENDERER or bool(op.params.get(RENDER_ON_ACCEPT))
