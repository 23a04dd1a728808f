"""What one image's plan has decided so far: the state the rules pass along."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from charts.schema import Chart
from pipeline.kernel.records import ImageRecord

if TYPE_CHECKING:
    from pipeline.imaging.lens_profile import LensProfile
    from pipeline.imaging.measure.keypoints import Keypoints
    from pipeline.imaging.perspective import Keystone
    from pipeline.planning.rules.noise import NoiseShares


@dataclass(slots=True)  # one a frame, all held while the shoot is planned: no instance dict
class PlanState:
    """What later rules need from earlier ones, for one image.

    :func:`pipeline.planning.plan.plan_image` starts it (:meth:`start`) and
    hands it to every rule in turn; a rule writes the decisions it makes
    (the exposure rule its correction, the straightening rule its angle) and
    later rules read them. Shoot rules see every image's state before the
    image rules run, so a finding about the whole shoot can be put here for
    them.

    Attributes
    ----------
    faces_that_count : tuple of int
        Indices into ``record.faces`` of the faces big enough for the chart
        (``faces.min_face_pct``): exposure is keyed on them, they are
        brightened, crops keep them, a headshot requires one.
    exposure_ev : float
        The global exposure correction the plan applies, in EV (0 when none):
        faces and sharpness are judged as they will look after it.
    exposure_offset_ev : float or None
        The offset the correction answers (the record's ``exposure_ev``): the
        key against the chart's target, negative = needs brightening; None
        when there is nothing to meter.
    exposure_keyed_on : str or None
        ``faces``, ``frame`` (the whole frame's meter) or ``scene`` (its
        scene's key, set by the consistency rule): what the offset was read from.
    exposure_confidence : float or None
        The chance that the image really is off in the direction of its offset
        (:func:`pipeline.planning.rules.exposure.offset_confidence`); None when
        there is nothing to meter.
    exposure_spread_ev : float or None
        How far the reading the offset rests on strays on well-exposed
        photographs (:func:`pipeline.planning.rules.exposure.reading_spread`);
        None when there is nothing to meter.
    key_faces : tuple of int
        The faces the exposure was keyed on (those in the brightest light):
        other faces are judged against them.
    white_balance_gains : tuple of float
        The R, G, B gains of the white balance the renderer applies ((1, 1, 1)
        when none): skin is judged as it will look after them and the exposure.
    white_balance_matched : bool
        Whether those gains are its scene's matched white (the consistency rule's), not the white-balance rule's
        own: that rule kept skin skin under its own gains only, so the skin check after the exposure judges a
        matched frame's faces from their colour as shot.
    angle_deg : float
        The straightening rotation the renderer applies (0 when none, or when a
        retoucher must decide): crops turn with it.
    keypoint_source : mapping of int to Keypoints, or None
        Where the frame's keypoints (``find_keypoints``' evidence: descriptors
        and positions, no pixels) are read from by its record index,
        :attr:`frame`; None when the run found none. The shoot's one mapping,
        not the keypoints: the scene grouping reads one run of frames at a
        time (:meth:`read_keypoints`) and drops them, so planning never holds
        every frame's (about 30 KB each). Nor a reader a frame: a
        ``functools.partial`` each was about 250 bytes a frame held through
        planning, the highest the driver's heap reaches before its outputs
        (RESULTS.md, target 5).
    frame : int
        The frame's record index (-1 when :attr:`keypoint_source` is None).
    bracket : tuple of int
        The record indices of the exposure bracket the frame is merged with (itself included;
        :mod:`pipeline.planning.rules.brackets`), empty when none.
    merged_clipped_pct : float or None
        For the frame a bracket is merged into: the share of pixels still clipped after the merge (its darkest
        frame's), what the highlights check reads instead of the frame's own.
    merged_crushed_pct : float or None
        The same of the shadows crushed to black (its brightest frame's), for the shadows check.
    lens : LensProfile or None
        The lens correction the renderer makes (:mod:`pipeline.planning.rules.lens`): the faces, found in the
        picture as shot, move with it, and crops frame them where they land.
    keystone : Keystone or None
        The converging verticals the renderer undoes with the straightening's turn
        (:mod:`pipeline.planning.rules.straighten`): the faces move with it too.
    noise_shares : NoiseShares or None
        Of the frame's noise readings, the shares that are noise, where its camera's other frames in the shoot say
        the rest is fine texture (:func:`~pipeline.planning.rules.noise.noise_shares`); None: all of it.
    shoot_ops : int
        How many of the record's operations, at the end of its list, the shoot rules gave it
        (:func:`~pipeline.planning.plan.plan_shoot` keeps them there while the image rules run).
    """

    faces_that_count: tuple[int, ...]
    exposure_ev: float = 0.0
    exposure_offset_ev: float | None = None
    exposure_keyed_on: str | None = None
    exposure_confidence: float | None = None
    exposure_spread_ev: float | None = None
    key_faces: tuple[int, ...] = ()
    white_balance_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    white_balance_matched: bool = False
    angle_deg: float = 0.0
    keypoint_source: Mapping[int, Keypoints] | None = None
    frame: int = -1
    bracket: tuple[int, ...] = ()
    merged_clipped_pct: float | None = None
    merged_crushed_pct: float | None = None
    lens: LensProfile | None = None
    keystone: Keystone | None = None
    noise_shares: NoiseShares | None = None
    shoot_ops: int = 0

    def read_keypoints(self) -> Keypoints | None:
        """The frame's keypoints, read now from :attr:`keypoint_source`; None when it has none (a missing
        or damaged file) or the run found none."""
        if self.keypoint_source is None:
            return None
        return self.keypoint_source.get(self.frame)

    @classmethod
    def start(cls, record: ImageRecord, chart: Chart) -> PlanState:
        """The state before any rule ran.

        Raises
        ------
        ValueError
            If the record was not analysed (no size); failed records have no plan.
        """
        if record.frame.width is None or record.frame.height is None:
            raise ValueError(f"{record.source_path}: cannot plan an image that was not analysed")
        return cls(faces_that_count=faces_that_count(record, chart))


def faces_that_count(record: ImageRecord, chart: Chart) -> tuple[int, ...]:
    """Indices of the faces at least ``chart.faces.min_face_pct`` of the short edge tall."""
    return tuple(i for i, f in enumerate(record.faces) if subject_sized(f.height, record, chart))


def subject_sized(height: float, record: ImageRecord, chart: Chart) -> bool:
    """Whether a face box ``height`` px tall is at least ``chart.faces.min_face_pct`` of the record's short edge."""
    short = min(record.frame.width or 0, record.frame.height or 0) or 1
    return 100.0 * height / short >= chart.faces.min_face_pct
