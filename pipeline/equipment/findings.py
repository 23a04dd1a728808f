"""Per-body equipment findings from the small per-frame records of its frames.

Everything here runs in the driver on what the workers measured (no pixels):

* **Dust** (:class:`DustAccumulator`): each frame's dust evidence map
  (:func:`pipeline.imaging.dust.dust_evidence`) is standardised and added up
  per body; a place where the body's frames *on average* look like a dust
  shadow, far above what the rest of the sensor does, is a spot.
* **Hot, dead and stuck photosites** (:func:`photosite_findings`): the same
  photosite standing out from its neighbours (:mod:`pipeline.imaging.sensor_defects`)
  in frame after frame.
* **Focus misses** (:func:`focus_findings`): per frame
  (:mod:`pipeline.imaging.focus_miss`), with the camera settings beside them.

How many frames a finding needs
-------------------------------
*Dust*: at least :data:`DUST_MIN_FRAMES` (3) frames that show the spot on
their own, and a body score of :data:`DUST_MIN_SCORE`. One frame of any scene
can hold a dark round thing at any place (a mole, a rivet, a hole in a
perforated panel); two frames of a burst can hold it at the same place. With
three *different* pictures showing the same soft spot at the same sensor
position, the scene is no longer an explanation. Three is also what a
person asks before sending a camera to be cleaned. A frame counts only
where it could show the particle (:data:`DUST_WITNESS_MARGIN`): a frame
busy at the place (foliage, hair, a patterned wall) finds a dip there
whatever the sensor holds.

The body score combines, place by place, each frame's standardised evidence
weighted by how well *that frame, at that place*, could show a shadow: the
inverse of the shallowest dip it could show there
(:attr:`pipeline.imaging.dust.DustEvidence.sensitivity`), which is the
inverse-variance combination of independent estimates of one dip. A frame
dark, clipped or busy at a place (foliage, text) weighs next to nothing there
instead of counting as "no dust", so a spot seen only where a few frames
have sky or a wall is not diluted by the rest of the shoot. No frame weighs
more than one that shows a :data:`DUST_WEIGHT_FLOOR` dip (one clear sky must
not decide alone). The combined score is expressed in robust standard
deviations of the same combination over the whole sensor.

The weight also follows the aperture (:func:`aperture_weight`): the particle
blocks the same light whatever the aperture, but the cone of light spreads its
shadow over a disc whose radius grows as 1/N, so the depth at its centre falls
as the disc's area grows, as N**2. A frame at f/4 shows a particle about eight
times shallower than one at f/11; weighted alike, a shoot's wide-open frames
(a third of a typical shoot) add their noise to a place at full weight and
their signal at an eighth, and dilute a spot that its f/11-f/22 frames show
plainly. The inverse-variance combination of estimates whose expected signal
differs weighs each by signal over variance, so the weight is
(N / :data:`DUST_APERTURE_FULL`)**2 up to that aperture; frames at f/11 and
smaller count alike, for the reason of the weight floor (a shoot's few f/22
frames must not decide alone). A frame whose aperture is unknown counts fully.
On the tuning splits (3 x 84 frames; ``benchmarks/EQUIPMENT.md``) this found
44 of 47 patches where the weights without the aperture found 42, at the same
false rate (1 spot in 252 frames) and the same bar; on subsets of their dusty
bodies with only 4-8 frames at f/11 or smaller, 0.71 of the patches instead
of 0.61 (``benchmarks/dust_fit.py`` prints the other weightings, N or N**2 up
to f/8-f/22, and the bars, with a leave-one-split-out choice: each fold chose
an aperture weighting over none, at a bar of 7.5; the bar stays at 8 for a
margin on false spots).

On the tuning split (3 bodies of 24 frames, 16 particles; random subsets of
6-24 frames for smaller shoots) a threshold of 8 finds every particle with 24
frames and none falsely; 12 frames find 61 % of them at 0.5 false spots per
20 frames, 8 frames 45 % at 0.4 (the earlier plain mean over all frames: 88 %,
56 % and 30 % at the same or lower false rates). Under
:data:`DUST_FEW_FRAMES` frames the tails are heavier and the bar is
:data:`DUST_MIN_SCORE_FEW`. A small shoot therefore rarely proves dust on its
own; ``postprod operators`` puts the shoots of a body side by side.

*Photosites*: at least :data:`PHOTOSITE_MIN_FRAMES` (3) frames and
:data:`PHOTOSITE_MIN_SHARE` of the body's frames. Per frame a candidate
beats all eight same-colour neighbours by 7 noise sigmas, which noise does
about once in 1e12 photosites; what is left are glints and cosmic-ray hits,
which do not come back to the same photosite. Three frames rule out a glint
repeated by a burst; the share keeps "in most frames" honest on long shoots
(a photosite that misbehaves in 3 frames out of 500 is not worth a service).

*Focus misses* are per frame: one frame is the finding.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np

from pipeline.imaging.dust import DustEvidence, standardised
from pipeline.imaging.focus_miss import FocusVerdict
from pipeline.imaging.sensor_defects import PhotositeDeviation, PhotositeScan

#: Standardised frame scores are clipped to this range before they are combined: one
#: frame's very strong scene spot must not make a finding on its own.
DUST_CLIP = (-3.0, 10.0)
#: A frame's weight at a place is 1 / the shallowest dip it could show there, never more
#: than 1 / this (a clear sky shows a 1 % dip; it counts as one that shows 5 %).
DUST_WEIGHT_FLOOR = 0.05
#: A frame's weight grows as its f-number squared (a dust shadow's depth does) up to this aperture;
#: smaller apertures count alike (:func:`aperture_weight`).
DUST_APERTURE_FULL = 11.0
#: A place is a dust spot at this body score (robust sigmas above the sensor's typical place) ...
DUST_MIN_SCORE = 8.0
#: ... or this one when the body has fewer than DUST_FEW_FRAMES frames: a combination of a few maps
#: has heavier tails (tuning subsets of 6 frames: 1.1 false spots per 20 frames at 8, 0.2 at 9).
DUST_MIN_SCORE_FEW, DUST_FEW_FRAMES = 9.0, 8
#: ... and when at least this many frames show it on their own (standardised score >= DUST_FRAME_SCORE).
DUST_MIN_FRAMES = 3
DUST_FRAME_SCORE = 3.0
#: Two spots closer than this (cells of the evidence map) are one.
DUST_MERGE_CELLS = 3
#: A frame witnesses a spot only where it could show the particle: the shallowest dip it could show there no
#: deeper than this many times the particle's depth in it, as the frame that sees the place most clearly
#: measures it (brought to the frame's aperture by :func:`aperture_weight`; :meth:`DustAccumulator.spots`).
#: The margin leaves room for that depth's own error (the best-fitting template's size). Set before it was
#: measured, not fitted.
DUST_WITNESS_MARGIN = 2.0
PHOTOSITE_MIN_FRAMES = 3
PHOTOSITE_MIN_SHARE = 0.3
#: A photosite whose value varies less than this (fraction of the range) across frames is stuck.
STUCK_SPREAD = 0.03
#: At most this many frames are listed as evidence for one finding.
MAX_EVIDENCE_FRAMES = 12


class FindingKind(StrEnum):
    """What is wrong with the equipment (or the frame)."""

    DUST = "dust"
    HOT_PIXEL = "hot_pixel"
    DEAD_PIXEL = "dead_pixel"
    STUCK_PIXEL = "stuck_pixel"
    FOCUS_MISS = "focus_miss"
    DECENTRING = "decentring"
    VIGNETTING = "vignetting"


@dataclass(frozen=True)
class FrameRef:
    """One frame of a body, as findings cite it.

    Attributes
    ----------
    source_path : str
        Relative to the shoot (as in the manifest).
    orientation : int
        EXIF orientation, to place sensor positions in the viewed frame.
    f_number : float or None
        Aperture: dust shows at small apertures.
    """

    source_path: str
    orientation: int = 1
    f_number: float | None = None


@dataclass(frozen=True)
class EquipmentFinding:
    """One row of ``equipment.parquet``.

    Attributes
    ----------
    camera_serial : str or None
        The body's serial number; None when the files carry none (then
        ``camera_make`` and ``camera_model`` name the body).
    camera_make, camera_model : str or None
    kind : FindingKind
    x, y : float or None
        Position, fractions 0-1. Body findings (dust, photosites): of the
        sensor frame as the camera held level sees it (orientation 1); focus
        misses: of that frame as viewed.
    radius : float or None
        Dust: radius of the shadow as a fraction of the frame's width.
    strength : float or None
        Dust: fraction of the light taken away at its centre (median over the
        frames that show it); photosites: median value as a fraction of the
        range; focus: estimated blur of the subject, fraction of the width.
    frames : int
        Frames that show it.
    frames_examined : int
        Frames of this body that were looked at for this kind.
    source_path : str or None
        The frame, for per-frame findings (focus misses).
    evidence : tuple of str
        Frames that show it best (at most :data:`MAX_EVIDENCE_FRAMES`), for the report's crops.
    confidence : float
        0-1.
    detail : str
        What a person should read.
    """

    camera_serial: str | None
    camera_make: str | None
    camera_model: str | None
    kind: FindingKind
    x: float | None
    y: float | None
    radius: float | None
    strength: float | None
    frames: int
    frames_examined: int
    source_path: str | None
    evidence: tuple[str, ...]
    confidence: float
    detail: str


@dataclass(frozen=True)
class Body:
    """The camera body findings are about: its serial, else its make and model."""

    serial: str | None
    make: str | None = None
    model: str | None = None

    @property
    def name(self) -> str:
        """How reports name the body: its camera (:func:`camera_name`) and serial."""
        camera = camera_name(self.make, self.model)
        if self.serial:
            return f"{camera} #{self.serial}".strip()
        return camera or "unknown camera"


def camera_name(make: str | None, model: str | None) -> str:
    """A camera's name as people write it: the make, then the model, without the make twice.

    Most makers repeat their name in ``Model`` ("Canon" / "Canon EOS R5", "NIKON CORPORATION" / "NIKON D750"):
    a model that starts with the make, or with its first word, is the name alone ("Canon EOS R5", "NIKON
    D750"); otherwise both ("SONY" / "DSLR-A550": "SONY DSLR-A550"). Empty when neither is known.
    """
    make, model = (make or "").strip(), (model or "").strip()
    if make and model:
        first = make.split()[0].lower()
        if model.lower().startswith(make.lower()) or model.lower().split()[0] == first:
            return model
    return " ".join(p for p in (make, model) if p)


# --- dust ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DustSpot:
    """A dust spot on one body's sensor (sensor-frame fractions)."""

    x: float
    y: float
    radius: float
    depth: float
    score: float
    frames: tuple[FrameRef, ...]
    frames_examined: int


def aperture_weight(f_number: float | None) -> float:
    """How much a frame at this aperture can show of a dust shadow, relative to one at f/11 or smaller.

    ``(N / DUST_APERTURE_FULL)**2``, at most 1: the particle's shadow spreads
    over a disc whose radius grows as 1/N (the cone of light from the
    aperture), so its depth falls as N**2. Unknown (None, 0) counts as 1.

    Raises
    ------
    ValueError
        If ``f_number`` is negative.
    """
    if f_number is None or f_number == 0:
        return 1.0
    if f_number < 0:
        raise ValueError(f"f-number must be positive (or None when the file does not say), got {f_number}")
    return min(1.0, (float(f_number) / DUST_APERTURE_FULL) ** 2)


@dataclass
class DustAccumulator:
    """Adds up one body's dust evidence, frame by frame, in constant memory per frame.

    Keeps the running weighted sums of the standardised maps and, per frame,
    only the few cells where that frame shows something (to list the frames
    behind a spot afterwards).
    """

    shape: tuple[int, int] | None = None
    weighted: np.ndarray | None = None  # sum of w * z
    weights2: np.ndarray | None = None  # sum of w**2
    seen: np.ndarray | None = None  # frames that could show anything at each place
    count: int = 0
    frames: list[FrameRef] = field(default_factory=list)
    _shown: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, evidence: DustEvidence, frame: FrameRef) -> None:
        """Add one frame's evidence, weighted at each place by what it could show there and by its aperture.

        Raises
        ------
        ValueError
            If the map's shape differs from the frames already added (another
            sensor size: accumulate it separately), or the frame's f-number is negative.
        """
        z = standardised(evidence.score)
        if self.shape is None:
            self.shape = z.shape
            self.weighted = np.zeros(z.shape, np.float64)
            self.weights2 = np.zeros(z.shape, np.float64)
            self.seen = np.zeros(z.shape, np.int32)
        elif z.shape != self.shape:
            raise ValueError(f"dust evidence of shape {z.shape} added to a body accumulating {self.shape}")
        shows = np.asarray(evidence.sensitivity, np.float32)
        blind = shows >= 0.999
        w = np.where(blind, 0.0, aperture_weight(frame.f_number) / np.maximum(shows, DUST_WEIGHT_FLOOR))
        self.weighted += w * np.clip(z, *DUST_CLIP)  # type: ignore[operator]
        self.weights2 += w * w  # type: ignore[operator]
        self.seen += ~blind  # type: ignore[operator]
        self.count += 1
        self.frames.append(frame)
        idx = np.flatnonzero(z >= DUST_FRAME_SCORE)
        self._shown.append(
            (
                idx.astype(np.int32),
                z.ravel()[idx].astype(np.float16),
                np.asarray(evidence.depth, np.float16).ravel()[idx],
                np.asarray(evidence.radius, np.float16).ravel()[idx],
                shows.ravel()[idx].astype(np.float16),
            )
        )

    def body_score(self) -> np.ndarray:
        """The body's map: the weighted combination, in robust sigmas over the sensor's places.

        Places fewer than :data:`DUST_MIN_FRAMES` frames could see score -inf.
        """
        if not self.count:
            raise ValueError("no frames added")
        valid = self.seen >= DUST_MIN_FRAMES  # type: ignore[operator]
        if not valid.any():
            return np.full(self.shape, -np.inf, np.float32)  # type: ignore[arg-type]
        combined = (self.weighted / np.sqrt(np.maximum(self.weights2, 1e-12))).astype(np.float32)  # type: ignore[operator]
        med = float(np.median(combined[valid]))
        spread = 1.4826 * float(np.median(np.abs(combined[valid] - med))) + 1e-6
        return np.where(valid, (combined - med) / spread, -np.inf).astype(np.float32)

    def spots(self, min_score: float | None = None, min_frames: int = DUST_MIN_FRAMES) -> list[DustSpot]:
        """The dust spots: peaks of :meth:`body_score` with enough frames behind them.

        ``min_score`` defaults to :data:`DUST_MIN_SCORE`, or :data:`DUST_MIN_SCORE_FEW`
        for a body with fewer than :data:`DUST_FEW_FRAMES` frames.

        The frames behind a spot are those that show it on their own where they could show the particle
        (:data:`DUST_WITNESS_MARGIN`): the frame that sees the place most clearly (the shallowest dip it could show
        there: a wall or a sky, not foliage or a face) measures the particle's depth, and a frame too busy there to
        show a dip that deep shows its scene, not the particle, whatever dip it finds. A dark thing of the scene
        that happens to sit at the same place in a few frames of a small shoot shows as a deep dip where the frame
        is busy and a faint one where another frame is clear: four web-sized JPEGs of a PENTAX K100D nothing was
        tuned on were sent to have the sensor cleaned for a spot 56 % deep (a building's stone, a head of dark
        hair and a dark corner of a restaurant at 26 % across and 43 % down, each where its frame could show no
        dip under 0.40-0.44, beside one frame clear enough to show 0.07 that read 0.18), and one in their corner.
        """
        if self.count < min_frames:
            return []
        if min_score is None:
            min_score = DUST_MIN_SCORE_FEW if self.count < DUST_FEW_FRAMES else DUST_MIN_SCORE
        score = self.body_score()
        rows, cols = score.shape
        k = 2 * DUST_MERGE_CELLS + 1
        finite = np.where(np.isfinite(score), score, np.float32(-1e9)).astype(np.float32)
        peaks = (finite >= cv2.dilate(finite, np.ones((k, k), np.uint8))) & (finite >= min_score)
        out = []
        for r, c in sorted(zip(*np.nonzero(peaks)), key=lambda rc: -score[rc]):
            near = {
                (rr * cols + cc)
                for rr in range(max(0, r - 1), min(rows, r + 2))
                for cc in range(max(0, c - 1), min(cols, c + 2))
            }
            seen = []  # (z, frame, depth, radius, shallowest dip the frame could show there)
            for frame, (idx, z, depth, radius, shows) in zip(self.frames, self._shown):
                hit = np.isin(idx, list(near))
                if hit.any():
                    j = int(np.argmax(np.where(hit, z.astype(np.float32), -np.inf)))
                    seen.append((float(z[j]), frame, float(depth[j]), float(radius[j]), float(shows[j])))
            if not seen:
                continue
            clearest = min(seen, key=lambda t: t[4])
            at_f11 = clearest[2] / aperture_weight(clearest[1].f_number)
            witnesses = [t for t in seen if t[4] <= DUST_WITNESS_MARGIN * at_f11 * aperture_weight(t[1].f_number)]
            if len(witnesses) < min_frames:
                continue
            shown = [(t[0], t[1]) for t in witnesses]
            depths = [t[2] for t in witnesses]
            radii = [t[3] for t in witnesses]
            shown.sort(key=lambda t: -t[0])
            out.append(
                DustSpot(
                    x=(c + 0.5) / cols,
                    y=(r + 0.5) / rows,
                    radius=float(np.median(radii)),
                    depth=float(np.median(depths)),
                    score=float(score[r, c]),
                    frames=tuple(f for _, f in shown),
                    frames_examined=self.count,
                )
            )
        return out


def dust_findings(body: Body, spots: Sequence[DustSpot]) -> list[EquipmentFinding]:
    """Findings rows for one body's dust spots."""
    out = []
    for s in spots:
        apertures = sorted({f.f_number for f in s.frames if f.f_number})
        at = f" (at f/{apertures[0]:g}-f/{apertures[-1]:g})" if apertures else ""
        out.append(
            EquipmentFinding(
                camera_serial=body.serial,
                camera_make=body.make,
                camera_model=body.model,
                kind=FindingKind.DUST,
                x=s.x,
                y=s.y,
                radius=s.radius,
                strength=s.depth,
                frames=len(s.frames),
                frames_examined=s.frames_examined,
                source_path=None,
                evidence=tuple(f.source_path for f in s.frames[:MAX_EVIDENCE_FRAMES]),
                confidence=_dust_confidence(s.score),
                detail=(
                    f"sensor dust on {body.name}: a soft spot {s.depth:.0%} darker, {s.radius * 100:.2f}% of the "
                    f"frame's width in radius, at {s.x:.0%} across and {s.y:.0%} down (camera held level); shows "
                    f"in {len(s.frames)} of {s.frames_examined} frames{at}. Clean the sensor, or retouch it in "
                    "every frame shot at a small aperture."
                ),
            )
        )
    return out


def _dust_confidence(score: float) -> float:
    # 0.5 at the (many-frame) threshold, ~0.94 at twice it: a reading aid, not a probability.
    return float(1.0 - 0.5 * (DUST_MIN_SCORE / max(score, 1e-6)) ** 4)


# --- photosites ----------------------------------------------------------------------
def photosite_findings(
    body: Body,
    scans: Iterable[tuple[PhotositeScan, FrameRef]],
    min_frames: int = PHOTOSITE_MIN_FRAMES,
    min_share: float = PHOTOSITE_MIN_SHARE,
) -> list[EquipmentFinding]:
    """Hot, dead and stuck photosites of one body: the same photosite standing out in most frames.

    Scans of different sensor sizes (a camera's crop modes) are counted
    separately; skipped scans (non-Bayer sensors) count for nothing.
    """
    by_size: dict[tuple[int, int], list[tuple[PhotositeScan, FrameRef]]] = defaultdict(list)
    for scan, frame in scans:
        if scan.skipped is None:
            by_size[(scan.sensor_width, scan.sensor_height)].append((scan, frame))
    out: list[EquipmentFinding] = []
    for (width, height), group in by_size.items():
        n = len(group)
        seen: dict[tuple[int, int], list[tuple[PhotositeDeviation, float, float, FrameRef]]] = defaultdict(list)
        for scan, frame in group:
            for c in scan.candidates:
                seen[(c.row, c.col)].append((c.deviation, c.value, c.sigmas, frame))
        need = max(min_frames, math.ceil(min_share * n))
        for (row, col), hits in seen.items():
            frames = {h[3].source_path for h in hits}
            if len(frames) < need:
                continue
            values = np.array([h[1] for h in hits])
            bright = sum(1 for h in hits if h[0] is PhotositeDeviation.BRIGHT)
            spread = float(values.max() - values.min())
            level = float(np.median(values))
            if spread <= STUCK_SPREAD and 0.05 < level < 0.95:
                kind, what = FindingKind.STUCK_PIXEL, f"stuck at {level:.0%} of the range whatever the light"
            elif bright >= len(hits) / 2:
                kind, what = FindingKind.HOT_PIXEL, f"reads {level:.0%} of the range, far above its neighbours"
            else:
                kind, what = FindingKind.DEAD_PIXEL, f"reads {level:.0%} of the range, far below its neighbours"
            share = len(frames) / n
            out.append(
                EquipmentFinding(
                    camera_serial=body.serial,
                    camera_make=body.make,
                    camera_model=body.model,
                    kind=kind,
                    x=(col + 0.5) / width,
                    y=(row + 0.5) / height,
                    radius=None,
                    strength=level,
                    frames=len(frames),
                    frames_examined=n,
                    source_path=None,
                    evidence=tuple(sorted(frames)[:MAX_EVIDENCE_FRAMES]),
                    confidence=float(min(1.0, share / 0.6)),
                    detail=(
                        f"{kind.value.replace('_pixel', '')} photosite on {body.name} at row {row}, column {col} of "
                        f"the {width}x{height} sensor: {what} in {len(frames)} of {n} frames. Map it out in the "
                        "camera (pixel mapping) or have it serviced; raw converters hide it, JPEGs may not."
                    ),
                )
            )
    out.sort(key=lambda f: (f.kind.value, -f.frames, f.y or 0, f.x or 0))
    return out


# --- focus -----------------------------------------------------------------------------
def focus_findings(body: Body, verdicts: Iterable[tuple[FocusVerdict, FrameRef]]) -> list[EquipmentFinding]:
    """One finding per focus miss, with where the subject was and what the frame's settings were."""
    verdicts = list(verdicts)
    judged = sum(1 for v, _ in verdicts if v.subject_blur_px is not None)
    out = []
    for v, frame in verdicts:
        if not v.missed or v.subject is None:
            continue
        s = v.subject
        blur = v.subject_blur_px or v.sharpest_blur_px or 0.0
        out.append(
            EquipmentFinding(
                camera_serial=body.serial,
                camera_make=body.make,
                camera_model=body.model,
                kind=FindingKind.FOCUS_MISS,
                x=s.x + s.width / 2,
                y=s.y + s.height / 2,
                radius=None,
                strength=blur / v.work_long_edge,
                frames=1,
                frames_examined=judged,
                source_path=frame.source_path,
                evidence=(frame.source_path,),
                confidence=float(min(1.0, 0.5 + 0.5 * (blur - 1.6) / 1.6)),
                detail=f"{frame.source_path}: {v.detail}",
            )
        )
    return out
