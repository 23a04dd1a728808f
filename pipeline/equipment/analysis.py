"""The end of a run, in the driver: equipment findings per camera body and habits per photographer.

Everything here reads what the workers measured (records, and the small
evidence files of :mod:`pipeline.equipment.evidence`, one at a time); no pixels.

* :func:`assign_photographers` puts the photographer on every record
  (``--photographer``, the body register, else EXIF Artist).
* :func:`analyse_equipment` adds each body's frames up: dust spots and
  hot/dead/stuck photosites (:mod:`pipeline.equipment.findings`), a lens
  soft on one side or vignetting beyond the norm, per body+lens
  (:mod:`pipeline.equipment.lens`), plus the frames whose focus missed; :func:`equipment_rows` are ``equipment.parquet``.
* :func:`operator_rows` are ``operators.parquet``: per photographer, how
  often the chart had to correct their frames and why, their exposure,
  tilt and pitch habits, duplicates, bursts, rejections and focus misses.

A capture shot as RAW+JPEG is two files and one frame: :func:`captures`
pairs them (same folder, same name, same capture time) and the RAW stands for
both, so a pair is neither two frames of dust evidence nor two frames in a
photographer's statistics.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.equipment.evidence import load_evidence
from pipeline.equipment.findings import (
    Body,
    DustAccumulator,
    EquipmentFinding,
    FindingKind,
    FrameRef,
    dust_findings,
    photosite_findings,
)
from pipeline.equipment.lens import lens_findings, lens_stats
from pipeline.equipment.photographers import PhotographerRegister, resolve_photographer
from pipeline.imaging.identity import CameraIdentity
from pipeline.imaging.lens_field import LensField
from pipeline.kernel.records import AppliedBy, ImageRecord, OperationKind, SourceKind, Status, Verdict

EQUIPMENT_NAME = "equipment.parquet"
OPERATORS_NAME = "operators.parquet"
#: Name shown (and kept in operators.parquet) for frames nobody is named for.
UNKNOWN_PHOTOGRAPHER = "(unknown)"
#: Frames of one body at most this far apart (camera clocks count in whole seconds) are one burst.
BURST_GAP_S = 1.0
#: Bin edges of the exposure histogram (EV; below the first and above the last are bins too).
EXPOSURE_BIN_EDGES = tuple(float(x) for x in np.arange(-3.0, 3.01, 0.5))
#: Bin edges of the horizon and verticals tilt histograms (degrees).
TILT_BIN_EDGES = tuple(float(x) for x in np.arange(-5.0, 5.01, 0.5))
#: Corrections whose share is reported per photographer (crops to each rendition's aspect are the
#: chart's, not the photographer's, and are left out).
CORRECTIONS = (OperationKind.EXPOSURE, OperationKind.WHITE_BALANCE, OperationKind.BRIGHTEN_FACE,
               OperationKind.STRAIGHTEN)
#: A frame is counted as shot with the camera pitched when its verticals converge by at least this much at the
#: frame's edges (degrees): about what a viewer sees as buildings falling back, twice the straightening's
#: tolerance the charts keep (0.4-0.5 deg). A display threshold for the habit, not fitted.
PITCHED_LEAN_DEG = 1.0


# --- what the passes read of a frame ------------------------------------------------------------------
def _name(v: str | None) -> str | None:
    return sys.intern(v) if v else v  # makes, models, serials and names repeat over a whole shoot


@dataclass(frozen=True, slots=True)
class FrameFacts:
    """What the equipment and operator passes read of one file, and nothing else.

    A few names and numbers (about 0.5 KB) instead of the whole record (about
    10 KB as Python objects, with its operations and measurements): a run holds
    one per file while it adds the shoot up (:func:`frame_facts`).
    """

    source_path: str
    duplicate_of: str | None
    status: Status
    source_kind: SourceKind
    camera_make: str | None
    camera_model: str | None
    lens: str | None
    captured_at: datetime | None
    aperture: float | None
    orientation: int | None
    camera_serial: str | None
    photographer: str | None
    photographer_source: str | None
    evidence_path: str | None
    focus_miss: bool | None
    focus_subject_x: float | None
    focus_subject_y: float | None
    focus_subject_blur_px: float | None
    focus_sharpest_blur_px: float | None
    focus_detail: str | None
    verdict: Verdict | None
    exposure_ev: float | None
    exposure_verdict: str | None
    horizon_tilt_deg: float | None
    verticals_tilt_deg: float | None
    keystone_lean_deg: float | None  # the verticals' steady convergence as a lean at the frame's edges (keystone_lean)
    reasons: tuple[str, ...]  # 'kind', 'retoucher:kind', 'flag:check', 'reject:check' of its operations (crops aside)
    corrections: tuple[OperationKind, ...]  # which of CORRECTIONS its operations make
    to_retoucher: bool  # a task by hand, a flag or a rejection
    near_duplicate: bool  # flagged or rejected by the duplicates check
    merged: bool = False  # a frame of an exposure bracket merged into another (rejected as delivered there)
    phash: int | None = None  # the picture's perceptual hash (content.phash): one view shot again, whatever the chart


def frame_facts(r: ImageRecord | FrameFacts) -> FrameFacts:
    """The :class:`FrameFacts` of a record (a FrameFacts is returned as it is)."""
    if isinstance(r, FrameFacts):
        return r
    reasons: set[str] = set()
    hand = near = merged = False
    for op in r.operations:
        if op.kind in (OperationKind.CROP, OperationKind.LENS_CORRECTION):
            continue  # the chart's deliveries and the lens's own profile: nothing the photographer did
        if op.kind in (OperationKind.FLAG, OperationKind.REJECT):
            reasons.add(f"{op.kind}:{op.params.get('check', '?')}")
            if op.params.get("check") == "bracket":  # delivered merged into its bracket's middle frame: no one's task
                merged = True
                continue
            hand = True
            near = near or op.params.get("check") == "duplicates"
        elif op.applied_by is AppliedBy.RETOUCHER:
            reasons.add(f"retoucher:{op.kind}")
            hand = True
        else:
            reasons.add(str(op.kind))
    e = r.equipment
    return FrameFacts(
        source_path=r.source_path, duplicate_of=r.duplicate_of, status=r.status, source_kind=r.source_kind,
        camera_make=_name(r.camera.make), camera_model=_name(r.camera.model), lens=_name(r.camera.lens),
        captured_at=r.camera.captured_at,
        aperture=r.camera.aperture, orientation=r.frame.orientation, camera_serial=_name(r.identity.camera_serial),
        photographer=_name(r.identity.photographer), photographer_source=_name(r.identity.photographer_source),
        evidence_path=e.evidence_path, focus_miss=e.focus_miss, focus_subject_x=e.focus_subject_x,
        focus_subject_y=e.focus_subject_y, focus_subject_blur_px=e.focus_subject_blur_px,
        focus_sharpest_blur_px=e.focus_sharpest_blur_px, focus_detail=e.focus_detail,
        verdict=r.plan.verdict, exposure_ev=r.plan.exposure_ev, exposure_verdict=r.plan.exposure_verdict,
        horizon_tilt_deg=r.lines.horizon_tilt_deg, verticals_tilt_deg=r.lines.verticals_tilt_deg,
        keystone_lean_deg=keystone_lean(r),
        reasons=tuple(sorted(_name(k) for k in reasons)),  # type: ignore[misc]
        corrections=tuple(k for k in CORRECTIONS if any(op.kind is k for op in r.operations)),
        to_retoucher=hand, near_duplicate=near, merged=merged,
        phash=int(r.content.phash, 16) if r.content.phash else None,
    )  # fmt: skip


def keystone_lean(record: ImageRecord) -> float | None:
    """How far the verticals lean at the frame's edges from those at its centre (degrees, + = the camera pitched up:
    they meet above the frame), where the line measure read their convergence steadily (the keystone rule's
    :data:`~pipeline.planning.rules.straighten.KEYSTONE_STABILITY`, whatever the chart corrects); 0 when it read
    them as parallel; None when it read no verticals, or a convergence its resampled lines do not hold (an arcade,
    a tapering tower), or lines on one side of the frame only (pitch and roll cannot be told apart there)."""
    lines, width, height = record.lines, record.frame.width, record.frame.height
    convergence = lines.verticals_convergence
    if convergence is None or not width or not height or lines.verticals_one_sided:
        return None
    if convergence == 0.0:
        return 0.0
    # The rules' package costs 0.36 s to import: `postprod operators` reads tables and never plans.
    from pipeline.imaging.perspective import edge_lean
    from pipeline.planning.rules.straighten import KEYSTONE_STABILITY

    steady = lines.verticals_convergence_stability
    if steady is None or steady < KEYSTONE_STABILITY:
        return None
    return round(edge_lean(float(convergence), width, height), 3)


# --- who and which body ------------------------------------------------------------------------------
def body_of(record: ImageRecord | FrameFacts) -> Body | None:
    """The camera body a frame was shot with (its serial, else make and model); None when unknown."""
    f = frame_facts(record)
    serial = f.camera_serial
    make, model = f.camera_make, f.camera_model
    if not (serial or make or model):
        return None
    return Body(serial, make, model)


def body_key(body: Body | None) -> str | None:
    """How bodies are told apart: the serial, else ``make model`` (as the register spells it)."""
    if body is None:
        return None
    return body.serial or " ".join(p for p in (body.make, body.model) if p) or None


def assign_photographers(records: Iterable[ImageRecord], named: str | None = None,
                         register: PhotographerRegister | None = None) -> None:
    """Set ``identity.photographer`` and its source on every record that was analysed."""
    for r in records:
        ident = CameraIdentity(camera_make=r.camera.make, camera_model=r.camera.model,
                               body_serial=r.identity.camera_serial, artist=r.identity.artist)
        person, source = resolve_photographer(ident, r.camera.captured_at, named, register)
        r.identity.photographer = person
        r.identity.photographer_source = str(source) if source else None


@dataclass(frozen=True)
class Capture:
    """One press of the shutter: its files (RAW first), the one that stands for them, its body."""

    primary: FrameFacts
    files: tuple[FrameFacts, ...]
    body: Body | None

    @property
    def photographer(self) -> str:
        return self.primary.photographer or UNKNOWN_PHOTOGRAPHER


def captures(records: Iterable[ImageRecord | FrameFacts]) -> list[Capture]:
    """Group a shoot's files into captures: RAW+JPEG pairs once, exact duplicates left out.

    Files are one capture when they share folder and name (``IMG_0002.CR2``
    and ``IMG_0002.JPG``) and their capture times do not differ (one may lack
    it). The RAW stands for the capture, else the first file in path order.
    """
    groups: dict[tuple[str, str], list[list[FrameFacts]]] = defaultdict(list)
    for r in sorted(map(frame_facts, records), key=lambda r: r.source_path):
        if r.duplicate_of is not None:
            continue
        p = PurePosixPath(r.source_path)
        buckets = groups[(str(p.parent), p.stem.casefold())]
        for bucket in buckets:
            times = {x.captured_at for x in bucket if x.captured_at} | ({r.captured_at} if r.captured_at else set())
            if len(times) <= 1:
                bucket.append(r)
                break
        else:
            buckets.append([r])
    out = []
    for buckets in groups.values():
        for files in buckets:
            files.sort(key=lambda r: (r.source_kind is not SourceKind.RAW, r.status is not Status.OK, r.source_path))
            primary = files[0]
            out.append(Capture(primary, tuple(files), body_of(primary)))
    out.sort(key=lambda c: c.primary.source_path)
    return out


# --- equipment -----------------------------------------------------------------------------------------
#: Bits two frames' perceptual hashes may differ by for the second to be the first's view shot again (the charts'
#: default near-duplicate distance, ``acceptance.duplicates.max_hash_distance``): it adds no dust or photosite
#: evidence whatever the client's chart does with near-duplicates (:func:`analyse_equipment`).
SAME_VIEW_HASH_BITS = 4


class _Views:
    """The perceptual hashes of a body's frames so far, in file order: is a frame a view already seen?"""

    def __init__(self) -> None:
        self._hashes = np.zeros(64, np.uint64)
        self._n = 0

    def seen(self, phash: int | None) -> bool:
        """Whether ``phash`` is within :data:`SAME_VIEW_HASH_BITS` of an earlier frame's; it is kept either way."""
        if phash is None:
            return False
        h = np.uint64(phash)
        known = self._hashes[: self._n]
        near = bool(known.size) and bool((np.bitwise_count(known ^ h) <= SAME_VIEW_HASH_BITS).any())
        if self._n == self._hashes.size:
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
        self._hashes[self._n] = h
        self._n += 1
        return near


@dataclass
class BodyFrames:
    """One body's frames in a shoot."""

    body: Body
    frames: list[FrameRef] = field(default_factory=list)
    captured: list[datetime] = field(default_factory=list)
    photographers: Counter = field(default_factory=Counter)
    focus_judged: int = 0


@dataclass
class EquipmentResult:
    """What :func:`analyse_equipment` found: findings, and which frames and bodies they came from."""

    findings: list[EquipmentFinding]
    bodies: dict[str, BodyFrames]
    frames: dict[str, FrameRef]  # by source path, for the report's crops
    frames_without_body: int = 0
    evidence_missing: int = 0

    def body_of_finding(self, f: EquipmentFinding) -> BodyFrames | None:
        return self.bodies.get(body_key(Body(f.camera_serial, f.camera_make, f.camera_model)) or "")


def analyse_equipment(records: Iterable[ImageRecord | FrameFacts], out_dir: Path) -> EquipmentResult:
    """Dust spots, photosite defects, lens findings and focus misses of every body in a shoot.

    Each capture's evidence file is read once and dropped (the dust
    accumulators keep a running sum per body; a lens field is under 2 KB),
    so memory does not grow with the shoot beyond a few numbers per frame.
    Lens findings are per body *and* lens: a body's frames with another lens
    are another series.
    """
    bodies: dict[str, BodyFrames] = {}
    dust: dict[tuple[str, tuple[int, int]], DustAccumulator] = {}
    scans: dict[str, list] = defaultdict(list)
    lenses: dict[tuple[str, str | None], list[tuple[LensField, FrameRef]]] = defaultdict(list)
    frames: dict[str, FrameRef] = {}
    focus: list[tuple[Capture, FrameRef]] = []
    views: dict[str, _Views] = defaultdict(_Views)
    without_body = missing = 0
    for cap in captures(records):
        r = cap.primary
        if r.status is not Status.OK:
            continue
        ref = FrameRef(r.source_path, r.orientation or 1, r.aperture)
        frames[r.source_path] = ref
        key = body_key(cap.body)
        if r.focus_miss is not None and key is not None:
            bf = bodies.setdefault(key, BodyFrames(cap.body))  # type: ignore[arg-type]
            bf.focus_judged += 1
        if r.focus_miss:
            focus.append((cap, ref))
        if key is None:
            without_body += 1
            continue
        bf = bodies.setdefault(key, BodyFrames(cap.body))  # type: ignore[arg-type]
        bf.frames.append(ref)
        bf.photographers[cap.photographer] += 1
        if r.captured_at:
            bf.captured.append(r.captured_at)
        seen_view = views[key].seen(r.phash)
        if not r.evidence_path:
            continue
        ev = load_evidence(out_dir / r.evidence_path)
        if ev is None:
            missing += 1
            continue
        # A frame of a bracket, or one nearly the picture of an earlier frame of the body (by the plan's duplicates
        # check, or by its hash where a chart ignores near-duplicates), is no new picture: a dark thing of the view at
        # one place in all of them is the view's, not the sensor's, and so is a glint or a fine dark point on one
        # photosite in each (real RAWs re-exposed as a bracket of five: 153 of the G2's 189 "defects" stood out in
        # one view's frames alone).
        new_picture = not (r.merged or r.near_duplicate or seen_view)
        if ev.dust is not None and new_picture:
            acc = dust.setdefault((key, ev.dust.shape), DustAccumulator())
            acc.add(ev.dust, ref)
        if ev.photosites is not None and new_picture:
            scans[key].append((ev.photosites, ref))
        if ev.lens is not None:
            lenses[(key, r.lens)].append((ev.lens, ref))
    findings: list[EquipmentFinding] = []
    for (key, _), acc in sorted(dust.items(), key=lambda kv: kv[0][0]):
        findings += dust_findings(bodies[key].body, acc.spots())
    for key, body_scans in sorted(scans.items()):
        findings += photosite_findings(bodies[key].body, body_scans)
    for (key, lens), fields in sorted(lenses.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        findings += lens_findings(bodies[key].body, lens, lens_stats(fields))
    for cap, ref in focus:
        findings.append(_focus_finding(cap, ref, bodies.get(body_key(cap.body) or "")))
    return EquipmentResult(findings, bodies, frames, without_body, missing)


def body_summary(result: EquipmentResult) -> dict[str, Any]:
    """The camera bodies of a shoot for ``summary.json`` (what the report's body table shows).

    ``equipment.parquet`` holds findings only; a body with none, its frame
    count and its photographers are here, so the report can be written again
    from the output folder.
    """
    return {
        "camera_bodies": [
            {"body": bf.body.name, "key": key, "frames": len(bf.frames), "focus_judged": bf.focus_judged,
             "photographers": [[p, n] for p, n in bf.photographers.most_common()]}
            for key, bf in sorted(result.bodies.items())
        ],
        "frames_without_camera": result.frames_without_body,
        "equipment_evidence_missing": result.evidence_missing,
    }


def _focus_finding(cap: Capture, ref: FrameRef, bf: BodyFrames | None) -> EquipmentFinding:
    e = r = cap.primary
    body = cap.body or Body(None)
    blur = e.focus_subject_blur_px or e.focus_sharpest_blur_px or 0.0
    return EquipmentFinding(
        camera_serial=body.serial,
        camera_make=body.make,
        camera_model=body.model,
        kind=FindingKind.FOCUS_MISS,
        x=e.focus_subject_x,
        y=e.focus_subject_y,
        radius=None,
        strength=blur,
        frames=1,
        frames_examined=bf.focus_judged if bf is not None else 1,
        source_path=r.source_path,
        evidence=(r.source_path,),
        confidence=float(min(1.0, max(0.5, 0.5 + 0.5 * (blur - 1.6) / 1.6))),
        detail=f"{r.source_path}: {e.focus_detail}",
    )


def _f(name: str, type_: pa.DataType, description: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": description})


EQUIPMENT_SCHEMA = pa.schema(
    [
        _f("shoot_id", pa.string(), "The shoot (the {shoot} token), so tables of many shoots can be put together.", False),
        _f("camera_serial", pa.string(), "Body serial number; null when the files carry none (then make and model)."),
        _f("camera_make", pa.string(), "Camera maker."),
        _f("camera_model", pa.string(), "Camera model."),
        _f("kind", pa.string(), "dust, hot_pixel, dead_pixel, stuck_pixel, focus_miss, decentring or vignetting.",
           False),
        _f("x", pa.float64(),
           "Position across, fraction 0-1. Dust and photosites: of the frame as the camera held level records it "
           "(EXIF orientation 1, the sensor's own frame); decentring: the middle of the soft side, vignetting: the "
           "centre, same frame; focus_miss: of the oriented (viewed) frame."),
        _f("y", pa.float64(), "Position down, fraction 0-1, same frame as x."),
        _f("radius", pa.float64(), "Dust: radius of the shadow, fraction of that frame's width."),
        _f("strength", pa.float64(),
           "Dust: fraction of the light taken at the centre; photosites: median value, fraction of the range; "
           "focus_miss: blur of the subject (Gaussian sigma, px of a copy of at most 1536 px); decentring: fine "
           "detail the soft side keeps, fraction of the other side's; vignetting: corner falloff (EV, median)."),
        _f("frames", pa.int32(), "Frames that show it (1 for a focus miss; decentring and vignetting: the frames "
           "that agree with the finding).", False),
        _f("frames_examined", pa.int32(), "Frames of this body looked at for this kind.", False),
        _f("source_path", pa.string(), "The frame, for per-frame findings (focus_miss); null for body findings."),
        _f("evidence", pa.list_(pa.string()), "Frames that show it best (at most 12), relative to the shoot."),
        _f("confidence", pa.float64(), "0-1, a reading aid (0.5 at the detection threshold).", False),
        _f("detail", pa.string(), "What a person should read.", False),
        _f("photographer", pa.string(), "Who shot the frame (focus_miss), or the body's main photographer in this shoot."),
        _f("captured_from", pa.timestamp("ms"), "First capture time of the body's frames in this shoot (or the frame's)."),
        _f("captured_until", pa.timestamp("ms"), "Last capture time of the body's frames in this shoot (or the frame's)."),
    ],
    metadata={"postprod.table": "equipment"},
)


def equipment_rows(result: EquipmentResult, shoot_id: str,
                   records: Iterable[ImageRecord | FrameFacts]) -> list[dict[str, Any]]:
    """Rows of ``equipment.parquet`` (:data:`EQUIPMENT_SCHEMA`)."""
    wanted = {f.source_path for f in result.findings if f.source_path is not None}
    by_path = {r.source_path: frame_facts(r) for r in records if r.source_path in wanted}
    rows = []
    for f in result.findings:
        bf = result.body_of_finding(f)
        if f.source_path is not None:
            r = by_path.get(f.source_path)
            when = r.captured_at if r is not None else None
            person = r.photographer if r is not None else None
            start = end = when
        else:
            person = bf.photographers.most_common(1)[0][0] if bf and bf.photographers else None
            start = min(bf.captured) if bf and bf.captured else None
            end = max(bf.captured) if bf and bf.captured else None
        rows.append({
            "shoot_id": shoot_id, "camera_serial": f.camera_serial, "camera_make": f.camera_make,
            "camera_model": f.camera_model, "kind": str(f.kind), "x": f.x, "y": f.y, "radius": f.radius,
            "strength": f.strength, "frames": f.frames, "frames_examined": f.frames_examined,
            "source_path": f.source_path, "evidence": list(f.evidence), "confidence": round(f.confidence, 3),
            "detail": f.detail, "photographer": None if person == UNKNOWN_PHOTOGRAPHER else person,
            "captured_from": start, "captured_until": end,
        })  # fmt: skip
    return rows


# --- operators ---------------------------------------------------------------------------------------------
OPERATORS_SCHEMA = pa.schema(
    [
        _f("shoot_id", pa.string(), "The shoot (the {shoot} token).", False),
        _f("photographer", pa.string(), f"Who shot the frames; {UNKNOWN_PHOTOGRAPHER} when nothing names anybody.", False),
        _f("photographer_source", pa.string(), "Where the name came from: option, register, exif_artist (most frames)."),
        _f("bodies", pa.list_(pa.string()), "Camera bodies used (serial, else make and model)."),
        _f("captured_from", pa.timestamp("ms"), "First capture time."),
        _f("captured_until", pa.timestamp("ms"), "Last capture time."),
        _f("captures", pa.int32(), "Frames shot (a RAW+JPEG pair is one capture; exact duplicates are not).", False),
        _f("files", pa.int32(), "Files, pairs and exact duplicates included.", False),
        _f("failed", pa.int32(), "Captures whose file could not be read.", False),
        _f("planned", pa.int32(), "Captures the chart was applied to (the base of the counts below).", False),
        _f("accepted", pa.int32(), "Planned captures the chart accepts as they are.", False),
        _f("flagged", pa.int32(), "Planned captures a person should look at.", False),
        _f("rejected", pa.int32(), "Planned captures the chart rejects (not delivered; a bracket's frames merged "
           "into another are not counted).", False),
        _f("needs_exposure", pa.int32(), "Planned captures whose exposure the chart corrects.", False),
        _f("needs_white_balance", pa.int32(), "Planned captures whose white balance the chart corrects.", False),
        _f("needs_brighten_face", pa.int32(), "Planned captures with a face to brighten.", False),
        _f("needs_straighten", pa.int32(), "Planned captures the chart straightens (horizon or verticals).", False),
        _f("to_retoucher", pa.int32(), "Planned captures with a task for a retoucher (by hand, flag or reject).", False),
        _f("reasons", pa.map_(pa.string(), pa.int32()),
           "Why, counted over planned captures: '<kind>' for the renderer's corrections, 'retoucher:<kind>' for "
           "tasks by hand, 'flag:<check>' and 'reject:<check>' for failed acceptance checks."),
        _f("exposure_ev_median", pa.float64(), "Median exposure offset the plan corrects (the manifest's exposure_ev: against the chart's target, keyed on the faces that count; EV)."),
        _f("exposure_ev_p10", pa.float64(), "10th percentile of the exposure offset (EV)."),
        _f("exposure_ev_p90", pa.float64(), "90th percentile of the exposure offset (EV)."),
        _f("exposure_under", pa.int32(), "Captures the plan judged under-exposed (exposure_verdict: beyond the chart's tolerance).", False),
        _f("exposure_over", pa.int32(), "Captures the plan judged over-exposed (exposure_verdict).", False),
        _f("exposure_ev_hist", pa.list_(pa.int32()),
           "Captures per exposure bin: below -3, then 0.5 EV bins from -3 to +3, then above +3 (14 bins)."),
        _f("horizon_tilt_median_deg", pa.float64(), "Median horizon tilt (+ rising to the right): a habit if far from 0."),
        _f("horizon_tilt_mean_abs_deg", pa.float64(), "Mean absolute horizon tilt."),
        _f("horizon_tilt_hist", pa.list_(pa.int32()), "Captures per tilt bin: below -5, 0.5 degree bins to +5, above (22 bins)."),
        _f("verticals_tilt_median_deg", pa.float64(), "Median lean of the verticals (+ top leans right)."),
        _f("verticals_tilt_mean_abs_deg", pa.float64(), "Mean absolute lean of the verticals."),
        _f("verticals_tilt_hist", pa.list_(pa.int32()), "Captures per lean bin, as horizon_tilt_hist."),
        _f("pitched_frames", pa.int32(), f"Captures shot with the camera pitched: verticals that converge steadily by "
           f"{PITCHED_LEAN_DEG:g} deg or more at the frame's edges (a keystone; a level camera, a shift lens or a "
           "higher stand avoids it). Null in output folders written before it was counted."),
        _f("keystone_lean_median_deg", pa.float64(), "Median lean at the frame's edges of the pitched captures' "
           "verticals (+ = pitched up: they meet above the frame)."),
        _f("keystone_lean_hist", pa.list_(pa.int32()), "Pitched captures per lean bin, as horizon_tilt_hist."),
        _f("duplicates", pa.int32(), "Files that are exact copies of another file of the shoot.", False),
        _f("near_duplicates", pa.int32(), "Captures the plan found nearly identical to an earlier one.", False),
        _f("bursts", pa.int32(), f"Runs of frames of one body at most {BURST_GAP_S:g} s apart.", False),
        _f("burst_frames", pa.int32(), "Captures in those runs.", False),
        _f("focus_misses", pa.int32(), "Captures whose focus missed the subject (or were shaken).", False),
        _f("focus_judged", pa.int32(), "Captures whose focus was judged.", False),
    ],
    metadata={"postprod.table": "operators"},
)


def _hist(values: list[float], edges: tuple[float, ...]) -> list[int]:
    idx = np.searchsorted(np.asarray(edges), np.asarray(values, dtype=float), side="right")
    return np.bincount(idx, minlength=len(edges) + 1).astype(int).tolist()


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def _bursts(caps: list[Capture]) -> tuple[int, int]:
    """(runs, captures in runs) of frames of one body at most BURST_GAP_S apart."""
    by_body: dict[str, list[datetime]] = defaultdict(list)
    for c in caps:
        if c.primary.captured_at is not None:
            by_body[body_key(c.body) or ""].append(c.primary.captured_at)
    runs = frames = 0
    for times in by_body.values():
        times.sort()
        length = 1
        for a, b in zip(times, times[1:] + [None]):  # type: ignore[list-item]
            if b is not None and (b - a).total_seconds() <= BURST_GAP_S:
                length += 1
                continue
            if length > 1:
                runs += 1
                frames += length
            length = 1
    return runs, frames


def operator_rows(records: Iterable[ImageRecord | FrameFacts], shoot_id: str) -> list[dict[str, Any]]:
    """Rows of ``operators.parquet`` (:data:`OPERATORS_SCHEMA`): one per photographer of the shoot."""
    records = [frame_facts(r) for r in records]
    caps_by: dict[str, list[Capture]] = defaultdict(list)
    files_by: Counter = Counter()
    dups_by: Counter = Counter()
    primary_of: dict[str, str] = {}
    all_caps = captures(records)
    for c in all_caps:
        caps_by[c.photographer].append(c)
        for f in c.files:
            primary_of[f.source_path] = c.photographer
            files_by[c.photographer] += 1
    for r in records:
        if r.duplicate_of is not None:
            person = primary_of.get(r.duplicate_of, r.photographer or UNKNOWN_PHOTOGRAPHER)
            dups_by[person] += 1
            files_by[person] += 1
    rows = []
    for person in sorted(caps_by, key=lambda p: (p == UNKNOWN_PHOTOGRAPHER, p)):
        caps = caps_by[person]
        prim = [c.primary for c in caps]
        ok = [r for r in prim if r.status is Status.OK]
        planned = [r for r in ok if r.verdict is not None]
        reasons: Counter = Counter()
        needs: Counter = Counter()
        to_retoucher = 0
        for r in planned:
            needs.update(r.corrections)
            reasons.update(r.reasons)
            to_retoucher += r.to_retoucher
        verdicts = Counter(r.verdict for r in planned)
        ev = [r.exposure_ev for r in ok if r.exposure_ev is not None]
        horizon = [r.horizon_tilt_deg for r in ok if r.horizon_tilt_deg is not None]
        verticals = [r.verticals_tilt_deg for r in ok if r.verticals_tilt_deg is not None]
        pitched = [r.keystone_lean_deg for r in ok
                   if r.keystone_lean_deg is not None and abs(r.keystone_lean_deg) >= PITCHED_LEAN_DEG]
        times = [r.captured_at for r in prim if r.captured_at is not None]
        sources = Counter(r.photographer_source for r in prim if r.photographer_source)
        bursts, burst_frames = _bursts(caps)
        rows.append({
            "shoot_id": shoot_id, "photographer": person,
            "photographer_source": sources.most_common(1)[0][0] if sources else None,
            "bodies": sorted({body_key(c.body) for c in caps if c.body is not None} - {None}),  # type: ignore[operator]
            "captured_from": min(times) if times else None, "captured_until": max(times) if times else None,
            "captures": len(caps), "files": files_by[person], "failed": len(prim) - len(ok),
            "planned": len(planned), "accepted": verdicts.get(Verdict.ACCEPT, 0),
            "flagged": verdicts.get(Verdict.FLAG, 0),
            "rejected": verdicts.get(Verdict.REJECT, 0) - sum(r.merged for r in planned),
            "needs_exposure": needs[OperationKind.EXPOSURE], "needs_white_balance": needs[OperationKind.WHITE_BALANCE],
            "needs_brighten_face": needs[OperationKind.BRIGHTEN_FACE],
            "needs_straighten": needs[OperationKind.STRAIGHTEN], "to_retoucher": to_retoucher,
            "reasons": sorted(reasons.items()),
            "exposure_ev_median": _pct(ev, 50), "exposure_ev_p10": _pct(ev, 10), "exposure_ev_p90": _pct(ev, 90),
            "exposure_under": sum(1 for r in ok if r.exposure_verdict == "under"),
            "exposure_over": sum(1 for r in ok if r.exposure_verdict == "over"),
            "exposure_ev_hist": _hist(ev, EXPOSURE_BIN_EDGES),
            "horizon_tilt_median_deg": _pct(horizon, 50),
            "horizon_tilt_mean_abs_deg": round(float(np.mean(np.abs(horizon))), 3) if horizon else None,
            "horizon_tilt_hist": _hist(horizon, TILT_BIN_EDGES),
            "verticals_tilt_median_deg": _pct(verticals, 50),
            "verticals_tilt_mean_abs_deg": round(float(np.mean(np.abs(verticals))), 3) if verticals else None,
            "verticals_tilt_hist": _hist(verticals, TILT_BIN_EDGES),
            "pitched_frames": len(pitched), "keystone_lean_median_deg": _pct(pitched, 50),
            "keystone_lean_hist": _hist(pitched, TILT_BIN_EDGES),
            "duplicates": dups_by[person],
            "near_duplicates": sum(1 for r in planned if r.near_duplicate),
            "bursts": bursts, "burst_frames": burst_frames,
            "focus_misses": sum(1 for r in ok if r.focus_miss),
            "focus_judged": sum(1 for r in ok if r.focus_miss is not None),
        })  # fmt: skip
    return rows


def median_from_hist(hist: Sequence[int], edges: Sequence[float]) -> float | None:
    """The median a histogram of :func:`_hist`'s bins gives (linear within the bin; the open end bins
    count as their edge)."""
    total = sum(hist)
    if not total:
        return None
    half, run = total / 2.0, 0
    for i, n in enumerate(hist):
        if run + n >= half and n:
            if i == 0:
                return float(edges[0])
            if i == len(edges):
                return float(edges[-1])
            lo, hi = edges[i - 1], edges[i]
            return float(lo + (hi - lo) * (half - run) / n)
        run += n
    return float(edges[-1])


def share(n: int, of: int) -> float:
    """``n / of``, 0 when there is nothing to divide."""
    return n / of if of else 0.0

