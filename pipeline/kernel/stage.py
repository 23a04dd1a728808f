"""The stage shell: a name, the fields it reads and writes, its resources.

A stage wraps a pure core function (testable with a numpy array and no Ray)
and knows nothing of the executor that runs it. Executors build every stage of
the graph once per worker, call :meth:`Stage.setup` once (load a model, warm a
cache), then call :meth:`Stage.process` for each image.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from pipeline.kernel.errors import ConfigError, Location
from pipeline.kernel.files import write_bytes_atomic
from pipeline.kernel.records import WorkItem

if TYPE_CHECKING:
    from charts.loader import ResolvedChart
    from charts.schema import Chart
    from pipeline.equipment.photographers import PhotographerRegister


@dataclass(frozen=True)
class Resources:
    """What one instance of a stage needs from the worker that hosts it."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_mb: int = 512


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_declarations_requested() -> bool:
    """``POSTPROD_CHECK_DECLARATIONS=1``: stages see records that refuse undeclared reads and writes."""
    return os.environ.get("POSTPROD_CHECK_DECLARATIONS", "") not in ("", "0")


@dataclass(frozen=True)
class RunContext:
    """Settings shared by every stage of a run; picklable, sent to each worker.

    Attributes
    ----------
    shoot_dir : Path
        The shoot folder being processed (sources are read-only).
    out_dir : Path
        The output folder; every stage writes under it and nowhere else.
    device : str
        ``"cpu"`` or ``"cuda"`` for stages that can use a GPU.
    threads_per_worker : int
        Threads a worker may use for OpenCV and LibRaw.
    chart : ResolvedChart or None
        The client's chart, resolved and validated; ``None`` only for graphs
        with no stage that needs one (:attr:`Stage.needs_chart`).
    shoot_id : str
        The ``{shoot}`` naming token and IPTC job id.
    check_declarations : bool
        Hand each stage a view of the record that refuses reads and writes it
        did not declare (the tests turn it on; ``POSTPROD_CHECK_DECLARATIONS=1``).
    photographer : str or None
        ``--photographer NAME``: who shot the whole shoot (wins over the register and EXIF Artist).
    photographer_register : PhotographerRegister or None
        ``--photographers FILE``: which body each photographer had, and when.
    """

    shoot_dir: Path
    out_dir: Path
    device: str = "cpu"
    threads_per_worker: int = 1
    chart: ResolvedChart | None = None
    shoot_id: str = ""
    check_declarations: bool = field(default_factory=lambda: check_declarations_requested())
    photographer: str | None = None
    photographer_register: PhotographerRegister | None = None

    @property
    def chart_name(self) -> str | None:
        return self.chart.name if self.chart is not None else None

    @property
    def chart_hash(self) -> str | None:
        return self.chart.digest if self.chart is not None else None

    def require_chart(self, stage: str) -> Chart:
        """The chart's content, for a stage that declared :attr:`Stage.needs_chart`.

        Raises
        ------
        ConfigError
            When the run has no chart (graph validation prevents it in a real run).
        """
        if self.chart is None:
            raise ConfigError(f"stage '{stage}' needs a chart: pass --chart NAME",
                              Location(None, key="--chart"))
        return self.chart.chart


class Stage(ABC):
    """Base class of every stage.

    Subclasses set the class attributes and implement :meth:`process`.
    ``reads`` and ``writes`` name :class:`~pipeline.kernel.records.ImageRecord` fields;
    ``consumes`` and ``produces`` name in-worker artifacts (pixels) that never
    leave the worker. The graph validator checks that everything read is
    produced upstream; ``reads_if_present`` names fields the stage uses when
    an earlier stage wrote them and does without otherwise (the planner's
    keypoints: without them scenes are found by their light alone).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    reads: ClassVar[frozenset[str]] = frozenset()
    reads_if_present: ClassVar[frozenset[str]] = frozenset()
    writes: ClassVar[frozenset[str]] = frozenset()
    consumes: ClassVar[frozenset[str]] = frozenset()
    produces: ClassVar[frozenset[str]] = frozenset()
    resources: ClassVar[Resources] = Resources()
    # Bump when the stage's output changes for the same input: earlier results
    # in a resume journal are then redone.
    version: ClassVar[int] = 1
    # "image": process() runs in a worker, one image at a time. "shoot":
    # process_shoot() runs in the driver on every record at once, with no
    # pixels (planning); the executor splits the graph around it.
    scope: ClassVar[str] = "image"
    # Stages that write files into the output folder (renders, exports) are
    # left out of `postprod inspect`, which only measures.
    writes_files: ClassVar[bool] = False
    # Stages that read the chart (context.require_chart): a run without one is
    # refused before any work.
    needs_chart: ClassVar[bool] = False
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel, context: RunContext) -> None:
        self.params = params
        self.context = context

    def preflight(self) -> None:
        """Check, in the driver before any worker starts, what setup() will need.

        Raises
        ------
        pipeline.kernel.errors.ConfigError
            When the run cannot start (a model missing or failing its hash).
        """

    def setup(self) -> None:
        """Load models and other per-worker state; called once per worker."""

    @abstractmethod
    def process(self, item: WorkItem) -> None:
        """Read ``item``'s fields and artifacts, write the declared ones.

        Raises
        ------
        pipeline.kernel.errors.InputError
            When this source file cannot be processed; the image becomes a
            failed row and the shoot goes on.
        """

    def process_shoot(self, records: list) -> None:  # noqa: ANN001
        """Shoot-scope stages: update every record in place (no pixels)."""
        raise TypeError(f"stage {self.name} is image-scope")

    def out_path(self, *parts: str) -> Path:
        return Path(self.context.out_dir, *parts)

    def write_file(self, path: Path, data: bytes) -> Path:
        """Write one of the image's files into the output folder, atomically and without ``fsync``.

        A reader sees the old file or the whole new one (a rename); the run
        flushes a group of images' files to disk together before it journals
        them (:mod:`pipeline.kernel.journal`), instead of each file on its own
        (2-7 ms an ``fsync``, six files an image). A file written here must be
        named by the record (:func:`pipeline.outputs.shoot.image_files` lists them).

        Raises
        ------
        OSError
            If the folder cannot be created or the file written (disk full, permissions).
        """
        return write_bytes_atomic(path, data, durable=False)
