"""Keypoints of a view: what tells two views of one place from two places.

Views of one place differ in what they meter, in their colours and in their
layout (the window and the dark corner of one room), and two places shot at
the same settings under the same daylight read the same light. What two views
of one place share is the place itself: the same corners and edges, seen at
another position and scale. A frame's *keypoints* are those corners (ORB: FAST
corners on an image pyramid with a 256-bit binary descriptor each, Rublee et
al. 2011, as OpenCV computes them), up to :data:`MAX_KEYPOINTS` per frame, found on a copy of
the proxy at :data:`KEYPOINT_LONG_EDGE` pixels with its median brought to mid
grey (so neither the exposure nor the white balance moves them). The scene
grouping matches the keypoints of two frames and keeps the matches one
homography explains (:mod:`pipeline.planning.views`).

Each keypoint also keeps:

- the linear colour of the surface it sits on (the proxy's mean over a patch
  of the keypoint's own scale, so two views at different zooms average the same
  surface), unknown where the patch holds a clipped pixel: on the surfaces two
  views share, the ratio of their colours is what the light (and the camera)
  did between them, whatever the surfaces are;
- its *visual word*: the nearest of :data:`VISUAL_WORDS` fixed binary
  descriptors. Frames that show the same things share words; the grouping
  ranks which frames to match by the words they share (a bag of words, Sivic
  and Zisserman 2003) instead of matching every pair.

Keypoints are ordered by importance: the strongest corner of each cell of a
:data:`GRID` x :data:`GRID` grid first, then the second of each cell, and so on,
so the first few spread over the whole frame (a quick match reads only those).

The evidence of one frame (about 30 KB) is written to
``OUT/.postprod/keypoints/<content hash>.npz`` by the ``find_keypoints``
stage; planning reads it back (:func:`read_keypoints`).
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from pipeline.imaging.color import linear_to_srgb, luminance
from pipeline.imaging.measure.common import check_rgb

#: Long edge, in pixels, of the copy the keypoints are found on (and the unit of their positions).
KEYPOINT_LONG_EDGE = 640
#: Keypoints kept per frame. 800 rather than 400: a close-up two or three times closer than the other
#: views of its place shares only the corners of a small part of them, and on the tuning shoots 11 of 16
#: close-ups reached MIN_INLIERS with 800 against 7 with 400 (unrelated pairs: at most 7 either way).
MAX_KEYPOINTS = 800
#: ORB's pyramid: 8 levels 1.2 apart reach a view 3.6 times closer (a close-up of a table).
PYRAMID_SCALE = 1.2
PYRAMID_LEVELS = 8
#: FAST threshold on the 8-bit mid-grey copy: OpenCV's default of 20 finds little on matte walls.
FAST_THRESHOLD = 10
#: The keypoints spread over a GRID x GRID grid (ORB alone crowds them on the most textured object).
GRID = 4
#: A keypoint's colour is the mean of a patch this share of its ORB size across (at least 5 px):
#: about the size of the corner itself, at any scale.
PATCH_SHARE = 1 / 8
#: A patch holding a pixel at or above this linear level (any channel) has no colour (it clipped).
CLIP_LEVEL = 0.95
#: Size of the fixed vocabulary of visual words.
VISUAL_WORDS = 1024
#: Where the evidence files go, relative to the output folder.
KEYPOINTS_DIR = PurePosixPath(".postprod/keypoints")
#: Bumped when the file's layout changes: a file of another version reads as absent.
KEYPOINTS_FORMAT = 1


def _vocabulary() -> np.ndarray:
    """The visual words: 256-bit descriptors from SHA-256, the same on every machine and version."""
    words = [hashlib.sha256(f"postprod visual word {k}".encode()).digest() for k in range(VISUAL_WORDS)]
    return np.frombuffer(b"".join(words), dtype=np.uint8).reshape(VISUAL_WORDS, 32).copy()


_WORDS = _vocabulary()


@dataclass(frozen=True)
class Keypoints:
    """The keypoints of one frame, in order of importance.

    Attributes
    ----------
    xy : ndarray, float32, (n, 2)
        Positions (x from the left, y from the top) in units of the frame's long edge.
    descriptors : ndarray, uint8, (n, 32)
        ORB's 256-bit descriptors.
    rgb : ndarray, float32, (n, 3)
        Linear colour of the surface under each keypoint, as the proxy shows it
        (NaN where its patch clipped).
    words : ndarray, uint16, (n,)
        The visual word of each descriptor (index into the fixed vocabulary).
    """

    xy: np.ndarray
    descriptors: np.ndarray
    rgb: np.ndarray
    words: np.ndarray

    def __len__(self) -> int:
        return int(self.xy.shape[0])


def _empty() -> Keypoints:
    return Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), np.zeros((0, 3), np.float32),
                     np.zeros(0, np.uint16))


def find_keypoints(rgb: np.ndarray, max_keypoints: int = MAX_KEYPOINTS) -> Keypoints:
    """The keypoints of one proxy (see the module's docstring).

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Linear RGB, 1.0 = white (the analysis proxy).
    max_keypoints : int
        How many to keep (at least 1).

    Returns
    -------
    Keypoints
        Possibly empty (a flat or black frame has no corners).

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image of at least 8x8, or ``max_keypoints`` is below 1.
    """
    rgb = check_rgb(rgb)
    if max_keypoints < 1:
        raise ValueError(f"max_keypoints must be at least 1, got {max_keypoints}")
    h, w = rgb.shape[:2]
    scale = KEYPOINT_LONG_EDGE / max(h, w)
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    luma = luminance(small)
    median = float(np.median(luma))
    if not median > 0:
        return _empty()
    grey = np.rint(linear_to_srgb(luma * np.float32(0.18 / median)) * 255).astype(np.uint8)
    orb = cv2.ORB_create(nfeatures=4 * max_keypoints, scaleFactor=PYRAMID_SCALE, nlevels=PYRAMID_LEVELS,
                         edgeThreshold=15, fastThreshold=FAST_THRESHOLD, patchSize=31)
    found, descriptors = orb.detectAndCompute(grey, None)
    if descriptors is None or not found:
        return _empty()
    pts = np.array([k.pt for k in found], np.float32)
    response = np.array([k.response for k in found], np.float64)
    kp_size = np.array([k.size for k in found], np.float32)
    height, width = grey.shape
    cell = (np.minimum((pts[:, 1] * GRID / height).astype(int), GRID - 1) * GRID
            + np.minimum((pts[:, 0] * GRID / width).astype(int), GRID - 1))
    # Rank within the cell by response (ties by position, so the order is the same on every run).
    by_cell = np.lexsort((pts[:, 0], pts[:, 1], -response, cell))
    rank = np.empty(len(found), np.int64)
    starts = np.flatnonzero(np.r_[True, cell[by_cell][1:] != cell[by_cell][:-1]])
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(by_cell)
        rank[by_cell[start:stop]] = np.arange(stop - start)
    keep = np.lexsort((pts[:, 0], pts[:, 1], -response, rank))[:max_keypoints]
    pts, kp_size, descriptors = pts[keep], kp_size[keep], descriptors[keep]
    return Keypoints(pts / np.float32(max(height, width)), np.ascontiguousarray(descriptors),
                     _patch_colours(small, pts, kp_size), visual_words(descriptors))


def _patch_colours(small: np.ndarray, pts: np.ndarray, kp_size: np.ndarray) -> np.ndarray:
    """Mean linear colour over each keypoint's patch; NaN where a pixel of the patch clipped."""
    height, width = small.shape[:2]
    sums = cv2.integral(small.astype(np.float64))
    # Channel by channel: numpy's max over a last axis of 3 is ten times slower than two maximums.
    brightest = np.maximum(np.maximum(small[..., 0], small[..., 1]), small[..., 2])
    clipped = cv2.integral((brightest >= CLIP_LEVEL).astype(np.uint8))
    r = np.maximum(2, np.rint(kp_size * PATCH_SHARE / 2)).astype(int)
    x, y = np.rint(pts[:, 0]).astype(int), np.rint(pts[:, 1]).astype(int)
    x0, x1 = np.clip(x - r, 0, width), np.clip(x + r + 1, 0, width)
    y0, y1 = np.clip(y - r, 0, height), np.clip(y + r + 1, 0, height)

    def box(table: np.ndarray) -> np.ndarray:
        return table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]

    area = ((x1 - x0) * (y1 - y0)).astype(np.float64)
    colours = (box(sums) / area[:, None]).astype(np.float32)
    colours[box(clipped) > 0] = np.nan
    return colours


def visual_words(descriptors: np.ndarray) -> np.ndarray:
    """The nearest word of the fixed vocabulary (Hamming distance) of each descriptor, as uint16.

    Raises
    ------
    ValueError
        If ``descriptors`` is not an (n, 32) uint8 array.
    """
    descriptors = np.asarray(descriptors)
    if descriptors.ndim != 2 or descriptors.shape[1] != 32 or descriptors.dtype != np.uint8:
        raise ValueError(f"expected ORB descriptors, (n, 32) uint8, got {descriptors.shape} {descriptors.dtype}")
    if len(descriptors) == 0:
        return np.zeros(0, np.uint16)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING).match(descriptors, _WORDS)
    words = np.zeros(len(descriptors), np.uint16)
    for m in matches:
        words[m.queryIdx] = m.trainIdx
    return words


def keypoints_path(content_hash: str) -> str:
    """The evidence file of a source with this SHA-256, relative to the output folder (POSIX)."""
    return str(KEYPOINTS_DIR / f"{content_hash}.npz")


def keypoints_bytes(keypoints: Keypoints) -> bytes:
    """The ``.npz`` bytes of one frame's keypoints (write them with an atomic write)."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf, format=np.array(KEYPOINTS_FORMAT, np.int16),
        xy=np.rint(keypoints.xy * 65535).astype(np.uint16), descriptors=keypoints.descriptors,
        rgb=keypoints.rgb.astype(np.float16), words=keypoints.words.astype(np.uint16),
    )
    return buf.getvalue()


def read_keypoints(path: Path | str) -> Keypoints | None:
    """One frame's keypoints from its evidence file; None when it is missing, damaged or of another format."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != KEYPOINTS_FORMAT:
                return None
            xy = z["xy"].astype(np.float32) / np.float32(65535)
            descriptors, rgb, words = z["descriptors"], z["rgb"].astype(np.float32), z["words"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # a truncated or foreign file
        return None
    n = len(xy)
    if (xy.shape != (n, 2) or descriptors.shape != (n, 32) or descriptors.dtype != np.uint8 or rgb.shape != (n, 3)
            or words.shape != (n,) or (n and int(words.max()) >= VISUAL_WORDS)):
        return None
    return Keypoints(xy, descriptors, rgb, words.astype(np.uint16))


class KeypointFiles(Mapping[int, Keypoints]):
    """Frames' keypoints by index, read from their evidence files each time one is asked for.

    Nothing is kept: a caller that reads a few frames at a time (the scene
    grouping reads a run) holds only those, where a dict of every frame's
    keypoints would hold about 30 KB for each frame of the shoot. A file that
    is missing, damaged or of another format reads as absent (``get`` gives
    None, ``[]`` raises KeyError), as :func:`read_keypoints` returns None.

    The paths themselves are held compactly: a file named as ``find_keypoints``
    names them (``<content hash>.npz``, all in one folder) is kept as its 32-byte
    hash in one flat buffer, not as a string and a dict entry a frame (about
    0.2 KB a frame held through planning: RESULTS.md, target 5); any other path
    is kept as given.

    Parameters
    ----------
    paths : mapping of int to Path or str, or iterable of (int, Path or str)
        Each frame's evidence file, by index (each index once).
    """

    def __init__(self, paths: Mapping[int, Path | str] | Iterable[tuple[int, Path | str]]) -> None:
        self._folder: str | None = None  # the one folder of the hash-named files
        self._index = array("q")  # frames with a hash-named file, in the order given
        self._hashes = bytearray()  # their hashes, 32 bytes each, in that order
        self._other: dict[int, str] = {}
        increasing = True
        for i, path in paths.items() if isinstance(paths, Mapping) else paths:
            folder, name = os.path.split(os.fspath(path))
            digest = _hash_name(name)
            if digest is not None and (self._folder is None or folder == self._folder):
                self._folder = folder
                increasing = increasing and not (self._index and i <= self._index[-1])
                self._index.append(i)
                self._hashes += digest
            else:
                self._other[i] = os.fspath(path)
        # index -> position, only when given out of order (bisect finds them otherwise)
        self._position = None if increasing else {i: k for k, i in enumerate(self._index)}

    def _path(self, index: int) -> str | None:
        if self._position is not None:
            k = self._position.get(index)
        else:
            k = bisect_left(self._index, index)
            k = k if k < len(self._index) and self._index[k] == index else None
        if k is None:
            return self._other.get(index)
        return os.path.join(str(self._folder), self._hashes[32 * k:32 * (k + 1)].hex() + ".npz")

    def __getitem__(self, index: int) -> Keypoints:
        path = self._path(index) if isinstance(index, int) else None
        found = None if path is None else read_keypoints(path)
        if found is None:
            raise KeyError(index)
        return found

    def __contains__(self, index: object) -> bool:
        # Only whether the frame has a file: reading it to answer would cost what this class saves.
        return isinstance(index, int) and self._path(index) is not None

    def __iter__(self) -> Iterator[int]:
        yield from self._index
        yield from self._other

    def __len__(self) -> int:
        return len(self._index) + len(self._other)


def _hash_name(name: str) -> bytes | None:
    """The 32 bytes of a ``<64 hex digits>.npz`` file name (lower case, as the stage writes it), else None."""
    stem, dot, ext = name.rpartition(".")
    if not dot or ext != "npz" or len(stem) != 64 or stem != stem.lower():
        return None
    try:
        return bytes.fromhex(stem)
    except ValueError:
        return None
