"""Crop geometry: turned crops never leave the frame."""

from __future__ import annotations

import math

import pytest

from pipeline.imaging.geometry import fits, inscribed_box, parse_aspect, place_crop, rotated_corners, shrink_to_fit


def test_rotated_corners_of_a_square() -> None:
    corners = rotated_corners((0, 0, 2, 2), 90)
    assert sorted((round(x, 6), round(y, 6)) for x, y in corners) == [(0, 0), (0, 2), (2, 0), (2, 2)]


def test_inscribed_box_known_values() -> None:
    # No turn: the whole frame.
    assert inscribed_box(300, 200, 0) == pytest.approx((0, 0, 300, 200))
    # A 45-degree turn of a square frame: the inscribed square has side s/sqrt(2).
    x, y, w, h = inscribed_box(100, 100, 45)
    assert w == pytest.approx(100 / math.sqrt(2)) and h == pytest.approx(w)
    assert (x, y) == pytest.approx((50 - w / 2, 50 - h / 2))


@pytest.mark.parametrize("angle", [-7.5, -2, 0.5, 3, 10])
@pytest.mark.parametrize("aspect", ["1:1", "4:5", "16:9", "3:2"])
def test_place_crop_always_fits(angle: float, aspect: str) -> None:
    for focus in [(0, 0), (3000, 2000), (5000, 10), (1500, 1000)]:
        box = place_crop(3000, 2000, parse_aspect(aspect), angle, focus)
        assert fits(box, angle, 3000, 2000)
        assert box[2] / box[3] == pytest.approx(parse_aspect(aspect), rel=1e-6)


def test_place_crop_follows_focus_and_keeps_faces() -> None:
    # 4:5 portrait crop of a 3:2 landscape frame, face on the right.
    box = place_crop(3000, 2000, 0.8, 0, focus=(2600, 800))
    assert box == pytest.approx((3000 - 1600, 0, 1600, 2000))
    left = place_crop(3000, 2000, 0.8, 0, focus=(100, 800))
    assert left[0] == pytest.approx(0)
    # Keep a group spanning x 900..2100 inside a 1600-wide crop though the focus is far left.
    kept = place_crop(3000, 2000, 0.8, 0, focus=(300, 800), keep=(900, 500, 1200, 400))
    assert kept[0] <= 900 and kept[0] + kept[2] >= 2100


def test_shrink_to_fit_keeps_centre_and_aspect() -> None:
    box = shrink_to_fit((0, 0, 300, 200), 5, 300, 200)
    assert fits(box, 5, 300, 200)
    assert box[0] + box[2] / 2 == pytest.approx(150) and box[2] / box[3] == pytest.approx(1.5)
