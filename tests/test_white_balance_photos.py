"""White balance on real photos with injected casts (issue 17 item 3), tier 2.

The truth is made here: a real photo (PASCAL VOC group photos of the shared
data, with their own mixed daylight and indoor light) times the linear sRGB
colour of a light ``m`` mired from D65. Whatever the estimate makes of the
photo itself, the cast twin must read ``m`` more, and the plan must correct a
strong cast in the right direction. No constant was fitted on these files
(``benchmarks/fit_white_balance.py`` fits on the accuracy corpus's tuning split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from charts.loader import load_chart
from pipeline.imaging.decode import decode_proxy
from pipeline.imaging.measure import colour_measure, measure_all, white_balance_cast
from pipeline.imaging.measure.metering import inverse_tone_curve, tone_curve
from pipeline.imaging.white_balance import light_rgb
from pipeline.kernel.records import ImageRecord, OperationKind, SourceKind
from pipeline.planning.plan import plan_image

PHOTOS = ("2007_007763", "2008_001009", "2008_001322", "2008_002079")
CASTS = (-100.0, -40.0, 40.0, 100.0)
BASE = load_chart("base").chart


@pytest.fixture(scope="module")
def photos(testdata: Path) -> dict[str, np.ndarray]:
    return {name: decode_proxy(testdata / "faces" / "pascal_voc" / f"{name}.jpg", SourceKind.RASTER, 1600,
                               200_000_000).rgb for name in PHOTOS}


def _cast(rgb: np.ndarray, m: float) -> np.ndarray:
    return np.clip(rgb * light_rgb(m).astype(np.float32), 0.0, 1.0)


def _record(rgb: np.ndarray) -> ImageRecord:
    h, w = rgb.shape[:2]
    record = ImageRecord.from_row(dict(
        source_path="a.jpg", content_hash="0" * 64, file_size=1, format="jpeg", source_kind=SourceKind.RASTER,
        width=w, height=h, exposure_ev=0.0, sharpness=100.0, lines_found=0, phash="0" * 16,
        clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0, clipped_shadows_pct_b=0.0))
    record.colour = colour_measure(rgb)
    return record


def test_the_estimate_follows_a_cast_injected_into_real_photos(photos: dict[str, np.ndarray]) -> None:
    errors = []
    for name, rgb in photos.items():
        base = white_balance_cast(rgb)
        assert base is not None, name
        for m in CASTS:
            cast = white_balance_cast(_cast(rgb, m))
            errors.append(abs(cast.mired - base.mired - m))
            # Each cue but the brightest pixels follows a moderate cast on its own (the lights clip little at
            # 40 mired). The brightest pixels sit next to clipping, where a cast clips one channel first: they
            # can miss even a 40 mired cast by 40 (2008_001322), which is why they are one vote of four.
            if abs(m) <= 40:
                for cue, reading in cast.cues.items():
                    if cue == "bright_pixels":
                        continue
                    assert abs(reading - base.cues[cue] - m) <= 12, (name, m, cue, reading, base.cues[cue])
    # A strong light clips one channel of the brightest surfaces first, which bends the colour of the
    # edges and of the brightest pixels: FLOOR, the estimate follows within 36 mired (33.5 today, one -100
    # mired light), and within 3 on the median (1.7 today) of the 16 casts.
    assert max(errors) <= 36, errors
    assert np.median(errors) <= 3, errors


def test_a_strong_cast_on_a_real_photo_is_corrected_in_the_right_direction(photos: dict[str, np.ndarray]) -> None:
    for name, rgb in photos.items():
        own = white_balance_cast(rgb).mired  # what the estimate makes of the photo as published
        for m in (-100.0, 100.0):
            ops = plan_image(_record(_cast(rgb, m)), BASE)
            wb = next((o for o in ops if o.kind is OperationKind.WHITE_BALANCE), None)
            assert wb is not None, (name, m, [o.reason for o in ops])
            # A warm light (+) needs a cooler picture (-), and all the way back but for what the estimate
            # reads on the photo itself (up to 26 mired here) and what the clipping of the strong light bends (up to 31).
            assert wb.params["mired_shift"] * m < 0, (name, m, wb.params)
            assert abs(wb.params["mired_shift"] + m) <= abs(own) + 35, (name, m, own, wb.params)


def test_the_uncast_photos_are_left_nearly_as_published(photos: dict[str, np.ndarray]) -> None:
    # First, do no harm: the photos as published need no more than a small shift each.
    for name, rgb in photos.items():
        wb = next((o for o in plan_image(_record(rgb), BASE) if o.kind is OperationKind.WHITE_BALANCE), None)
        assert wb is None or abs(wb.params["mired_shift"]) <= 30, (name, wb.params)


def _rendered_cast(display: np.ndarray, m: float) -> np.ndarray:
    """A JPEG-like twin of a published photo shot under a light ``m`` mired from D65: the light multiplies
    the scene (the photo through the inverse of the camera-like tone curve), and the curve renders it."""
    scene = inverse_tone_curve(display) * light_rgb(m)
    return tone_curve(np.clip(scene, 0.0, 1.0)).astype(np.float32)


def test_a_cast_under_a_tone_curve_is_read_in_the_scene_light(photos: dict[str, np.ndarray]) -> None:
    # The measurement a rendered source gets (measure_all with rendered=True, as the measure_exposure stage
    # calls it) must follow a light that multiplied the scene before the camera's tone curve. Read
    # display-linear, the curve lifts the cast in the mid-tones and squeezes it in the highlights: the
    # cues disagree and the twins read 10.0 mired off the injected light (median of 16; up to 43); read
    # through the inverse curve, 2.0 (the 2008_001322 -100 light clips its brightest surfaces: 52).
    errors = []
    for name, rgb in photos.items():
        base = measure_all(_rendered_cast(rgb, 0.0), rendered=True).colour.cast_mired
        for m in CASTS:
            cast = measure_all(_rendered_cast(rgb, m), rendered=True).colour.cast_mired
            errors.append(abs(cast - base - m))
    assert np.median(errors) <= 4, errors


# --- published photos read against their published balance (TARGETS, not met) ---------------------------
# The accuracy corpus's tuning-split photos of the shared data and of scikit-image's samples. Read against
# D65, every cue but the grey pixels reads published photos 20-26 mired warm (benchmarks/fit_wb_reference.py),
# and the plan corrects a warmth the photographer published, or a small cool cast on such a photo, the wrong
# way. Branch wb7 read each cue against its median reading of published photos, which passes both tests, but
# a scene of nothing but neutral surfaces (a grey card, a white seamless) then reads 23 mired cool and is
# warmed (tests/test_xmp.py's grey DNGs, tests/test_scenes.py): not shipped. Strict xfail: a fix makes them
# pass and must remove the marks.
_NOT_YET = pytest.mark.xfail(strict=True, reason="the estimate reads published photos 20-26 mired warm against "
                                                 "D65 (benchmarks/fit_wb_reference.py); no reference yet that "
                                                 "also keeps grey scenes grey")
PUBLISHED = ("exposure/Floris van Lint-CC BY-NC 2.0.jpg", "exposure/Probably Okay! (photo4) CC BY-SA 2.0.jpg",
             "exposure/Roland Tanglao-CC BY 2.0.jpg", "skimage:data/astronaut.png", "skimage:data/coffee.png",
             "skimage:data/rocket.jpg")


@pytest.fixture(scope="module")
def published(testdata: Path) -> dict[str, np.ndarray]:
    from benchmarks.accuracy_corpus import _package_file

    paths = {name: _package_file(*name.split(":")) if ":" in name else testdata / name for name in PUBLISHED}
    return {name: decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000).rgb for name, path in paths.items()}


def _rendered_record(rgb: np.ndarray) -> ImageRecord:
    record = _record(rgb)
    record.colour = colour_measure(rgb, rendered=True)  # as measure_exposure reads a JPEG
    return record


@_NOT_YET
def test_a_small_cast_on_a_photo_published_warm_is_not_corrected_the_wrong_way(
        published: dict[str, np.ndarray]) -> None:
    # Read against D65 the estimate reads a 20 mired cool light on the Floris van Lint photo (56 mired warm
    # as published) and on the espresso (100) as still warm and corrects them cooler, the wrong way. On wb7
    # (each cue against its published balance) none of the 24 small casts here was corrected the wrong way,
    # and the 20 mired cool ones on the three photos that read near neutral were corrected warmer (+27,
    # +30, +23: within 12 mired of the truth, +20).
    # Since wb8 a warm reading is judged from the warmth published photos read (PUBLISHED_WARMTH_MIRED):
    # the Floris van Lint photo under the cool light (read +42 +- 24) is left as shot, the espresso's
    # (+74 +- 61) is still cooled (-74), and the cool casts on the near-neutral photos read within the
    # tolerance or unsure (left, not warmed).
    wrong, warmed = [], []
    for name, rgb in published.items():
        for m in (-50.0, -20.0, 20.0, 50.0):
            ops = plan_image(_rendered_record(_rendered_cast(rgb, m)), BASE)
            wb = next((o for o in ops if o.kind is OperationKind.WHITE_BALANCE), None)
            shift = wb.params["mired_shift"] if wb else 0.0
            if shift * m > 0:
                wrong.append((name, m, shift))
            if m == -20.0 and shift > 0:
                warmed.append(name)
                assert abs(shift + m) <= 12, (name, shift)
    assert not wrong, wrong
    assert len(warmed) >= 3, warmed


@_NOT_YET
def test_photos_published_a_little_warm_are_left_as_published(published: dict[str, np.ndarray]) -> None:
    # The Floris van Lint photo and the astronaut read 56 and 14 mired warm against D65 and are cooled by as
    # much; on wb7 (against their published balance) they needed nothing, and only the espresso, whose cup
    # and saucer read 90 mired warm even so, was corrected (-88; -100 against D65).
    # Since wb8 the astronaut (+14 +- 10) is left as published; the Floris van Lint photo (+56 +- 26, 33
    # beyond the published warmth: 0.90 sure) is still cooled by 56.
    shifted = {}
    for name, rgb in published.items():
        wb = next((o for o in plan_image(_rendered_record(rgb), BASE) if o.kind is OperationKind.WHITE_BALANCE), None)
        if wb is not None:
            shifted[name] = wb.params["mired_shift"]
    assert set(shifted) <= {"skimage:data/coffee.png"}, shifted
    assert all(-100 < s < 0 for s in shifted.values()), shifted
