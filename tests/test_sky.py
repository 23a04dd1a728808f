"""A blue sky in the frame's top quarter (``colour.sky_share``), which tells the white-balance rule a daylight scene.

The truth is by eye: of the shared data's 24 photos, four show a blue sky at the top (a Paris street at dusk, a
stone building and a street under a blue cast, two chicks before a blue sky); the rest are portraits, rooms, a
bowl of food, an orange sunset, foliage and white skies. No constant was set on these photos (the detector's were
set by eye on listing photos: :data:`pipeline.imaging.measure.colour.SKY_MIN_CHROMA`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.imaging.decode import decode_proxy
from pipeline.imaging.measure.colour import sky_share
from pipeline.imaging.white_balance import light_rgb
from pipeline.kernel.records import SourceKind
from pipeline.planning.rules.white_balance import DAYLIGHT_SHADE_MIRED, SKY_MIN_SHARE

SKIES = {"exposure/a1359-NKIM_MG_6126_N1.5.JPG", "wb/Flcikr_Rhett_Sutphin_CC_BY_2.0.jpg",
         "wb/Flickr_Christopher_Schmidt_CC_BY_2.0.jpg", "wb/Flickr_quiddle_CC BY-SA_2.0.jpg"}


def _photos(testdata: Path) -> list[Path]:
    found = [p for folder in ("exposure", "wb", "wb/pairs", "faces/pascal_voc") for p in (testdata / folder).iterdir()
             if p.suffix.lower() in (".jpg", ".png")]
    assert len(found) == 24, found
    return sorted(found)


def test_a_blue_sky_is_found_where_the_eye_sees_one(testdata: Path) -> None:
    read = {str(p.relative_to(testdata)): sky_share(decode_proxy(p, SourceKind.RASTER, 1600, 200_000_000).rgb)
            for p in _photos(testdata)}
    with_sky = {name for name, share in read.items() if share >= SKY_MIN_SHARE}
    assert with_sky == SKIES, read


def test_a_white_ceiling_lit_by_a_window_is_no_sky() -> None:
    # A smooth white surface lit by a window's daylight reads a little blue: under the coolest light the rule leaves
    # unflagged under a sky (DAYLIGHT_SHADE_MIRED) its chroma is 11, a room's, not a sky's. So a white ceiling's cast
    # alone never makes the sky that would clear it.
    ceiling = np.ones((300, 400, 3), np.float32) * 0.6 * light_rgb(DAYLIGHT_SHADE_MIRED).astype(np.float32)
    assert sky_share(np.clip(ceiling, 0, 1)) < SKY_MIN_SHARE
    sky = np.ones((300, 400, 3), np.float32) * np.array([0.15, 0.3, 0.75], np.float32)  # linear sRGB, hue ~270
    assert sky_share(sky) == pytest.approx(1.0)
    # Blue but full of edges (a blue patterned wallpaper, a crowd in blue): not smooth enough for a sky.
    stripes = sky.copy()
    stripes[:, (np.arange(400) // 2) % 2 == 0] *= 0.2  # stripes 2 px wide: every pixel beside an edge
    assert sky_share(stripes) < SKY_MIN_SHARE
