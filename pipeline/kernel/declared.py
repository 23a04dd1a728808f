"""Records that hold stages to their declarations.

A stage declares the record fields it ``reads`` and ``writes`` (a field, a
group such as ``exposure``, or one field of a group, ``exposure.meter_ev``); the
graph is validated against those declarations before any work. With
:attr:`pipeline.kernel.stage.RunContext.check_declarations` on (the tests turn
it on), each stage is handed a :class:`DeclaredRecord` instead of the record:
a view that raises :class:`UndeclaredAccess` on any read or write the stage
did not declare, so the declarations cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from pipeline.kernel.records import BOOKKEEPING_FIELDS, GROUPS, INGEST_FIELDS, ImageRecord, covers

#: Every stage may read these: what ingest found and the runner's bookkeeping.
ALWAYS_READABLE = INGEST_FIELDS | BOOKKEEPING_FIELDS


class UndeclaredAccess(AttributeError):
    """A stage touched a record field it did not declare (a programming error in the stage)."""


class _GroupView:
    """One measurement group of a record, seen through a stage's declarations."""

    __slots__ = ("_group", "_name", "_reads", "_writes", "_stage")

    def __init__(self, group: Any, name: str, reads: frozenset[str], writes: frozenset[str], stage: str) -> None:
        object.__setattr__(self, "_group", group)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_reads", reads)
        object.__setattr__(self, "_writes", writes)
        object.__setattr__(self, "_stage", stage)

    def __getattr__(self, attr: str) -> Any:
        full = f"{self._name}.{attr}"
        if not (covers(self._reads, full) or covers(self._writes, full)):
            raise UndeclaredAccess(f"stage {self._stage} reads {full} without declaring it in `reads`")
        return getattr(self._group, attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        full = f"{self._name}.{attr}"
        if not covers(self._writes, full):
            raise UndeclaredAccess(f"stage {self._stage} writes {full} without declaring it in `writes`")
        setattr(self._group, attr, value)


class DeclaredRecord:
    """An :class:`ImageRecord` seen through one stage's ``reads`` and ``writes``.

    Parameters
    ----------
    record : ImageRecord
        The record; every permitted access goes straight to it.
    reads, writes : frozenset of str
        The stage's declarations.
    stage : str
        The stage's name, for the error message.
    """

    __slots__ = ("_record", "_reads", "_writes", "_stage")

    def __init__(self, record: ImageRecord, reads: frozenset[str], writes: frozenset[str], stage: str) -> None:
        object.__setattr__(self, "_record", record)
        object.__setattr__(self, "_reads", reads)
        object.__setattr__(self, "_writes", writes)
        object.__setattr__(self, "_stage", stage)

    def __getattr__(self, name: str) -> Any:
        record = object.__getattribute__(self, "_record")
        if name.startswith("_") or callable(getattr(type(record), name, None)):
            return getattr(record, name)  # methods (column, to_row) and dunders
        if name in GROUPS:
            declared = self._reads | self._writes
            if name not in declared and not any(x.startswith(name + ".") for x in declared):
                raise UndeclaredAccess(f"stage {self._stage} uses {name} without declaring it in `reads` or `writes`")
            return _GroupView(getattr(record, name), name, self._reads, self._writes, self._stage)
        if name not in ALWAYS_READABLE and not (covers(self._reads, name) or covers(self._writes, name)):
            raise UndeclaredAccess(f"stage {self._stage} reads {name} without declaring it in `reads`")
        return getattr(record, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if not covers(self._writes, name):
            raise UndeclaredAccess(f"stage {self._stage} writes {name} without declaring it in `writes`")
        setattr(self._record, name, value)

    def column(self, name: str) -> Any:
        """Manifest column ``name``, checked against the declarations like an attribute."""
        from pipeline.kernel.records import COLUMNS_BY_NAME

        col = COLUMNS_BY_NAME[name]
        return getattr(getattr(self, col.group), col.attr) if col.group else getattr(self, col.attr)

    def set_column(self, name: str, value: Any) -> None:
        """Set manifest column ``name``, checked against the declarations like an attribute."""
        from pipeline.kernel.records import COLUMNS_BY_NAME

        col = COLUMNS_BY_NAME[name]
        setattr(getattr(self, col.group) if col.group else self, col.attr, value)


def declared_view(record: ImageRecord, stage: Any) -> DeclaredRecord:
    """The view of ``record`` that ``stage`` (a :class:`~pipeline.kernel.stage.Stage`) may use."""
    reads = frozenset(stage.reads) | frozenset(getattr(stage, "reads_if_present", frozenset()))
    return DeclaredRecord(record, reads, frozenset(stage.writes), stage.name)
