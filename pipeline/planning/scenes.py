"""Scenes: the frames of a shoot taken in one place under one light.

A shoot is delivered as a set, and frames of one scene must look alike. This
module finds the scenes from what planning already has, never the pixels:

- the capture time: a gap longer than ``consistency.max_gap_s`` between two
  consecutive frames of the shoot ends every scene (a break, another room);
- the light level each frame saw: its metered exposure less the exposure the
  camera gave it (shutter, aperture, ISO), so a bracket of one room reads the
  same and the room next door, shot at the same settings, does not;
- the colour of the light: each frame's measured cast adapted back to its As
  Shot white balance (:func:`pipeline.imaging.scene_light.scene_light`), so
  frames the camera balanced differently under one light still agree;
- what the frames show: views of one place share keypoints that one homography
  maps onto each other (:mod:`pipeline.planning.views`), however differently
  they meter and whatever colours they frame, and two places shot at the same
  settings under the same light share none.

Within a run of frames without such a gap, the views that keypoints link
(directly or through other views of the place, and under one light measured
on the surfaces they share) are one place. The frames the keypoints cannot
compare (a blank wall, a frame out of focus, frames without an evidence file)
are clustered by average linkage on the distance of their light level, light
colour and palette, each counted in its own tolerance (how much two views of
one place differ: a view of a white wall meters brighter than one of a dark
bar); clusters closer than :data:`MAX_SCENE_DISTANCE` are one scene. A frame
still alone, and a frame the keypoints compared and linked to no view (a
close-up of one corner), joins the scene of its run shot at its settings when
it is clearly the nearest (:func:`attach_strays`), else stays alone. Two places
the keypoints told apart are never merged by their light: nothing but the
light says they are one.

The tolerances and the cut were chosen on the tuning shoots of
``benchmarks/consistency.py`` and are checked on held-out ones there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from pipeline.imaging.measure.content import PALETTE_CHROMA_BINS, PALETTE_LEVELS, palette_distance
from pipeline.imaging.measure.keypoints import Keypoints
from pipeline.imaging.scene_light import as_shot_xy, exposure_settings_ev, scene_light, xy_to_lab50, xy_to_rgb
from pipeline.kernel.records import ImageRecord, SourceKind, Status
from pipeline.planning.views import ViewFrame, ViewLinks, link_views, other_light_pairs

#: The longest run of frames grouped at once. The grouping compares every pair of a run (average
#: linkage on an n x n matrix: 0.8 GB a matrix for 10,000 frames); a scene is shot in minutes,
#: so a longer run without a break is cut at its longest gap (``time_runs``).
MAX_RUN_FRAMES = 500
#: How far apart, in EV, the light levels of two views of one place typically read: a view of
#: the bright window and one of the dark corner of one room differ by about a stop.
LEVEL_TOLERANCE_EV = 1.0
#: How far apart the light's colour of two frames of one place typically reads, in CIE Lab
#: chroma at L* = 50: the grey-world estimate moves with what a view shows (about 10 for a
#: frame full of one colour).
LIGHT_TOLERANCE_LAB = 10.0
#: How far apart the palettes of two views of one place typically are (Hellinger distance of their
#: colour histograms, :func:`pipeline.imaging.measure.palette_distance`).
PALETTE_TOLERANCE = 0.15
#: Average distance, in tolerances, under which two groups of frames are one scene. Chosen on the
#: tuning shoots: a higher cut lets the close-ups join their scenes (shoots with a scene per light)
#: and chains places shot alike into one (four places, one ISO, aperture and shutter); mean ARI
#: over six tuning shoots 0.88 at 2.0, 0.93 at 2.5, 0.88 at 3.0 (and falling: 0.48 for one shoot).
MAX_SCENE_DISTANCE = 2.5
#: What a measurement one of two frames lacks counts for: one tolerance (neither the same nor different).
MISSING_DISTANCE = 1.0
#: A frame alone in its light joins the one scene of its run shot at its ISO and aperture with a shutter
#: time at most this many stops away (a close-up whose content pulled the meter, in a bracket).
ATTACH_SHUTTER_STOPS = 2.0
#: Two settings are the same within this many stops (EXIF rounds: f/5.6 is 2**2.5 = 5.66).
SAME_SETTING_STOPS = 1 / 6
#: With several scenes of its run shot at its settings, a stray joins the nearest only when it is clearly
#: the nearest: its mean distance at most this share of the next one's (on the tuning shoots every stray
#: attached under 0.85 went to its own scene, and those above were coin flips: 0.91 to 0.98).
ATTACH_MARGIN = 0.85
#: What a pair of frames that show one place under another light counts for: never one scene.
OTHER_LIGHT_DISTANCE = 1e3


class Reference:
    """Which frames' light colours can be compared: RAWs through their As Shot white, rendered files as rendered.

    A RAW whose As Shot white is unknown was rendered with LibRaw's camera
    multipliers and compares only with others like it.
    """

    RAW = "raw"
    RAW_WITHOUT_WHITE = "raw without as-shot white"
    RENDERED = "rendered"


@dataclass(frozen=True)
class FrameLight:
    """What grouping and matching read of one frame.

    Attributes
    ----------
    captured_at : datetime or None
    settings_ev : float or None
        :func:`~pipeline.imaging.scene_light.exposure_settings_ev` of its shutter, aperture and ISO.
    light_level_ev : float or None
        The metered exposure less ``settings_ev``: the light the frame saw, in stops.
    light_xy : (float, float) or None
        Chromaticity of the light (its cast adapted back to its As Shot white).
    as_shot_xy : (float, float) or None
        Its As Shot white (None for a rendered file, whose reference is its rendering).
    reference : str
        :class:`Reference`: only frames of one reference compare light colours.
    """

    captured_at: datetime | None
    settings_ev: float | None
    light_level_ev: float | None
    light_xy: tuple[float, float] | None
    as_shot_xy: tuple[float, float] | None
    reference: str
    iso: float | None = None
    aperture: float | None = None
    shutter_s: float | None = None
    palette: str | None = None

    @property
    def light_lab(self) -> tuple[float, float] | None:
        return None if self.light_xy is None else xy_to_lab50(self.light_xy)

    def view_frame(self) -> ViewFrame:
        """What :mod:`pipeline.planning.views` reads of it: settings, the white its proxy was rendered at."""
        white = (1.0, 1.0, 1.0) if self.as_shot_xy is None else tuple(float(v) for v in xy_to_rgb(self.as_shot_xy))
        return ViewFrame(self.settings_ev, white, self.reference)


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def frame_light(record: ImageRecord) -> FrameLight:
    """The light and settings of one analysed frame, from its record (no pixels)."""
    cam = record.camera
    settings = exposure_settings_ev(cam.shutter_s, cam.aperture, cam.iso)
    metered = _finite(record.exposure.meter_ev)
    level = metered - settings if metered is not None and settings is not None else None
    white = None
    if record.source_kind is SourceKind.RAW:
        white = as_shot_xy(record.camera_raw.as_shot_temperature_k, record.camera_raw.as_shot_tint)
    if white is not None:
        reference = Reference.RAW
    else:
        reference = Reference.RAW_WITHOUT_WHITE if record.source_kind is SourceKind.RAW else Reference.RENDERED
    a, b = _finite(record.colour.cast_a), _finite(record.colour.cast_b)
    light = scene_light(a, b, white) if a is not None and b is not None else None
    return FrameLight(cam.captured_at, settings, level, light, white, reference, cam.iso, cam.aperture, cam.shutter_s,
                      record.content.palette)


def frame_distance(p: FrameLight, q: FrameLight) -> float:
    """How different the light and content of two frames are, in tolerances (0: the same; 3 and more: two scenes).

    The Euclidean combination of the light-level difference over
    :data:`LEVEL_TOLERANCE_EV`, the light-colour difference over
    :data:`LIGHT_TOLERANCE_LAB` and the palette distance over
    :data:`PALETTE_TOLERANCE`; a term one of the frames lacks (no exposure
    settings, no neutrals to read a cast from, light colours of different
    references, no palette) counts :data:`MISSING_DISTANCE`.
    """
    if p.light_level_ev is not None and q.light_level_ev is not None:
        level = abs(p.light_level_ev - q.light_level_ev) / LEVEL_TOLERANCE_EV
    else:
        level = MISSING_DISTANCE
    lp, lq = p.light_lab, q.light_lab
    if lp is not None and lq is not None and p.reference == q.reference:
        colour = math.hypot(lp[0] - lq[0], lp[1] - lq[1]) / LIGHT_TOLERANCE_LAB
    else:
        colour = MISSING_DISTANCE
    if p.palette is not None and q.palette is not None:
        content = palette_distance(p.palette, q.palette) / PALETTE_TOLERANCE
    else:
        content = MISSING_DISTANCE
    return math.sqrt(level**2 + colour**2 + content**2)


def _stops(a: float | None, b: float | None) -> float:
    if a is None or b is None or not (a > 0 and b > 0):
        return math.inf
    return abs(math.log2(a / b))


def same_setup(p: FrameLight, q: FrameLight) -> bool:
    """Shot at one ISO and aperture, the shutter times within :data:`ATTACH_SHUTTER_STOPS` (a bracket)."""
    return (_stops(p.iso, q.iso) <= SAME_SETTING_STOPS and _stops(p.aperture, q.aperture) <= SAME_SETTING_STOPS
            and _stops(p.shutter_s, q.shutter_s) <= ATTACH_SHUTTER_STOPS)


def attach_strays(lights: Sequence[FrameLight], labels: list[int], dist: np.ndarray | None = None) -> list[int]:
    """Give each frame that is alone in its light to the scene of its run shot with its settings.

    A close-up of a white plate reads far brighter than the rest of its table
    and a frame full of one colour reads another light, so the clustering leaves
    it alone; the camera's settings did not change, and a frame shot at the ISO
    and aperture of one scene of its run (its shutter within a bracket)
    belongs to that scene. With two such scenes (two rooms shot alike) it joins
    the nearest when that one is clearly nearer (:data:`ATTACH_MARGIN`), else
    it stays alone: nothing says which.
    """
    dist = distance_matrix(lights) if dist is None else dist
    sizes: dict[int, int] = {}
    for label in labels:
        sizes[label] = sizes.get(label, 0) + 1
    out = list(labels)
    for i, label in enumerate(labels):
        if sizes[label] > 1:
            continue
        candidates: dict[int, list[int]] = {}
        for j, other in enumerate(labels):
            if sizes[other] > 1 and same_setup(lights[i], lights[j]):
                candidates.setdefault(other, [])
        for j, other in enumerate(labels):
            if other in candidates:
                candidates[other].append(j)
        if not candidates:
            continue
        ranked = sorted((float(np.mean(dist[i, members])), other) for other, members in candidates.items())
        if len(ranked) == 1 or ranked[0][0] <= ATTACH_MARGIN * ranked[1][0]:
            out[i] = ranked[0][1]
    return out


def time_runs(times: Sequence[datetime | None], max_gap_s: float,
              max_frames: int = MAX_RUN_FRAMES) -> list[list[int]]:
    """Indices split into runs without a gap longer than ``max_gap_s``, in capture order.

    Frames without a capture time form runs of their own, last, in shoot
    order. A run longer than ``max_frames`` is cut at its longest gap between
    half of ``max_frames`` and ``max_frames`` frames in (the latest of equal
    gaps; undated frames every ``max_frames``), so the driver's pairwise
    distances stay bounded whatever the shoot's size.
    """
    dated = sorted((t, i) for i, t in enumerate(times) if t is not None)
    runs: list[list[tuple[datetime, int]]] = []
    last: datetime | None = None
    for t, i in dated:
        if last is None or (t - last).total_seconds() > max_gap_s:
            runs.append([])
        runs[-1].append((t, i))
        last = t
    out: list[list[int]] = []
    for run in runs:
        while len(run) > max_frames:
            # Cut after position k, where the gap to the next frame is the longest of the window.
            window = range(max_frames // 2, max_frames + 1)
            k = max(window, key=lambda j: ((run[j][0] - run[j - 1][0]).total_seconds(), j))
            out.append([i for _, i in run[:k]])
            run = run[k:]
        out.append([i for _, i in run])
    undated = [i for i, t in enumerate(times) if t is None]
    out += [undated[k:k + max_frames] for k in range(0, len(undated), max_frames)]
    return out


def _term(values: np.ndarray, known: np.ndarray, tolerance: float) -> np.ndarray:
    """Pairwise |difference| / tolerance of one measurement, :data:`MISSING_DISTANCE` where a frame lacks it."""
    diff = np.subtract.outer(values, values)
    np.abs(diff, out=diff)
    diff /= tolerance
    np.putmask(diff, ~np.logical_and.outer(known, known), MISSING_DISTANCE)
    return diff


def distance_matrix(lights: Sequence[FrameLight]) -> np.ndarray:
    """:func:`frame_distance` of every pair of frames at once (a few seconds for thousands of frames).

    The n x n terms are worked out in place, a few matrices at a time (2 MB each for a run of
    :data:`MAX_RUN_FRAMES`): a new matrix for every step of the arithmetic held a dozen at once,
    the driver's peak while it grouped a run, and what that peak left in its heap stayed for the
    rest of the run (RESULTS.md, target 5). The arithmetic is the same, step for step.

    Returns
    -------
    ndarray, (n, n)
        Symmetric, zero on the diagonal.
    """
    level = np.array([f.light_level_ev if f.light_level_ev is not None else 0.0 for f in lights])
    has_level = np.array([f.light_level_ev is not None for f in lights])
    labs = [f.light_lab for f in lights]
    lab = np.array([v if v is not None else (0.0, 0.0) for v in labs]).reshape(-1, 2)
    refs = np.array([f.reference for f in lights])
    has_lab = np.array([v is not None for v in labs])
    colour = np.subtract.outer(lab[:, 0], lab[:, 0])
    along_b = np.subtract.outer(lab[:, 1], lab[:, 1])
    np.hypot(colour, along_b, out=colour)
    del along_b
    colour /= LIGHT_TOLERANCE_LAB
    comparable = np.logical_and.outer(has_lab, has_lab)
    comparable &= refs[:, None] == refs[None, :]
    np.putmask(colour, ~comparable, MISSING_DISTANCE)
    del comparable
    palettes = [f.palette for f in lights]
    bins = PALETTE_CHROMA_BINS**2
    has_palette = np.array([p is not None and len(p) == bins for p in palettes])
    digits = np.array([[int(c, 16) for c in p] if ok else [0] * bins for p, ok in zip(palettes, has_palette)],
                      dtype=np.float64).reshape(-1, bins) / PALETTE_LEVELS
    sq = (digits**2).sum(axis=1)
    # Hellinger distance: sqrt(max(|a|^2 + |b|^2 - 2 a.b, 0) / 2).
    content = np.add.outer(sq, sq)
    # (2 digits) @ digits.T as before, bit for bit: digits @ digits.T takes BLAS's syrk, which rounds otherwise.
    dot = 2.0 * digits @ digits.T
    content -= dot
    del dot
    np.maximum(content, 0.0, out=content)
    content /= 2.0
    np.sqrt(content, out=content)
    content /= PALETTE_TOLERANCE
    np.putmask(content, ~np.logical_and.outer(has_palette, has_palette), MISSING_DISTANCE)
    dist = _term(level, has_level, LEVEL_TOLERANCE_EV)
    np.square(dist, out=dist)
    np.square(colour, out=colour)
    dist += colour
    del colour
    np.square(content, out=content)
    dist += content
    del content
    np.sqrt(dist, out=dist)
    np.fill_diagonal(dist, 0.0)
    return dist


def cluster(lights: Sequence[FrameLight], max_distance: float = MAX_SCENE_DISTANCE,
            dist: np.ndarray | None = None) -> list[int]:
    """Average-linkage clusters of frames whose mean distance stays under ``max_distance``.

    ``dist``: their :func:`distance_matrix`, when already made. Returns a cluster
    label per frame (0, 1, ...), numbered in the order of each cluster's first frame.
    """
    n = len(lights)
    if n == 1:
        return [0]
    # Imported here: scipy.cluster takes 0.4-0.7 s to import (most of the stages' own import time), and
    # a shoot whose frames the keypoints compare, or a run of one frame, never clusters by light.
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    dist = distance_matrix(lights) if dist is None else dist
    labels = fcluster(linkage(squareform(dist, checks=False), method="average"),
                      t=max_distance, criterion="distance")
    first: dict[int, int] = {}
    for label in labels:
        first.setdefault(int(label), len(first))
    return [first[int(label)] for label in labels]


def scene_labels(lights: Sequence[FrameLight], views: ViewLinks | None = None,
                 max_distance: float = MAX_SCENE_DISTANCE) -> list[int]:
    """The scenes of one run of frames: the places keypoints link, the rest by their light (see the module).

    Parameters
    ----------
    lights : sequence of FrameLight
        The run's frames.
    views : ViewLinks, optional
        :func:`pipeline.planning.views.link_views` of the same frames; without
        it every frame is grouped by its light and palette alone.
    max_distance : float
        The clustering cut, in tolerances (:func:`frame_distance`).

    Returns
    -------
    list of int
        A label per frame (equal labels: one scene).
    """
    n = len(lights)
    dist = distance_matrix(lights)
    group = views.group if views is not None else list(range(n))
    sizes: dict[int, int] = {}
    for g in group:
        sizes[g] = sizes.get(g, 0) + 1
    labels = [g if sizes[g] > 1 else -1 for g in group]
    # Frames the keypoints could not compare (a blank wall, no evidence file) are grouped by their light.
    # A frame they compared and linked to nothing (a close-up of one corner) is not: the light of two such
    # frames says little (two close-ups of two daylight places read alike), so each is a stray.
    matchable = views.matchable if views is not None else [False] * n
    unknown = [k for k in range(n) if labels[k] < 0 and not matchable[k]]
    if unknown:
        sub = cluster([lights[k] for k in unknown], max_distance, dist[np.ix_(unknown, unknown)])
        for k, label in zip(unknown, sub):
            labels[k] = n + label
    for k in range(n):
        if labels[k] < 0:
            labels[k] = 2 * n + k
    if views is not None:
        for a, b in other_light_pairs(views):
            dist[a, b] = OTHER_LIGHT_DISTANCE
    return attach_strays(lights, labels, dist)


def group_scenes(records: Sequence[ImageRecord], max_gap_s: float,
                 max_distance: float = MAX_SCENE_DISTANCE,
                 keypoints: Mapping[int, Keypoints] | None = None) -> list[int | None]:
    """The scene of every record: 1, 2, ... in the order of each scene's first frame; None for failed ones.

    Parameters
    ----------
    records : sequence of ImageRecord
        The shoot; only analysed records (``status == ok``) get a scene.
    max_gap_s : float
        A longer gap between consecutive frames starts new scenes.
    max_distance : float
        The clustering cut, in tolerances (:func:`frame_distance`).
    keypoints : mapping of int to Keypoints, optional
        The frames' keypoints by record index (``find_keypoints``' evidence);
        a frame without them is grouped by its light and palette alone. Read
        with ``get`` one run at a time, so a mapping that reads each frame's
        file when asked (:class:`~pipeline.imaging.measure.keypoints.KeypointFiles`)
        keeps no more than a run's keypoints in memory.

    Raises
    ------
    ValueError
        If ``max_gap_s`` or ``max_distance`` is negative.
    """
    if max_gap_s < 0 or max_distance < 0:
        raise ValueError(f"max_gap_s and max_distance must be >= 0, got {max_gap_s} and {max_distance}")
    analysed = [i for i, r in enumerate(records) if r.status is Status.OK]
    keypoints = keypoints or {}
    scenes: list[int | None] = [None] * len(records)
    found: list[list[int]] = []
    # One run at a time: its lights and keypoints (about 30 KB a frame) are read for its grouping and
    # dropped after it, so the grouping holds at most one run's (MAX_RUN_FRAMES), whatever the shoot's size.
    for run in time_runs([records[i].camera.captured_at for i in analysed], max_gap_s):
        members = [analysed[k] for k in run]
        run_lights = [frame_light(records[i]) for i in members]
        run_keypoints = [keypoints.get(i) for i in members]
        views = None
        if any(k is not None for k in run_keypoints):
            views = link_views(run_keypoints, [f.view_frame() for f in run_lights])
        del run_keypoints
        groups: dict[int, list[int]] = {}
        for i, label in zip(members, scene_labels(run_lights, views, max_distance)):
            groups.setdefault(label, []).append(i)
        found += groups.values()
        del run_lights, views
    # Number scenes by their first frame in capture order (then shoot order for undated frames).
    def first_key(group: list[int]) -> tuple:
        dated = [records[i].camera.captured_at for i in group if records[i].camera.captured_at is not None]
        return (0, min(dated), min(group)) if dated else (1, datetime.min, min(group))

    for number, group in enumerate(sorted(found, key=first_key), start=1):
        for i in group:
            scenes[i] = number
    return scenes
