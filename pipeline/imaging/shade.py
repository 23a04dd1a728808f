"""A soft shade over faces: the known shadow the accuracy benchmark, the tests and the demo shoot cast on real photos.

A face in a shadow is what the faces rule lifts; to prove it, a shadow of a known depth is put over human-drawn face
boxes of real photos, in scene light (``2 ** (-depth * mask)``), where a real one darkens a face.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from pipeline.imaging.geometry import Box


def shadow_mask(shape: tuple[int, int], boxes: Iterable[Box]) -> np.ndarray:
    """A soft-edged ellipse over each face box, 1 inside, falling to 0 over a feather.

    The ellipse covers the head (0.65 of the box's width and 0.8 of its height
    as semi-axes, centred a little above the box centre, as hair and forehead
    are above a brow-to-chin box); its edge is feathered by a Gaussian of 8 %
    of the box's width, as the edge of a real shadow is soft.
    """
    h, w = shape
    mask = np.zeros((h, w), np.float32)
    for x, y, bw, bh in boxes:
        one = np.zeros((h, w), np.float32)
        centre = (round(x + bw / 2), round(y + bh * 0.45))
        axes = (max(1, round(0.65 * bw)), max(1, round(0.8 * bh)))
        cv2.ellipse(one, centre, axes, 0, 0, 360, 1.0, thickness=-1)
        sigma = max(1.0, 0.08 * bw)
        one = cv2.GaussianBlur(one, (0, 0), sigma)
        mask = np.maximum(mask, one)
    return mask
