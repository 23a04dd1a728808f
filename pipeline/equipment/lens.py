"""Lens findings of one body+lens, from the lens fields of all its frames in a shoot.

Each frame gives a coarse grid of brightness and fine/coarse detail over the
sensor (:func:`pipeline.imaging.lens_field.lens_field`); the scene dominates
every single frame, so both findings are medians over frames whose content
differs, in which the scene's own left/right and centre/corner differences
average out and what the lens does at a fixed place of the sensor stays.

* **Decentring** (a lens soft on one side): per frame, the ratio of fine to
  coarse detail less the noise (a blur measure that depends little on
  contrast) on the outer third of the sensor on each side, left against
  right and top against bottom, as a log2 difference, less what scenes do
  along the viewed vertical (:data:`SCENE_TOP_BOTTOM_LOG2`: the foreground is
  sharper than the sky). The lens is soft on
  one side when the median over frames is beyond :data:`DECENTRING_MIN_LOG2`
  *and* the sign is consistent: a sign test over the frames (each frame's
  scene is a coin toss for which side is sharper) at :data:`SIGN_TEST_P`.
  Confidence: from that test (0.5 at its bar), so from the number of frames
  and how consistently they agree.
* **Vignetting beyond the norm**: per frame, the log2 luminance of every
  usable cell (neither clipped nor black) less the frame's median cell, which
  normalises the exposure; per cell, the median over frames (a single frame's
  corners are whatever the scene put there: one frame's own falloff spreads
  over about 2 EV on the tuning split's sound lenses, the falloff of the
  per-cell median of their 10-19 usable frames over 0.45-0.65 EV, measured by
  resampling the frames: a finding rests on more frames than the others);
  that map fitted by ``a + b r^2`` (``r`` 1 at the corners), ``-b`` is the
  falloff to the corners in EV. A finding when it passes the norm for the
  frames' apertures (:func:`vignetting_norm_ev`, median over frames) by
  :data:`VIGNETTING_MIN_EXCESS_EV`. Confidence: the share of bootstrap
  resamples of the frames that would also pass (0.5 about at the bar).

How many frames a finding needs
-------------------------------
:data:`LENS_MIN_FRAMES` (8) usable frames. A single frame's left/right
detail ratio or corner falloff is mostly the scene (a portrait against a
blurred background, a dark room's corners): on the tuning split's sound
lenses one frame's detail difference spreads over 0.2-0.45 log2 (robust
sigma) around its body's median, so the median of 8 frames is within about
0.18 of the lens's own (1.25 sigma / sqrt(8)), under half of
:data:`DECENTRING_MIN_LOG2`; 8 frames also let the sign test reach
:data:`SIGN_TEST_P` = 0.05 with one frame dissenting (7 of 8: p = 0.035).
Under 8 the per-cell medians of the vignetting map rest on 3 or 4 frames a
cell, where one scene decides. Fewer
frames prove nothing either way, so nothing is reported; ``postprod
operators`` puts the shoots of a body side by side.

The norm for vignetting
-----------------------
:func:`vignetting_norm_ev`: 0.5 EV at f/8 and smaller, plus 0.25 EV per stop
opened beyond f/8 (1.0 EV at f/4, 1.25 at f/2.8, 1.75 at f/1.4). The 0.5 EV
is the natural cos^4 falloff of a normal lens at the corner of its image
circle (about 23 degrees off axis: cos^4 = 0.71, -0.5 EV), which stopping
down does not remove; the aperture term is optical (cat's-eye) vignetting,
which stopping down does remove: published measurements of sound lenses
wide open run from about 1 EV (f/4 zooms) to 1.5-2 EV (f/1.4 primes) and
come down to the cos^4 floor by two to three stops down. The norm is lenient
on purpose: a finding means more falloff than a sound lens shows at that
aperture, not a lens that vignettes at all. Frames without an f-number are
held to the f/4 norm.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.equipment.findings import MAX_EVIDENCE_FRAMES, Body, EquipmentFinding, FindingKind, FrameRef
from pipeline.imaging.lens_field import COARSE_LEVEL, FINE_LEVEL, LensField
from pipeline.imaging.orientation import sensor_to_viewed

#: Usable frames a body+lens needs before either finding is reported (see the module's docstring).
LENS_MIN_FRAMES = 8
#: The sign test's bar: the chance that frames whose sharper (or darker) side is a coin toss agree this often.
SIGN_TEST_P = 0.05
#: A side is soft when its fine/coarse detail ratio is this far (log2) below the other side's, median of frames.
DECENTRING_MIN_LOG2 = 0.45
#: Vignetting is reported when the corners fall this much (EV, median of frames) beyond the norm.
VIGNETTING_MIN_EXCESS_EV = 0.45
#: The scenes' own top-bottom detail difference (log2) in the frame as viewed: the foreground at the
#: bottom is in focus and detailed, the sky or background at the top is not. Median of the six sound-lens
#: bodies of the tuning split (-0.22 to -0.44 each, frames held level or upright); taken off each frame's
#: detail differences along whichever sensor axis is the viewed vertical (the top-bottom one for a frame
#: held level, the left-right one for a frame held upright), so a sound lens reads about 0 on both.
SCENE_TOP_BOTTOM_LOG2 = -0.3
#: Share of each side's cells (the outer third of the sensor) that detail is compared on.
SIDE_SHARE = 1 / 3
#: A cell of a side takes part only where its coarse detail energy (less the noise's) is above this
#: and above the coarse noise energy: a blank wall or sky has no detail to lose, only noise.
MIN_COARSE_DETAIL = 1e-6
#: A frame counts for vignetting with this share of its cells usable; a falloff fit needs it too, and
#: usable cells beyond r = 0.75 and within r = 0.5.
MIN_USABLE_CELLS = 0.5
#: Norm: natural falloff at f/8 and smaller, and what each stop opened beyond f/8 adds (EV).
NORM_FLOOR_EV, NORM_PER_STOP_EV, NORM_STOPPED_AT = 0.5, 0.25, 8.0
#: The f-number frames without one are held to.
NORM_UNKNOWN_F = 4.0
SIDES = {"left": (0, -1), "right": (0, 1), "top": (-1, 0), "bottom": (1, 0)}


def vignetting_norm_ev(f_number: float | None) -> float:
    """The corner falloff (EV, positive) a sound lens may show at this aperture (module docstring).

    Raises
    ------
    ValueError
        If ``f_number`` is not positive.
    """
    n = NORM_UNKNOWN_F if f_number is None else float(f_number)
    if not n > 0:
        raise ValueError(f"f-number must be positive, got {f_number}")
    stops_open = max(0.0, 2.0 * math.log2(NORM_STOPPED_AT / n))
    return NORM_FLOOR_EV + NORM_PER_STOP_EV * stops_open


def sign_test_p(agree: int, n: int) -> float:
    """One-sided sign test: the chance of at least ``agree`` of ``n`` fair coin tosses landing one way.

    In integers to the last division: ``2.0**n`` overflows a float past 1023 frames (a body's 1,712 frames of one
    lens stopped a whole run's outputs).
    """
    if n <= 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(max(agree, 0), n + 1)) / (1 << n)


def side_detail_log2(field: LensField) -> tuple[float | None, float | None]:
    """One frame's (left - right, top - bottom) log2 fine/coarse detail ratios; None where a side is blank.

    Positive: the left (top) side holds more fine detail for its coarse
    detail than the right (bottom). Energies less the frame's noise
    (:class:`~pipeline.imaging.lens_field.LensField`), as amplitudes (half
    the log2 of the energy ratio).
    """
    rows, cols = field.shape
    kc, kr = max(1, round(cols * SIDE_SHARE)), max(1, round(rows * SIDE_SHARE))
    sides = {"left": (slice(None), slice(0, kc)), "right": (slice(None), slice(cols - kc, cols)),
             "top": (slice(0, kr), slice(None)), "bottom": (slice(rows - kr, rows), slice(None))}
    noise = max(float(field.noise), 0.0)
    fine_all = np.maximum(field.fine.astype(np.float64) - noise, 0.0)
    coarse_noise = noise / 4.0 ** (COARSE_LEVEL - FINE_LEVEL)
    coarse_all = np.maximum(field.coarse.astype(np.float64) - coarse_noise, 0.0)
    ratio: dict[str, float | None] = {}
    for name, idx in sides.items():
        fine, coarse = fine_all[idx], coarse_all[idx]
        textured = coarse >= max(MIN_COARSE_DETAIL, coarse_noise)
        if textured.sum() < max(2, textured.size // 4):
            ratio[name] = None
            continue
        # Floored at 1/16 of the coarse amplitude: a side whose fine detail is all noise is as soft as it gets.
        ratio[name] = 0.5 * math.log2(max(fine[textured].sum() / coarse[textured].sum(), 2.0**-8))
    out = []
    for a, b in (("left", "right"), ("top", "bottom")):
        ra, rb = ratio[a], ratio[b]
        out.append(None if ra is None or rb is None else ra - rb)
    return out[0], out[1]


def viewed_up(orientation: int | None) -> tuple[float, float]:
    """How the sensor's left-right and top-bottom axes point to the viewed frame's top: (a_lr, a_tb).

    (0, 1) for a frame held level (the sensor's top is the picture's top), (1, 0) when the sensor's
    left is the picture's top (EXIF 6), (-1, 0) for EXIF 8, (0, -1) upside down.
    """
    o = orientation if orientation in range(1, 9) else 1
    vy = {k: sensor_to_viewed(x, y, o)[1] for k, (x, y) in
          {"l": (0.0, 0.5), "r": (1.0, 0.5), "t": (0.5, 0.0), "b": (0.5, 1.0)}.items()}
    return vy["r"] - vy["l"], vy["b"] - vy["t"]


def _radius2(shape: tuple[int, int]) -> np.ndarray:
    rows, cols = shape
    aspect = cols / rows  # cells are square on the sensor when the grid follows its aspect
    yy, xx = np.mgrid[:rows, :cols].astype(np.float64)
    u = (xx + 0.5) / cols * 2 - 1
    v = (yy + 0.5) / rows * 2 - 1
    return (u * u * aspect * aspect + v * v) / (aspect * aspect + 1)


def _falloff_fit(log_luma: np.ndarray) -> float | None:
    """Falloff to the corners (EV, positive = darker corners) of a map of log2 luminance; None if unusable.

    Least squares of the usable cells on ``a + b r^2`` (``r`` 1 at the
    corners): ``-b``.
    """
    r2 = _radius2(log_luma.shape)
    lum = np.asarray(log_luma, np.float64)
    ok = np.isfinite(lum)
    if ok.mean() < MIN_USABLE_CELLS or not (ok & (r2 >= 0.75**2)).any() or not (ok & (r2 <= 0.5**2)).any():
        return None
    a = np.stack([np.ones(int(ok.sum())), r2[ok]], axis=1)
    coef, *_ = np.linalg.lstsq(a, lum[ok], rcond=None)
    return float(-coef[1])


def corner_falloff_ev(field: LensField) -> float | None:
    """One frame's falloff from its centre to the corners (EV, positive = darker corners); None if unusable."""
    return _falloff_fit(field.log_luma)


def relative_luma(field: LensField) -> np.ndarray | None:
    """The frame's log2 luminance per cell less its median cell (the exposure); None when under half is usable."""
    lum = field.log_luma.astype(np.float64)
    ok = np.isfinite(lum)
    if ok.mean() < MIN_USABLE_CELLS:
        return None
    return lum - float(np.median(lum[ok]))


def body_falloff_ev(relative: np.ndarray) -> float | None:
    """The falloff of a stack of frames' relative maps (n, rows, cols): fitted on the per-cell median.

    The median over frames at each cell is where the scene averages out (a
    cell needs half of the frames usable there); the fit of that map is the
    body+lens's falloff.
    """
    if not len(relative):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells stay NaN
        med = np.nanmedian(relative, axis=0)
    med[np.isfinite(relative).sum(axis=0) < max(2, len(relative) / 2)] = np.nan
    return _falloff_fit(med)


@dataclass(frozen=True)
class LensStats:
    """What a body+lens's frames say, before any threshold (the benchmark reads these too)."""

    frames: int  # frames with a lens field
    lr: tuple[float, ...]  # per-frame left - right detail (log2)
    tb: tuple[float, ...]  # per-frame top - bottom detail (log2)
    relative: np.ndarray  # (n, rows, cols) per-frame log2 luminance less the frame's median cell
    norm: tuple[float, ...]  # per-frame norm (EV), of the frames in ``relative``
    used_lr: tuple[FrameRef, ...]
    used_tb: tuple[FrameRef, ...]
    used_vignetting: tuple[FrameRef, ...]

    @property
    def falloff_ev(self) -> float | None:
        """The body+lens's corner falloff (EV, :func:`body_falloff_ev`)."""
        return body_falloff_ev(self.relative)

    @property
    def norm_ev(self) -> float | None:
        """The norm of the frames' apertures (their median)."""
        return float(np.median(self.norm)) if self.norm else None

    def falloff_resampled(self, draws: int = 200, seed: int = 0) -> np.ndarray:
        """The falloff of :data:`draws` bootstrap resamples of the frames (a reproducible seed)."""
        rng = np.random.default_rng(seed)
        n = len(self.relative)
        out = [body_falloff_ev(self.relative[rng.integers(0, n, n)]) for _ in range(draws)]
        return np.array([v for v in out if v is not None])


def lens_stats(fields: Iterable[tuple[LensField, FrameRef]]) -> LensStats:
    """Per-frame decentring and vignetting measures of one body+lens's frames."""
    lr, tb, rel, nm = [], [], [], []
    ulr, utb, uv = [], [], []
    n = 0
    shape = None
    for field, ref in fields:
        n += 1
        d_lr, d_tb = side_detail_log2(field)
        a_lr, a_tb = viewed_up(ref.orientation)
        if d_lr is not None:
            d_lr -= a_lr * SCENE_TOP_BOTTOM_LOG2
        if d_tb is not None:
            d_tb -= a_tb * SCENE_TOP_BOTTOM_LOG2
        if d_lr is not None:
            lr.append(d_lr)
            ulr.append(ref)
        if d_tb is not None:
            tb.append(d_tb)
            utb.append(ref)
        r = relative_luma(field)
        shape = shape or field.shape
        if r is not None and r.shape == shape:  # another crop mode is another grid: the first one's frames count
            rel.append(r)
            nm.append(vignetting_norm_ev(ref.f_number))
            uv.append(ref)
    relative = np.stack(rel) if rel else np.zeros((0, 1, 1))
    return LensStats(n, tuple(lr), tuple(tb), relative, tuple(nm), tuple(ulr), tuple(utb), tuple(uv))


def _consistency(values: Sequence[float]) -> tuple[float, int, float]:
    """(median, frames agreeing with its sign, sign-test p)."""
    med = float(np.median(values))
    agree = sum(1 for v in values if (v > 0) == (med > 0) and v != 0)
    return med, agree, sign_test_p(agree, len(values))


def _confidence(p: float) -> float:
    # 0.5 at the sign test's bar, towards 1 as the frames agree more (a reading aid, not a probability).
    return float(min(1.0, max(0.0, 1.0 - 0.5 * p / SIGN_TEST_P)))


def _aperture_range(frames: Sequence[FrameRef]) -> str:
    nums = sorted({f.f_number for f in frames if f.f_number})
    if not nums:
        return "?"
    return f"{nums[0]:g}" if len(nums) == 1 else f"{nums[0]:g}-{nums[-1]:g}"


def lens_findings(body: Body, lens: str | None, stats: LensStats,
                  min_frames: int = LENS_MIN_FRAMES) -> list[EquipmentFinding]:
    """Decentring and vignetting findings of one body+lens (none under ``min_frames`` usable frames)."""
    lens_name = lens or "its lens (the files name none)"
    out: list[EquipmentFinding] = []
    for values, used, (pos, neg) in ((stats.lr, stats.used_lr, ("right", "left")),
                                     (stats.tb, stats.used_tb, ("bottom", "top"))):
        if len(values) < min_frames:
            continue
        med, agree, p = _consistency(values)
        if abs(med) < DECENTRING_MIN_LOG2 or p > SIGN_TEST_P:
            continue
        soft = pos if med > 0 else neg  # left - right > 0: the right side is the soft one
        sharp = neg if soft == pos else pos
        dy, dx = SIDES[soft]
        kept = 2.0 ** -abs(med)
        out.append(EquipmentFinding(
            camera_serial=body.serial, camera_make=body.make, camera_model=body.model,
            kind=FindingKind.DECENTRING, x=round(0.5 + 0.4 * dx, 3), y=round(0.5 + 0.4 * dy, 3), radius=None, strength=kept,
            frames=agree, frames_examined=len(values), source_path=None,
            evidence=tuple(f.source_path for f in used[:MAX_EVIDENCE_FRAMES]), confidence=_confidence(p),
            detail=(f"{lens_name} on {body.name} is soft on the {soft} (camera held level): the {soft} third of "
                    f"the frame keeps {kept:.0%} of the {sharp} third's fine detail (median of {len(values)} "
                    f"frames; {agree} of them softer on the {soft}, sign test p = {p:.1g}). A decentred or "
                    "tilted element: have the lens checked (test it on a flat, detailed target)."),
        ))
    falloff = stats.falloff_ev if len(stats.relative) >= min_frames else None
    if falloff is not None:
        norm = stats.norm_ev or vignetting_norm_ev(None)
        excess = falloff - norm
        if excess >= VIGNETTING_MIN_EXCESS_EV:
            resampled = stats.falloff_resampled()
            share = float(np.mean(resampled - norm >= VIGNETTING_MIN_EXCESS_EV)) if len(resampled) else 0.5
            n = len(stats.relative)
            out.append(EquipmentFinding(
                camera_serial=body.serial, camera_make=body.make, camera_model=body.model,
                kind=FindingKind.VIGNETTING, x=0.5, y=0.5, radius=None, strength=round(falloff, 3),
                frames=n, frames_examined=stats.frames, source_path=None,
                evidence=tuple(f.source_path for f in stats.used_vignetting[:MAX_EVIDENCE_FRAMES]),
                confidence=share,
                detail=(f"{lens_name} on {body.name} darkens the corners by {falloff:.2f} EV against the middle "
                        f"of the frame (the median of {n} frames, place by place), {excess:.2f} EV beyond the "
                        f"{norm:.2f} EV a sound lens shows at these apertures (f/"
                        f"{_aperture_range(stats.used_vignetting)}). Look for a stacked filter or a wrong hood; "
                        "else have the lens checked, or add a vignetting correction to the chart for it."),
            ))
    return out
