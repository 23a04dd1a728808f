"""Views of one place: which frames show the same place, and what the light did between them.

Two frames show one place when enough of their keypoints
(:mod:`pipeline.imaging.measure.keypoints`) match and one homography explains
the matches (the plane of a table, a wall, a facade, or a whole view when the
photographer turned or zoomed without moving): each keypoint's nearest
descriptor in the other frame, kept when it is clearly nearer than the second
(Lowe's ratio test) and when the other keypoint's nearest is it (a mutual
match), then a RANSAC homography. Two unrelated photographs leave a handful of
inliers (at most 7 in 20,000 pairs of the tuning shoots, ``benchmarks/consistency.py``);
:data:`MIN_INLIERS` is the least that links two views.

On the keypoints two linked views share, the ratio of their colours is what
the light and the camera did between them (:func:`light_between`): with the
exposure settings and the As Shot whites taken off, what is left is a change of
the light itself (a lamp switched on, the sun gone behind a cloud): the same
place under another light is another scene.

:func:`link_views` finds the links of a run of frames without matching every
pair: each frame is matched, in capture order, with the frames of at most
:data:`PAIR_WINDOW` before it, and of those only the one that shares most
visual words with it in each of the groups already linked (the places found so
far), the :data:`QUICK_GROUPS` most alike first on their strongest keypoints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.imaging.measure.keypoints import KEYPOINT_LONG_EDGE, VISUAL_WORDS, Keypoints
from pipeline.imaging.scene_light import mired_tint, rgb_to_xy

#: Lowe's ratio: a match is kept when its distance is under this share of the second nearest's.
MATCH_RATIO = 0.8
#: RANSAC's reprojection threshold, in pixels of a frame KEYPOINT_LONG_EDGE wide (0.6 % of it).
REPROJECTION_PX = 4.0
#: Homography inliers that make two frames views of one place. Chosen on the tuning shoots: pairs of
#: two places gave at most 7; 99.4 % of pairs of overlapping views of one place gave 10 or more.
MIN_INLIERS = 10
#: Inliers that lie in one small patch of both frames (their interquartile box smaller than this, in long edges
#: squared: about 4 % of the long edge square) are an overlay both pictures carry at one place (an agency's logo in a
#: corner, a watermark, a date stamp), not a view of one place. 1,620 real-estate listing photos, each of its own
#: house and room (emanhamed/Houses-dataset), were grouped into scenes of up to 93 frames through their brokers'
#: logos, and a scene's white was matched over a kitchen under bulbs and a front in daylight. Set between the two
#: tuning sets: the listing photos of houses 131-330 linked through their logos at 0.0010 at most (43 pairs of 10 or
#: more inliers), the consistency benchmark's tuning shoots' matches of views of one place at 0.0025 at least (110).
MIN_INLIER_SPREAD = 0.0015
#: Keypoints a quick match reads (the strongest, spread over the frame); the full match reads all.
QUICK_KEYPOINTS = 128
#: How far back in capture order a frame looks for views of its place.
PAIR_WINDOW = 48
#: Places (groups linked so far) whose most alike frame gets a quick match, the most alike first.
QUICK_GROUPS = 4
#: A frame the quick matches left alone (a close-up, a dull view) gets full matches with this many
#: frames of each of that many places, the most alike first.
SLOW_MEMBERS = 2
SLOW_GROUPS = 4
#: A frame with fewer keypoints is not matched at all (a blank wall, a frame out of focus).
MIN_KEYPOINTS = 16
#: A frame still alone after the links (a close-up two or three times closer than any other view of its
#: place) is matched in full with up to WEAK_MEMBERS frames of each place, the nearest in capture order;
#: it joins the place whose best match has at least WEAK_MIN_INLIERS inliers and WEAK_MARGIN times those
#: of any other place. Chosen on the tuning shoots (800 keypoints): two places gave at most 7 inliers in
#: any pair, and the close-ups the links missed had 8 and 9 with their own place against at most 5.
WEAK_MEMBERS = 8
WEAK_MIN_INLIERS = 8
WEAK_MARGIN = 1.5
#: A channel under this linear level on a keypoint is noise (and 8-bit steps), not a colour.
COLOUR_FLOOR = 0.003
#: Keypoints whose colour both frames know, below which the light between them is not read.
MIN_SHARED_COLOURS = 12
#: The keypoints' ratios must agree: their median absolute deviation at most this many EV.
MAX_RATIO_SPREAD_EV = 0.25
#: Light that changed by more than this between two views of one place makes two scenes. On the
#: tuning shoots the same light read at most 0.36 EV and 12 mired apart (the light was the same).
LIGHT_LEVEL_TOLERANCE_EV = 0.6
LIGHT_WHITE_TOLERANCE_MIRED = 20.0
LIGHT_TINT_TOLERANCE = 20.0
#: Threads that match a chunk of MATCH_CHUNK lone frames with their neighbours (:func:`_join_weak`): the
#: matches of one chunk at most are held.
MATCH_THREADS = 8
MATCH_CHUNK = 64


@dataclass(frozen=True)
class LightBetween:
    """What the light did between two views, read on the surfaces both show (None: not readable).

    ``level_ev``: how much more light the first saw (its exposure settings
    taken off); ``mired`` and ``tint``: how much warmer (and more magenta) the
    first frame's light was, in Camera Raw's terms.
    """

    level_ev: float | None
    mired: float | None
    tint: float | None

    def changed(self) -> bool:
        """Whether this is another light (beyond the tolerances)."""
        return bool((self.level_ev is not None and abs(self.level_ev) > LIGHT_LEVEL_TOLERANCE_EV)
                    or (self.mired is not None and abs(self.mired) > LIGHT_WHITE_TOLERANCE_MIRED)
                    or (self.tint is not None and abs(self.tint) > LIGHT_TINT_TOLERANCE))


@dataclass(frozen=True)
class ViewFrame:
    """What matching reads of one frame besides its keypoints.

    Attributes
    ----------
    settings_ev : float or None
        Its exposure settings (:func:`~pipeline.imaging.scene_light.exposure_settings_ev`).
    white_rgb : (float, float, float) or None
        The white its proxy was rendered at, in linear sRGB (its As Shot white;
        (1, 1, 1) for a rendered file).
    reference : str
        Only frames of one reference compare colours (:class:`pipeline.planning.scenes.Reference`).
    """

    settings_ev: float | None
    white_rgb: tuple[float, float, float] | None
    reference: str


def matched_keypoints(a: Keypoints, b: Keypoints, first: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the keypoints of ``a`` and ``b`` that one homography explains (mutual ratio-test matches).

    ``first``: read only that many keypoints of each (the strongest). Returns
    two empty arrays when fewer than :data:`MIN_INLIERS` tentative matches are
    found, or when the inliers lie in one small patch of both frames
    (:data:`MIN_INLIER_SPREAD`: an overlay, not a view).
    """
    da, db = a.descriptors[:first], b.descriptors[:first]
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if len(da) < 2 or len(db) < 2:
        return none
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    nearest = matcher.knnMatch(da, db, k=2)
    back = np.array([m.trainIdx for m in sorted(matcher.match(db, da), key=lambda m: m.queryIdx)])
    pairs = [(m[0].queryIdx, m[0].trainIdx) for m in nearest
             if len(m) == 2 and m[0].distance < MATCH_RATIO * m[1].distance and back[m[0].trainIdx] == m[0].queryIdx]
    if len(pairs) < MIN_INLIERS:
        return none
    qi, ti = np.array(pairs, np.int64).T
    src = a.xy[qi] * np.float32(KEYPOINT_LONG_EDGE)
    dst = b.xy[ti] * np.float32(KEYPOINT_LONG_EDGE)
    _, mask = cv2.findHomography(src, dst, cv2.RANSAC, REPROJECTION_PX)
    if mask is None:
        return none
    keep = mask.ravel() > 0
    qi, ti = qi[keep], ti[keep]
    if len(qi) and max(_patch_area(a.xy[qi]), _patch_area(b.xy[ti])) < MIN_INLIER_SPREAD:
        return none
    return qi, ti


def _patch_area(xy: np.ndarray) -> float:
    """The area of the interquartile box of points ``xy`` (units of the long edge): how far matches spread over the
    frame, a few strays left out."""
    q1, q3 = np.percentile(xy, [25, 75], axis=0)
    return float((q3[0] - q1[0]) * (q3[1] - q1[1]))


def _robust_median(log_ratios: np.ndarray) -> float | None:
    """Median of per-keypoint log2 ratios when enough of them agree, else None."""
    if len(log_ratios) < MIN_SHARED_COLOURS:
        return None
    median = float(np.median(log_ratios))
    return median if float(np.median(np.abs(log_ratios - median))) <= MAX_RATIO_SPREAD_EV else None


def light_between(rgb_a: np.ndarray, rgb_b: np.ndarray, a: ViewFrame, b: ViewFrame) -> LightBetween:
    """What the light did between two views, from the colours of their matched keypoints.

    Parameters
    ----------
    rgb_a, rgb_b : ndarray, (n, 3)
        The colours of the matched keypoints, pair by pair (NaN: clipped).
    a, b : ViewFrame
        The two frames' settings and whites.

    Returns
    -------
    LightBetween
        The level needs both frames' exposure settings, the colour two frames
        of one reference; each needs :data:`MIN_SHARED_COLOURS` keypoints
        above the noise that agree within :data:`MAX_RATIO_SPREAD_EV`.
    """
    rgb_a, rgb_b = np.asarray(rgb_a, np.float64), np.asarray(rgb_b, np.float64)
    known = np.isfinite(rgb_a).all(axis=1) & np.isfinite(rgb_b).all(axis=1)
    rgb_a, rgb_b = rgb_a[known], rgb_b[known]
    weights = np.array([0.2126, 0.7152, 0.0722])
    ya, yb = rgb_a @ weights, rgb_b @ weights
    lit = (ya > 4 * COLOUR_FLOOR) & (yb > 4 * COLOUR_FLOOR)
    level = None
    if a.settings_ev is not None and b.settings_ev is not None:
        seen = _robust_median(np.log2(ya[lit] / yb[lit]))
        level = None if seen is None else seen - (a.settings_ev - b.settings_ev)
    if a.white_rgb is None or b.white_rgb is None or a.reference != b.reference:
        return LightBetween(level, None, None)
    ratio = []
    for c in range(3):
        ok = (rgb_a[:, c] > COLOUR_FLOOR) & (rgb_b[:, c] > COLOUR_FLOOR)
        seen = _robust_median(np.log2(rgb_a[ok, c] / rgb_b[ok, c]))
        if seen is None:
            return LightBetween(level, None, None)
        ratio.append(2.0**seen)
    # Each proxy is the place times its light over the white it was rendered at (a gain per channel):
    # the light of a relative to b's is the ratio times a's white over b's.
    light_a = np.asarray(ratio) * np.asarray(a.white_rgb)
    if np.any(light_a <= 0):
        return LightBetween(level, None, None)
    ma, ta = mired_tint(rgb_to_xy(light_a))
    mb, tb = mired_tint(rgb_to_xy(np.asarray(b.white_rgb)))
    return LightBetween(level, ma - mb, ta - tb)


@dataclass
class ViewLinks:
    """Which frames of a run show one place under one light, by their keypoints.

    Attributes
    ----------
    group : list of int
        For each frame, its place: frames linked by matches (directly or
        through others) share the number; a frame linked to none is alone.
    links : list of (int, int, int)
        The pairs found to be views of one place, with their inlier count.
    other_light : list of (int, int)
        Pairs that show one place under another light: never one scene.
    matched : int
        How many pairs were matched (the cost).
    weak : list of (int, int)
        Of the links, those that joined a frame left alone to a place on weaker
        evidence (``WEAK_*``).
    matchable : list of bool
        For each frame, whether it had keypoints enough to be matched
        (:data:`MIN_KEYPOINTS`): a matchable frame left alone was compared with
        the places of its run and shares no view with any.
    """

    group: list[int]
    links: list[tuple[int, int, int]] = field(default_factory=list)
    other_light: list[tuple[int, int]] = field(default_factory=list)
    matched: int = 0
    weak: list[tuple[int, int]] = field(default_factory=list)
    matchable: list[bool] = field(default_factory=list)


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _word_vectors(keypoints: Sequence[Keypoints | None]) -> np.ndarray:
    """Each frame's bag of visual words (square-rooted counts weighted by rarity in the run), unit length."""
    counts = np.zeros((len(keypoints), VISUAL_WORDS), np.float32)
    for i, k in enumerate(keypoints):
        if k is not None and len(k):
            counts[i] = np.bincount(k.words, minlength=VISUAL_WORDS)
    seen = (counts > 0).sum(axis=0)
    rarity = np.log((len(keypoints) + 1) / (seen + 1)).astype(np.float32)
    # In place (the same arithmetic): a run of 500 frames is 2 MB a matrix, and a new one a step held
    # four at once, the driver's peak while it grouped the run (RESULTS.md, target 5).
    vectors = np.sqrt(counts, out=counts)
    vectors *= rarity
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.where(norms > 0, norms, 1)
    return vectors


def link_views(keypoints: Sequence[Keypoints | None], frames: Sequence[ViewFrame]) -> ViewLinks:
    """Link the views of one place in a run of frames in capture order (see the module's docstring).

    Parameters
    ----------
    keypoints : sequence of Keypoints or None
        Each frame's keypoints (None: not known, the frame is not matched).
    frames : sequence of ViewFrame
        Each frame's settings and white, in the same order.

    Returns
    -------
    ViewLinks

    Raises
    ------
    ValueError
        If the two sequences differ in length.
    """
    n = len(keypoints)
    if len(frames) != n:
        raise ValueError(f"{n} keypoint sets for {len(frames)} frames")
    usable = [k is not None and len(k) >= MIN_KEYPOINTS for k in keypoints]
    vectors = _word_vectors([k if ok else None for k, ok in zip(keypoints, usable)])
    parent = list(range(n))
    out = ViewLinks(group=[], matchable=usable)

    def try_link(i: int, j: int, first: int | None) -> bool:
        a, b = keypoints[i], keypoints[j]
        assert a is not None and b is not None
        out.matched += 1
        qi, ti = matched_keypoints(a, b, first)
        if len(qi) < MIN_INLIERS:
            return False
        if light_between(a.rgb[qi], b.rgb[ti], frames[i], frames[j]).changed():
            out.other_light.append((j, i))
            return False
        out.links.append((j, i, len(qi)))
        parent[_find(parent, i)] = _find(parent, j)
        return True

    for i in range(n):
        if not usable[i]:
            continue
        earlier = [j for j in range(max(0, i - PAIR_WINDOW), i) if usable[j]]
        if not earlier:
            continue
        alike = vectors[earlier] @ vectors[i]
        by_group: dict[int, list[tuple[float, int]]] = {}
        for j, s in zip(earlier, alike):
            by_group.setdefault(_find(parent, j), []).append((-float(s), j))
        ranked = sorted((sorted(members) for members in by_group.values()), key=lambda m: m[0])
        linked = False
        for members in ranked[:QUICK_GROUPS]:
            root = _find(parent, members[0][1])
            if _find(parent, i) == root:
                linked = True
                continue
            linked |= try_link(i, members[0][1], QUICK_KEYPOINTS)
        if linked:
            continue
        for members in ranked[:SLOW_GROUPS]:
            for _, j in members[:SLOW_MEMBERS]:
                if _find(parent, i) == _find(parent, j):
                    break
                if try_link(i, j, None):
                    break
    _join_weak(keypoints, frames, usable, parent, out)
    roots: dict[int, int] = {}
    out.group = [roots.setdefault(_find(parent, i), len(roots)) for i in range(n)]
    return out


def _join_weak(keypoints: Sequence[Keypoints | None], frames: Sequence[ViewFrame], usable: list[bool],
               parent: list[int], out: ViewLinks) -> None:
    """Give each usable frame still alone to the place it clearly shares most keypoints with (see WEAK_*)."""
    n = len(keypoints)
    size: dict[int, int] = {}
    for i in range(n):
        size[_find(parent, i)] = size.get(_find(parent, i), 0) + 1
    alone = [i for i in range(n) if usable[i] and size[_find(parent, i)] == 1]

    def neighbours(i: int) -> list[int]:
        """The frames ``i`` is matched with: nearest first, WEAK_MEMBERS of each place."""
        tried: dict[int, int] = {}
        chosen = []
        for _, j in sorted((abs(j - i), j) for j in range(max(0, i - PAIR_WINDOW), min(n, i + PAIR_WINDOW + 1))
                           if j != i and usable[j] and size[_find(parent, j)] > 1):
            root = _find(parent, j)
            if tried.get(root, 0) < WEAK_MEMBERS:
                tried[root] = tried.get(root, 0) + 1
                chosen.append(j)
        return chosen

    joins: list[tuple[int, int, int]] = []
    # No match depends on another (the joins come after all are decided): OpenCV matches outside the GIL, so a
    # chunk of lone frames is matched side by side, then decided in order.
    with ThreadPoolExecutor(max(1, min(MATCH_THREADS, os.cpu_count() or 1))) as pool:
        for first in range(0, len(alone), MATCH_CHUNK):
            chunk = [(i, neighbours(i)) for i in alone[first : first + MATCH_CHUNK]]
            pairs = [(i, j) for i, js in chunk for j in js]
            matches = dict(zip(pairs, pool.map(lambda p: matched_keypoints(keypoints[p[0]], keypoints[p[1]]), pairs)))
            for i, js in chunk:
                join = _weak_join(i, js, matches, keypoints, frames, parent, out)
                if join is not None:
                    joins.append(join)
    # Joined after all are decided, so one stray never vouches for another.
    for j, i, inliers in joins:
        out.links.append((j, i, inliers))
        out.weak.append((j, i))
        parent[_find(parent, i)] = _find(parent, j)


def _weak_join(i: int, neighbours: list[int], matches: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
               keypoints: Sequence[Keypoints | None], frames: Sequence[ViewFrame], parent: list[int],
               out: ViewLinks) -> tuple[int, int, int] | None:
    """The lone frame ``i``'s join (neighbour, ``i``, inliers) to the place it clearly shares most keypoints with,
    or None; ``matches`` holds its match with each of ``neighbours``."""
    best: dict[int, tuple[int, int]] = {}
    for j in neighbours:
        root = _find(parent, j)
        a, b = keypoints[i], keypoints[j]
        assert a is not None and b is not None
        out.matched += 1
        qi, ti = matches[i, j]
        if len(qi) and light_between(a.rgb[qi], b.rgb[ti], frames[i], frames[j]).changed():
            continue
        if len(qi) > best.get(root, (0, j))[0]:
            best[root] = (len(qi), j)
    ranked = sorted(best.values(), reverse=True)
    if ranked and ranked[0][0] >= WEAK_MIN_INLIERS and (
            len(ranked) == 1 or ranked[0][0] >= WEAK_MARGIN * ranked[1][0]):
        return ranked[0][1], i, ranked[0][0]
    return None


def other_light_pairs(links: ViewLinks) -> set[tuple[int, int]]:
    """Both orders of every pair :func:`link_views` found under another light."""
    return {p for a, b in links.other_light for p in ((a, b), (b, a))}


def describe_links(links: ViewLinks) -> str:
    """A line for logs and benchmarks: pairs matched, links found, other-light pairs."""
    sizes: dict[int, int] = {}
    for g in links.group:
        sizes[g] = sizes.get(g, 0) + 1
    places = sum(1 for s in sizes.values() if s > 1)
    alone = sum(1 for s in sizes.values() if s == 1)
    return (f"{links.matched} pairs matched, {len(links.links)} links ({len(links.weak)} weak), {places} places, "
            f"{alone} frames alone, "
            f"{len(links.other_light)} pairs under another light")

