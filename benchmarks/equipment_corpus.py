"""Generated truth for the equipment checks: DNG series from real photographs with known defects.

Two splits (``tuning`` and ``heldout``) of the shared test photos
(``exposure/``, ``wb/``, ``wb/pairs/*groundtruth*``: every photo with a long
edge of at least 900 px; smaller ones, like scikit-image's samples at
450-750 px, would be soft frames once enlarged to the sensor and would pass
for focus misses). Photos are assigned to the splits alternately in name
order; the detectors' constants are set on the tuning splits only
(:data:`TUNING_SPLITS`: ``tuning``, ``tuning_v2`` and ``tuning_v3``, the tuning
photos with three seeds, 252 frames) and ``benchmarks/equipment.py`` reports
every split. ``heldout`` and
``heldout_v1`` (and ``heldout_v3``, ``heldout_v4``) share the held-out photos and
differ in their seed (crops, defects, focus misses, apertures): ``heldout_v1`` was
looked at after earlier rounds of changes, ``heldout`` after later ones,
``heldout_v3`` after the dust patch rule, ``heldout_v4`` is the newest.

Each split has two bodies, 24 frames each, of its own photos (a random crop
of 85-100 % of a photo per frame, mirrored or not, a quarter of them in
portrait, written with EXIF orientation 6 or 8 as a camera held upright
does):

* body ``...-DUSTY``: 8 dust particles on the sensor, 12 hot photosites, 3 dead
  and 2 stuck ones, at fixed sensor positions (a split's own seed places them);
* body ``...-CLEAN``: none of that;
* the tuning splits only: body ``PPT-0003-DUSTY`` (``PPU-``, ``PPV-`` in ``tuning_v2``, ``tuning_v3``), a second dusty body with its own
  defects and focus misses (:data:`EXTRA_TUNING_MISSES`: 5 shaken, 3
  back-focused, 1 defocused frame), from its own random stream so the first
  two bodies do not change with it: more examples to set the shake, focus and
  dust rules on;
* the tuning splits only: body ``PPT-0004-CLEAN`` (:data:`TRIPOD_FRAMES` frames, its
  own stream too), clean and on a tripod: every frame at a shutter slower than
  1/focal length, 3 of them shaken. Every other sharp frame of the corpus has
  a fast shutter, so without this body the reciprocal-rule gate on camera
  shake could not be told from a detector that reads the truth off the EXIF.

Both bodies have 5 focus misses in 24 frames: 2 defocused frames (a disc
blur over the whole frame, radius 0.27-0.53 % of the width), 1 camera-shake
frame (a line blur of 0.5-0.9 % of the width, with a slow shutter and a long
focal length in its EXIF, which the detector does not use), and 2
back-focused frames (the main face and the head around it blurred in a
feathered ellipse, the rest of the frame sharp). The main face is the one
YuNet finds when it is beyond doubt the subject: 6 % of the width or more and
1.5 times the area of the next face; a photo without one gets a defocused
frame instead. Two photos whose main subject is soft in the original, judged
by eye before any focus result was looked at (:data:`SOFT_ORIGINALS`), give
unmodified frames that count neither as sharp nor as misses.
Every frame gets the shot and read noise of its ISO and 30 cosmic-ray hits
(single photosites at random values and positions: transient outliers the
photosite check must not report).

The sensor
----------
3000 x 2000 photosites (6 MP, 3:2), RGGB, 14 bits, black 512, sRGB primaries
(``pipeline.imaging.dng``): LibRaw's half-size decode gives a 1500 x 1000
proxy, the size decode_raw uses. The scene is the photo linearised, enlarged
to the sensor in linear light; the optical blur (a focus miss) is applied to
the scene, the dust shadow on the sensor after it (dust sits on the cover
glass, behind the lens), then the mosaic, the noise and the defective
photosites.

Dust
----
A particle at height ``h`` above the photosites, lit by the cone of an
aperture ``N``, casts a shadow of radius ``r(N) = r22 * (1 + 0.6 * (22 / N - 1))``
(``r22`` at f/22: 4-14 photosites, 0.13-0.47 % of the width) whose depth
falls with the area it spreads over, ``s(N) = s22 * (r22 / r(N))**2``
(``s22`` 0.12-0.45 of the light): dark and small at f/16-f/22, faint and wide
at f/4 (a 0.3 spot at f/22 takes 2 % at f/4). The profile is a disc with a
soft edge (a logistic of a quarter of the radius). Apertures are drawn per
frame from f/4 to f/22, weighted to the middle (EXIF ``FNumber``).

Hot, dead, stuck
----------------
Hot photosites read 85-100 % of white in 85 % of the frames and 10-30 %
above their true signal in the others (a shorter exposure, a cooler
sensor); dead ones read black in every frame; stuck ones a fixed value
between 30 and 60 % of the range.

The truth for every frame, body and defect is in ``<split>/truth.json``.
Files are rebuilt when :data:`CORPUS_VERSION`, the :class:`Spec` or the photos
change. ``python benchmarks/equipment_corpus.py`` builds the benchmark's
corpus (two splits, 96 frames, 1.1 GB, about a minute and a half here); the
tests build a small :class:`Spec` of it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.dng import XYZ_TO_SRGB, mosaic, write_dng

CORPUS_VERSION = 3
SPLITS = ("tuning", "tuning_v2", "tuning_v3", "heldout", "heldout_v1", "heldout_v3", "heldout_v4", "heldout_v5", "heldout_v6")
#: The splits constants may be set on: the tuning photos, three seeds (``tuning`` alone, 84 frames, was
#: too little truth: its constants held on it and not on the held-out splits). Each has the four bodies
#: of ``tuning`` (two dusty, two clean, one of them on a tripod), from its own seed.
TUNING_SPLITS = ("tuning", "tuning_v2", "tuning_v3")
#: ``heldout_v1`` is the first held-out split (seed 2602): it was looked at after two rounds of changes,
#: so it is no longer clean; ``heldout`` is the second (the same held-out photos, seed 3703), run once after
#: each later round; ``heldout_v3`` the third (seed 4817, never used before), first run with the dust
#: patch rule; ``heldout_v4`` the fourth (seed 5923, never used before), first run with the dust map
#: measured against its own background peaks; ``heldout_v5`` the fifth (seed 8353, never used before), first
#: run with the dust frames weighted by aperture; ``heldout_v6`` the sixth (seed 9371, never used before), first
#: run with branch focus7's focus check (benchmarks/EQUIPMENT.md lists every held-out run).
SPLIT_SEEDS = {"tuning": 1501, "tuning_v2": 6113, "tuning_v3": 7229, "heldout": 3703, "heldout_v1": 2602, "heldout_v3": 4817, "heldout_v4": 5923, "heldout_v5": 8353, "heldout_v6": 9371}
_SERIAL_TAGS = {"tuning": "T", "tuning_v2": "U", "tuning_v3": "V", "heldout": "F", "heldout_v1": "H", "heldout_v3": "G", "heldout_v4": "J", "heldout_v5": "K",
                "heldout_v6": "L"}
_STARTS = {"tuning": datetime(2026, 5, 4, 9), "tuning_v2": datetime(2026, 5, 11, 9),
           "tuning_v3": datetime(2026, 5, 18, 9), "heldout": datetime(2026, 7, 6, 9), "heldout_v1": datetime(2026, 6, 8, 9),
           "heldout_v3": datetime(2026, 8, 3, 9), "heldout_v4": datetime(2026, 9, 7, 9),
           "heldout_v5": datetime(2026, 10, 5, 9),
           "heldout_v6": datetime(2026, 11, 2, 9)}
SENSOR_W, SENSOR_H = 3000, 2000
BITS, BLACK = 14, 512
WHITE = 2**BITS - 1
WHITE_BALANCE = (2.0, 1.0, 1.5)
FRAMES_PER_BODY = 24
MIN_SOURCE_LONG_EDGE = 900
DUST_PARTICLES = 8
HOT, DEAD, STUCK = 12, 3, 2
COSMIC_HITS = 30
APERTURES = (4.0, 5.6, 8.0, 11.0, 16.0, 22.0)
APERTURE_WEIGHTS = (0.10, 0.15, 0.25, 0.20, 0.15, 0.15)
ISOS = (100, 200, 400, 800, 1600)
FULL_WELL_E = 30000.0  # electrons at white, ISO 100
READ_NOISE_E = 3.0
# Photos whose main subject is soft in the original, judged by eye before any focus result was
# looked at: their unmodified frames are neither sharp frames nor focus misses in the truth.
SOFT_ORIGINALS = {
    "Justin Chiaratti-CC BY-NC-SA 2.0.jpg": "focus on the knees in front; the face is soft",
    "Flickr_Rhett_Sutphin_CC_BY_2.0__.jpg": "shot through a window: the reflections are sharp, the people soft",
}
# Focus misses per body: two defocused, one shaken, two back-focused (defocused without a face).
MISS_KINDS = ("defocus", "defocus", "shake", "back_focus", "back_focus")
#: The tuning split's third body (dusty, its own defects): more camera shake and back focus to set
#: those rules on (two bodies give two shaken frames, too few to place a threshold).
EXTRA_TUNING_MISSES = ("shake",) * 5 + ("back_focus",) * 3 + ("defocus",)
#: The tuning split's fourth body, clean, on a tripod: every frame at a slow shutter (1/4-1/30 s at
#: 50-105 mm, slower than 1/focal length), so the shake rule gets no help from the EXIF shutter time
#: (:func:`pipeline.imaging.focus_miss.shake_possible`) on its sharp frames, and its shaken frames
#: (a tripod knocked during the exposure) must still be caught.
TRIPOD_FRAMES = 12
TRIPOD_MISSES = ("shake",) * 3


@dataclass(frozen=True)
class Spec:
    """The corpus's size: the benchmark's, or a small one for the tests (same code, fewer photosites)."""

    width: int = SENSOR_W
    height: int = SENSOR_H
    frames: int = FRAMES_PER_BODY
    dust: int = DUST_PARTICLES
    hot: int = HOT
    dead: int = DEAD
    stuck: int = STUCK
    cosmic: int = COSMIC_HITS
    misses: tuple[str, ...] = MISS_KINDS
    #: Misses of the tuning split's extra dusty body; empty: no extra body.
    extra_tuning_misses: tuple[str, ...] = ()

    @property
    def px(self) -> float:
        """Photosites of this sensor per photosite of the 3000-wide reference (sizes scale with it)."""
        return self.width / SENSOR_W


FULL = Spec(extra_tuning_misses=EXTRA_TUNING_MISSES)


@dataclass
class Dust:
    x: float  # sensor fractions
    y: float
    r22: float  # shadow radius at f/22, photosites
    s22: float  # fraction of light taken at f/22

    def at(self, f_number: float) -> tuple[float, float]:
        r = self.r22 * (1.0 + 0.6 * (22.0 / f_number - 1.0))
        return r, self.s22 * (self.r22 / r) ** 2


@dataclass
class Photosite:
    row: int
    col: int
    kind: str  # hot, dead, stuck
    level: float = 0.0  # stuck value (fraction of range)


@dataclass
class Frame:
    file: str
    source: str
    orientation: int
    f_number: float
    exposure_time: float
    focal_length: float
    iso: int
    focus_miss: str | None = None  # defocus, shake, back_focus
    blur_px: float = 0.0  # disc radius or shake length, sensor photosites
    subject: list[float] | None = None  # viewed-frame fractions x, y, w, h of the back-focused face
    focus_scored: bool = True  # False: an unmodified frame of a soft original (see SOFT_ORIGINALS)


@dataclass
class Body:
    serial: str
    make: str
    model: str
    artist: str
    lens: str
    dust: list[Dust] = field(default_factory=list)
    photosites: list[Photosite] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)


def source_photos(data: Path) -> list[Path]:
    """Every shared photo with a long edge of at least :data:`MIN_SOURCE_LONG_EDGE`, in name order."""
    found = []
    for folder, pattern in (("exposure", "*"), ("wb", "*"), ("wb/pairs", "*groundtruth*")):
        for p in sorted((data / folder).glob(pattern)):
            if p.suffix.lower() not in (".jpg", ".jpeg", ".png") or not p.is_file():
                continue
            with Image.open(p) as im:
                if max(im.size) >= MIN_SOURCE_LONG_EDGE:
                    found.append(p)
    return sorted(found, key=lambda p: p.name)


def split_sources(data: Path) -> dict[str, list[Path]]:
    photos = source_photos(data)
    if len(photos) < 8:
        raise FileNotFoundError(f"need at least 8 photos of >= {MIN_SOURCE_LONG_EDGE} px in {data} (set POSTPROD_TESTDATA)")
    return {**{split: photos[0::2] for split in TUNING_SPLITS}, "heldout": photos[1::2], "heldout_v1": photos[1::2], "heldout_v3": photos[1::2],
            "heldout_v4": photos[1::2], "heldout_v5": photos[1::2], "heldout_v6": photos[1::2]}


def _largest_face(srgb8: np.ndarray) -> list[float] | None:
    """The photo's main face (x, y, w, h fractions), or None.

    The largest face YuNet finds, when it is the main subject beyond doubt: at
    least 6 % of the width and 1.5 times the area of the next face (in a row
    of equal faces, which one the photographer meant is anybody's guess).
    """
    try:
        from models.face_detectors import get_face_detector
        from models.registry import ensure_model  # noqa: F401  (the detector resolves its weights)

        det = get_face_detector("yunet", score_threshold=0.8)
    except Exception:  # no weights here: no back-focused frames, defocused ones instead
        return None
    h, w = srgb8.shape[:2]
    scale = min(1.0, 1280 / max(h, w))
    small = cv2.resize(srgb8, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else srgb8
    boxes = sorted((d.box for d in det.detect(np.ascontiguousarray(small[..., ::-1]))), key=lambda b: -b[2] * b[3])
    if not boxes or boxes[0][2] / scale < 0.06 * w:
        return None
    if len(boxes) > 1 and boxes[0][2] * boxes[0][3] < 1.5 * boxes[1][2] * boxes[1][3]:
        return None
    x, y, bw, bh = boxes[0]
    return [x / scale / w, y / scale / h, bw / scale / w, bh / scale / h]


def _disc_kernel(radius: float) -> np.ndarray:
    r = max(radius, 0.5)
    n = int(math.ceil(r)) * 2 + 1
    yy, xx = np.mgrid[:n, :n] - n // 2
    k = np.clip(r + 0.5 - np.hypot(xx, yy), 0.0, 1.0).astype(np.float32)
    return k / k.sum()


#: Disc radius (photosites) of a defocused frame, and of a back-focused frame's face and head.
DEFOCUS_RADIUS = (8.0, 16.0)
BACK_FOCUS_RADIUS = (10.0, 18.0)


def defocused(viewed: np.ndarray, radius: float) -> np.ndarray:
    """The whole viewed scene out of focus: a disc blur of ``radius`` photosites."""
    return cv2.filter2D(viewed, -1, _disc_kernel(radius), borderType=cv2.BORDER_REFLECT)


def back_focused(viewed: np.ndarray, face: list[float], radius: float) -> np.ndarray:
    """The viewed scene with the face ``(x, y, w, h)`` (fractions) and the head around it out of focus.

    The face and the head around it (an ellipse 1.8x the box), feathered: the
    subject plane, out of focus (a disc of ``radius`` photosites), the rest sharp.
    """
    vh, vw = viewed.shape[:2]
    blurred = defocused(viewed, radius)
    u, v, fw_, fh_ = face
    cx, cy = (u + fw_ / 2) * vw, (v + fh_ / 2) * vh
    ax, ay = 0.9 * fw_ * vw, 1.1 * fh_ * vh
    yy, xx = np.mgrid[:vh, :vw].astype(np.float32)
    d = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    mask = np.clip(1.5 - d, 0.0, 1.0)[..., None]
    return blurred * mask + viewed * (1.0 - mask)


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    n = int(math.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c = n // 2
    a = math.radians(angle_deg)
    for t in np.linspace(-length / 2, length / 2, int(length * 4) + 1):
        k[int(round(c + t * math.sin(a))), int(round(c + t * math.cos(a)))] += 1.0
    return k / k.sum()


def _viewed_scene(
    photo_lin: np.ndarray, rng: np.random.Generator, portrait: bool, spec: Spec
) -> tuple[np.ndarray, tuple[int, int, int, int], bool]:
    """A random 85-100 % crop of the photo at the frame's aspect, enlarged to the viewed frame.

    Returns the frame, the crop box (x, y, w, h) in the photo, and whether it was mirrored.
    """
    h, w = photo_lin.shape[:2]
    aspect = 2 / 3 if portrait else 3 / 2
    cw, ch = (w, round(w / aspect)) if w / h <= aspect else (round(h * aspect), h)
    s = rng.uniform(0.85, 1.0)
    cw, ch = max(16, int(cw * s)), max(16, int(ch * s))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    crop = photo_lin[y0 : y0 + ch, x0 : x0 + cw]
    flipped = bool(rng.random() < 0.5)
    if flipped:
        crop = crop[:, ::-1]
    size = (spec.height, spec.width) if portrait else (spec.width, spec.height)
    out = cv2.resize(np.ascontiguousarray(crop), size, interpolation=cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0, out=out), (x0, y0, cw, ch), flipped


def face_in_view(face: list[float], photo_shape: tuple[int, ...], crop: tuple[int, int, int, int],
                 flipped: bool) -> list[float] | None:
    """The photo's face ``(x, y, w, h)`` (fractions of the photo) in the viewed frame cut by
    :func:`_viewed_scene` (fractions of the frame); None when the crop cuts it (2 % margin)."""
    ph, pw = photo_shape[:2]
    x0, y0, cw, ch = crop
    fx, fy, fw, fh = face[0] * pw - x0, face[1] * ph - y0, face[2] * pw, face[3] * ph
    if flipped:
        fx = cw - fx - fw
    u0, v0 = fx / cw, fy / ch
    u1, v1 = u0 + fw / cw, v0 + fh / ch
    if u0 < 0.02 or v0 < 0.02 or u1 > 0.98 or v1 > 0.98:
        return None
    return [u0, v0, u1 - u0, v1 - v0]


def _to_sensor(viewed: np.ndarray, orientation: int) -> np.ndarray:
    """The stored (sensor) pixels of a viewed frame, for EXIF orientation 1, 6 or 8."""
    if orientation == 6:  # viewers turn the stored frame 90 degrees clockwise
        return np.ascontiguousarray(np.rot90(viewed, 1))
    if orientation == 8:
        return np.ascontiguousarray(np.rot90(viewed, -1))
    return viewed


def _dust_map(dust: list[Dust], f_number: float, spec: Spec) -> np.ndarray:
    """Fraction of light reaching each photosite (1 = no dust), at this aperture."""
    t = np.ones((spec.height, spec.width), np.float32)
    for d in dust:
        r, s = d.at(f_number)
        cx, cy = d.x * spec.width, d.y * spec.height
        reach = int(r * 2.5) + 2
        x0, x1 = max(0, int(cx) - reach), min(spec.width, int(cx) + reach + 1)
        y0, y1 = max(0, int(cy) - reach), min(spec.height, int(cy) + reach + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dist = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
        profile = 1.0 / (1.0 + np.exp((dist - r) / (0.25 * r)))
        t[y0:y1, x0:x1] *= (1.0 - s * profile).astype(np.float32)
    return t


def _make_body(serial: str, artist: str, rng: np.random.Generator, defects: bool, spec: Spec = FULL) -> Body:
    body = Body(serial=serial, make="postprod", model="Bench 6MP", artist=artist, lens="postprod 24-105mm f/4")
    if not defects:
        return body
    for _ in range(spec.dust):
        body.dust.append(
            Dust(
                x=float(rng.uniform(0.05, 0.95)),
                y=float(rng.uniform(0.05, 0.95)),
                r22=float(rng.uniform(4.0, 14.0)) * spec.px,
                s22=float(rng.uniform(0.12, 0.45)),
            )
        )
    taken: set[tuple[int, int]] = set()
    for kind, count in (("hot", spec.hot), ("dead", spec.dead), ("stuck", spec.stuck)):
        while count:
            row, col = int(rng.integers(8, spec.height - 8)), int(rng.integers(8, spec.width - 8))
            if any(abs(row - r) < 8 and abs(col - c) < 8 for r, c in taken):
                continue
            taken.add((row, col))
            body.photosites.append(Photosite(row, col, kind, float(rng.uniform(0.3, 0.6)) if kind == "stuck" else 0.0))
            count -= 1
    return body


def _frame_settings(rng: np.random.Generator, miss: str | None, tripod: bool = False) -> dict:
    f_number = float(rng.choice(APERTURES, p=APERTURE_WEIGHTS))
    if tripod:
        focal = float(rng.choice([50.0, 85.0, 105.0]))
        shutter = float(rng.choice([1 / 4, 1 / 8, 1 / 15, 1 / 30]))
    elif miss == "shake":
        focal = float(rng.choice([85.0, 105.0]))
        shutter = float(rng.choice([1 / 8, 1 / 10, 1 / 15]))
    else:
        focal = float(rng.choice([24.0, 35.0, 50.0, 70.0, 85.0]))
        shutter = float(rng.choice([1 / 125, 1 / 250, 1 / 500, 1 / 1000]))
    return dict(f_number=f_number, exposure_time=shutter, focal_length=focal, iso=int(rng.choice(ISOS)))


def _render_frame(
    photo_lin: np.ndarray, face: list[float] | None, body: Body, frame: Frame, rng: np.random.Generator, spec: Spec = FULL
) -> np.ndarray:
    """The frame's raw CFA (uint16, sensor orientation); fills in the frame's blur truth."""
    portrait = frame.orientation in (6, 8)
    viewed, (x0, y0, cw, ch), flipped = _viewed_scene(photo_lin, rng, portrait, spec)
    miss = frame.focus_miss
    if miss == "back_focus" and face is not None:
        # A face cropped away falls back to defocus.
        frame.subject = face_in_view(face, photo_lin.shape, (x0, y0, cw, ch), flipped)
        if frame.subject is None:
            miss = frame.focus_miss = "defocus"
    elif miss == "back_focus":
        miss = frame.focus_miss = "defocus"
    if miss == "defocus":
        # Blurs stay in photosites whatever the sensor's size: the detector judges blur in the
        # proxy's pixels, and half-size decoding halves these on any sensor.
        frame.blur_px = float(rng.uniform(*DEFOCUS_RADIUS))
        viewed = defocused(viewed, frame.blur_px)
    elif miss == "shake":
        frame.blur_px = float(rng.uniform(14.0, 28.0))
        viewed = cv2.filter2D(viewed, -1, _line_kernel(frame.blur_px, float(rng.uniform(0, 180))), borderType=cv2.BORDER_REFLECT)
    elif miss == "back_focus":
        frame.blur_px = float(rng.uniform(*BACK_FOCUS_RADIUS))
        viewed = back_focused(viewed, frame.subject, frame.blur_px)  # type: ignore[arg-type]
    scene = _to_sensor(viewed, frame.orientation)
    signal = _exposed(scene, frame.iso, rng, spec,
                      _dust_map(body.dust, frame.f_number, spec) if body.dust else None)
    for p in body.photosites:
        if p.kind == "hot":
            if rng.random() < 0.85:
                signal[p.row, p.col] = rng.uniform(0.85, 1.0)
            else:
                signal[p.row, p.col] += rng.uniform(0.10, 0.30)
        elif p.kind == "dead":
            signal[p.row, p.col] = 0.0
        else:
            signal[p.row, p.col] = p.level
    return _digitised(signal, rng, spec)


#: The pipeline a corpus's tests run it through: the analysis with the equipment checks and the plan,
#: no render (a graph file for ``RunSettings.graph_path``).
ANALYSIS_GRAPH = """\
schema_version: 1
name: analysis
stages:
  - stage: decode_raw
  - stage: measure_exposure
  - stage: detect_faces
  - stage: inspect_equipment
  - stage: write_preview
  - stage: plan_retouch
"""

def _exposed(scene: np.ndarray, iso: float, rng: np.random.Generator, spec: Spec,
             dust: np.ndarray | None = None) -> np.ndarray:
    """The sensor's signal (0-1 of full well, noisy) for a linear scene in sensor orientation.

    The camera's white balance as filter gains over the RGGB mosaic, the dust
    shadows (``dust``: light reaching each photosite) when the body has any,
    then photon and read noise at ``iso``.
    """
    gains = np.asarray(WHITE_BALANCE) / min(WHITE_BALANCE)
    cfa_gain = np.tile(gains[[0, 1, 1, 2]].reshape(2, 2), (spec.height // 2, spec.width // 2)).astype(np.float32)
    signal = mosaic(scene.astype(np.float32), "RGGB") / cfa_gain
    if dust is not None:
        signal *= dust
    signal = np.clip(signal, 0.0, 1.0)
    electrons_at_white = FULL_WELL_E * 100.0 / iso
    sigma = np.sqrt(signal * electrons_at_white + READ_NOISE_E**2) / electrons_at_white
    return signal + rng.standard_normal(signal.shape, dtype=np.float32) * sigma.astype(np.float32)


def _digitised(signal: np.ndarray, rng: np.random.Generator, spec: Spec) -> np.ndarray:
    """The raw file's data: ``signal`` with the frame's cosmic-ray hits, quantised between black and white."""
    for _ in range(spec.cosmic):
        signal[int(rng.integers(0, spec.height)), int(rng.integers(0, spec.width))] = rng.uniform(0.3, 1.0)
    return np.rint(BLACK + np.clip(signal, 0.0, 1.0) * (WHITE - BLACK)).astype(np.uint16)


def _write_frame(path: Path, cfa: np.ndarray, *, make: str, model: str, orientation: int, captured_at: datetime,
                 iso: float, exposure_time: float, f_number: float, focal_length: float, artist: str,
                 body_serial: str, lens_model: str) -> None:
    """One frame as the body's DNG: the corpus's sensor levels, colour matrix and as-shot white balance."""
    neutral = 1.0 / (np.asarray(WHITE_BALANCE) / min(WHITE_BALANCE))
    write_dng(path, cfa, pattern="RGGB", black_level=BLACK, white_level=WHITE, color_matrix1=XYZ_TO_SRGB,
              as_shot_neutral=(neutral / neutral[1]).tolist(), make=make, model=model, orientation=orientation,
              captured_at=captured_at, iso=iso, exposure_time=exposure_time, f_number=f_number,
              focal_length=focal_length, artist=artist, body_serial=body_serial, lens_model=lens_model)


def _digest(photos: list[Path], spec: Spec, extra: str = "") -> str:
    h = hashlib.sha256(f"v{CORPUS_VERSION} {spec}".encode())
    if extra:  # what only one split has (the held-out splits' digests do not change with it)
        h.update(extra.encode())
    for p in photos:
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _built(folder: Path, digest: str) -> bool:
    """Whether ``folder`` holds a corpus built from ``digest`` (its truth.json says so); if not, it is
    emptied and made again for a fresh build."""
    try:
        if json.loads((folder / "truth.json").read_text())["digest"] == digest:
            return True
    except (OSError, ValueError, KeyError):
        pass
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return False


def build_split(data: Path, dest: Path, split: str, log=print, spec: Spec = FULL) -> Path:  # noqa: ANN001
    """Write (or reuse) one split: ``dest/<split>/<serial>/*.dng`` and ``dest/<split>/truth.json``.

    Returns
    -------
    Path
        ``dest/<split>``.

    Raises
    ------
    FileNotFoundError
        If the shared photos are missing.
    """
    photos = split_sources(data)[split]
    folder = dest / split
    truth_path = folder / "truth.json"
    tripod = split in TUNING_SPLITS and bool(spec.extra_tuning_misses)
    digest = _digest(photos, spec, f"tripod {TRIPOD_FRAMES} {TRIPOD_MISSES}" if tripod else "")
    if _built(folder, digest):
        return folder
    rng = np.random.default_rng(SPLIT_SEEDS[split])
    log(f"  building the {split} split from {len(photos)} photos in {folder} ...")
    linear, faces = {}, {}
    for p in photos:
        with Image.open(p) as im:
            srgb8 = np.asarray(im.convert("RGB"))
        linear[p.name] = srgb_to_linear(srgb8.astype(np.float32) / 255.0)
        faces[p.name] = _largest_face(srgb8)
    tag = _SERIAL_TAGS[split]
    bodies = [
        _make_body(f"PP{tag}-0001-DUSTY", "Ana Lima", rng, defects=True, spec=spec),
        _make_body(f"PP{tag}-0002-CLEAN", "Ben Ode", rng, defects=False, spec=spec),
    ]
    # (body, its random stream, its focus misses, minutes after the first body's frames, frames, tripod)
    plan = [(bodies[0], rng, spec.misses, 0, spec.frames, False), (bodies[1], rng, spec.misses, 3, spec.frames, False)]
    if split in TUNING_SPLITS and spec.extra_tuning_misses:
        # Its own stream, so the first two bodies are the same with or without it.
        extra_rng = np.random.default_rng(SPLIT_SEEDS[split] + 7919)
        bodies.append(_make_body(f"PP{tag}-0003-DUSTY", "Cleo Park", extra_rng, defects=True, spec=spec))
        plan.append((bodies[2], extra_rng, spec.extra_tuning_misses, 5, spec.frames, False))
    if tripod:
        tripod_rng = np.random.default_rng(SPLIT_SEEDS[split] + 104729)  # its own stream too
        bodies.append(_make_body(f"PP{tag}-0004-CLEAN", "Dan Reis", tripod_rng, defects=False, spec=spec))
        plan.append((bodies[3], tripod_rng, TRIPOD_MISSES, 6, TRIPOD_FRAMES, True))
    start = _STARTS[split]
    names = list(linear)
    for body, rng, body_misses, minutes, n_frames, on_tripod in plan:
        out = folder / body.serial
        out.mkdir()
        misses = list(body_misses) + [None] * (n_frames - len(body_misses))
        rng.shuffle(misses)
        for i, miss in enumerate(misses):
            name = names[int(rng.integers(0, len(names)))] if i >= len(names) else names[i]
            if miss == "back_focus" and faces[name] is None:
                with_face = [n for n in names if faces[n] is not None]
                if with_face:
                    name = with_face[int(rng.integers(0, len(with_face)))]
            orientation = int(rng.choice([6, 8])) if rng.random() < 0.25 else 1
            frame = Frame(
                file=f"{body.serial}/IMG_{i + 1:04d}.dng",
                source=name,
                orientation=orientation,
                focus_miss=miss,
                focus_scored=miss is not None or name not in SOFT_ORIGINALS,
                **_frame_settings(rng, miss, on_tripod),
            )
            cfa = _render_frame(linear[name], faces[name], body, frame, rng, spec)
            _write_frame(folder / frame.file, cfa, make=body.make, model=body.model, orientation=frame.orientation,
                         captured_at=start + timedelta(minutes=7 * i + minutes), iso=frame.iso,
                         exposure_time=frame.exposure_time, f_number=frame.f_number,
                         focal_length=frame.focal_length, artist=body.artist, body_serial=body.serial,
                         lens_model=body.lens)
            body.frames.append(frame)
    truth = {
        "digest": digest,
        "split": split,
        "sensor": {"width": spec.width, "height": spec.height},
        "sources": [p.name for p in photos],
        "bodies": [asdict(b) for b in bodies],
    }
    truth_path.write_text(json.dumps(truth, indent=1))
    return folder


def build_corpus(data: Path, dest: Path, log=print, splits: tuple[str, ...] = SPLITS) -> dict[str, Path]:  # noqa: ANN001
    """The ``splits`` (default: every split), built or reused: ``{split: Path}``.

    Raises
    ------
    KeyError
        If a split is not one of :data:`SPLITS`.
    """
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise KeyError(f"unknown split(s) {unknown}: choose from {SPLITS}")
    return {split: build_split(data, dest, split, log) for split in splits}


if __name__ == "__main__":
    import argparse
    import os
    import time

    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("POSTPROD_TESTDATA", "../shared/data")))
    ap.add_argument("--dest", type=Path, default=Path("/tmp/postprod-equipment-corpus"))
    ap.add_argument("--split", choices=SPLITS, action="append", help="only these splits (default: all)")
    args = ap.parse_args()
    t = time.perf_counter()
    print(build_corpus(args.data, args.dest, splits=tuple(args.split or SPLITS)))
    print(f"{time.perf_counter() - t:.1f} s")


# --- lens bodies: decentring and vignetting -------------------------------------------------------------
#: Lens series per split, kept in their own folder (``<split>-lens``) with their own truth and random
#: streams, so the dust, photosite and focus bodies (and their figures) do not change with them.
LENS_CORPUS_VERSION = 2
LENS_FRAMES = 16
#: (serial suffix, defect) of the lens bodies of every split.
LENS_BODIES = (("0011-SOFTSIDE", "decentring"), ("0012-SOFTSIDE", "decentring"),
               ("0013-DARKCORNERS", "vignetting"), ("0014-DARKCORNERS", "vignetting"))
#: Decentring: Gaussian blur (sigma, photosites) reached at the soft edge, growing linearly from none
#: at the frame's middle line: 2.5-4 px of the half-size proxy at the edge, a lens plainly soft on one side
#: at 100 % (corpus v1 had 2-3.5 photosites: not found on tuning, see EQUIPMENT.md).
DECENTRING_EDGE_SIGMA = (5.0, 8.0)
#: Vignetting: extra falloff at the corners (EV), cos^4-shaped.
VIGNETTING_CORNER_EV = (0.8, 1.2)
#: The scene's rows/cols of blur levels blended across the soft half.
_BLUR_LEVELS = 5


def decentring_blur(scene: np.ndarray, side: str, edge_sigma: float) -> np.ndarray:
    """The sensor-frame scene blurred more and more toward ``side`` (none at the middle line).

    A Gaussian of sigma ``edge_sigma * t`` where ``t`` runs from 0 at the
    middle to 1 at that edge, made by blending a few blurred copies.
    """
    h, w = scene.shape[:2]
    if side in ("left", "right"):
        t = np.linspace(-1.0, 1.0, w, dtype=np.float32)
        t = np.clip(t if side == "right" else -t, 0.0, 1.0)[None, :]
    else:
        t = np.linspace(-1.0, 1.0, h, dtype=np.float32)
        t = np.clip(t if side == "bottom" else -t, 0.0, 1.0)[:, None]
    levels = np.linspace(0.0, 1.0, _BLUR_LEVELS)
    copies = [scene] + [cv2.GaussianBlur(scene, (0, 0), float(edge_sigma * s), borderType=cv2.BORDER_REFLECT)
                        for s in levels[1:]]
    pos = t * (_BLUR_LEVELS - 1)
    out = np.zeros_like(scene)
    for i, c in enumerate(copies):
        wgt = np.clip(1.0 - np.abs(pos - i), 0.0, 1.0)[..., None]
        out += c * wgt
    return out


def vignetting_gain(width: int, height: int, corner_ev: float) -> np.ndarray:
    """Light reaching each photosite under a cos^4 falloff that takes ``corner_ev`` at the corners."""
    # cos^4(theta) with tan(theta) = k r (r 1 at the corners) is 1 / (1 + k^2 r^2)^2; k from the corner's value.
    k2 = 2.0 ** (corner_ev / 2.0) - 1.0
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    u, v = (xx + 0.5) / width * 2 - 1, (yy + 0.5) / height * 2 - 1
    aspect = width / height
    r2 = (u * u * aspect * aspect + v * v) / (aspect * aspect + 1)
    return (1.0 / (1.0 + k2 * r2) ** 2).astype(np.float32)


def build_lens_split(data: Path, dest: Path, split: str, log=print, spec: Spec = FULL,
                     frames: int = LENS_FRAMES) -> Path:  # noqa: ANN001
    """Write (or reuse) one split's lens bodies: ``dest/<split>-lens/<serial>/*.dng`` and its ``truth.json``.

    Two bodies whose lens is soft on one side (a random side each) and two
    whose lens vignettes beyond any norm, :data:`LENS_FRAMES` frames each, from
    the split's photos as the other bodies are (random crops, a quarter in
    portrait); noise and cosmic hits as ever, no dust, no defective
    photosites, no focus misses. The bodies without lens defects of
    :func:`build_split` are the negatives (and each kind's bodies are
    negatives for the other kind).

    Raises
    ------
    FileNotFoundError
        If the shared photos are missing.
    """
    photos = split_sources(data)[split]
    folder = dest / f"{split}-lens"
    truth_path = folder / "truth.json"
    h = hashlib.sha256(f"lens v{LENS_CORPUS_VERSION} {spec} {frames} {LENS_BODIES} {DECENTRING_EDGE_SIGMA} "
                       f"{VIGNETTING_CORNER_EV}".encode())
    h.update(_digest(photos, spec).encode())
    digest = h.hexdigest()
    if _built(folder, digest):
        return folder
    rng = np.random.default_rng(SPLIT_SEEDS[split] + 50021)
    log(f"  building the {split} lens bodies from {len(photos)} photos in {folder} ...")
    linear = {}
    for p in photos:
        with Image.open(p) as im:
            linear[p.name] = srgb_to_linear(np.asarray(im.convert("RGB")).astype(np.float32) / 255.0)
    names = list(linear)
    tag = _SERIAL_TAGS[split]
    start = _STARTS[split] + timedelta(hours=3)
    bodies = []
    for b, (suffix, defect) in enumerate(LENS_BODIES):
        serial = f"PP{tag}-{suffix}"
        lens = {"serial": serial, "defect": defect, "side": None, "edge_sigma": 0.0, "corner_ev": 0.0, "frames": []}
        if defect == "decentring":
            lens["side"] = str(rng.choice(["left", "right", "top", "bottom"]))
            # In photosites whatever the sensor size, as the focus misses: the check reads detail in proxy pixels.
            lens["edge_sigma"] = float(rng.uniform(*DECENTRING_EDGE_SIGMA))
        else:
            lens["corner_ev"] = float(rng.uniform(*VIGNETTING_CORNER_EV))
        gain = vignetting_gain(spec.width, spec.height, lens["corner_ev"]) if defect == "vignetting" else None
        (folder / serial).mkdir()
        order = list(rng.permutation(len(names)))
        for i in range(frames):
            name = names[order[i % len(order)]]
            orientation = int(rng.choice([6, 8])) if rng.random() < 0.25 else 1
            settings = _frame_settings(rng, None)
            portrait = orientation in (6, 8)
            viewed, _, _ = _viewed_scene(linear[name], rng, portrait, spec)
            scene = _to_sensor(viewed, orientation)
            if defect == "decentring":
                scene = decentring_blur(scene, lens["side"], lens["edge_sigma"])
            else:
                scene = scene * gain[..., None]
            cfa = _digitised(_exposed(scene, settings["iso"], rng, spec), rng, spec)
            file = f"{serial}/IMG_{i + 1:04d}.dng"
            _write_frame(folder / file, cfa, make="postprod", model="Bench 6MP", orientation=orientation,
                         captured_at=start + timedelta(minutes=7 * i + b), iso=settings["iso"],
                         exposure_time=settings["exposure_time"], f_number=settings["f_number"],
                         focal_length=settings["focal_length"], artist="Eva Lens", body_serial=serial,
                         lens_model="postprod 24-105mm f/4")
            lens["frames"].append({"file": file, "source": name, "orientation": orientation, **settings})
        bodies.append(lens)
    truth_path.write_text(json.dumps({"digest": digest, "split": split, "sensor": {"width": spec.width,
                                      "height": spec.height}, "bodies": bodies}, indent=1))
    return folder
