"""A RAW is developed through the camera-like curve (chart ``exposure.raw_tone_curve``), as raw converters develop one.

The exposure meter's well-exposed photograph is defined through that curve; delivered as linear light, a RAW the plan
left alone came out a stop darker in the mid-tones than the photograph it is a picture of, and flat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from render_cases import run_stages

from charts.loader import load_chart
from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.dng import write_dng_from_linear_rgb
from pipeline.imaging.measure.metering import KEY_LOG2, develop, tone_curve, undevelop
from pipeline.kernel.records import SourceKind
from pipeline.review.preview import before_preview, develops

CHART = """schema_version: 2
exposure: {{raw_tone_curve: {curve}}}
white_balance: {{policy: as_shot}}
renditions:
  web: {{long_edge_px: 512, format: png, bit_depth: 8, sharpen_amount: 0}}
"""


def test_a_grey_is_developed_by_the_curve_and_a_colour_keeps_its_hue() -> None:
    x = np.linspace(0.0, 1.0, 2001, dtype=np.float32)
    grey = develop(np.stack([x, x, x], axis=1))
    np.testing.assert_allclose(grey[:, 0], tone_curve(x), atol=2e-6)
    # A well-exposed photograph's key lands at sRGB 118 (the chart's target_ev 0).
    key = float(develop(np.full((1, 3), 2.0**KEY_LOG2, np.float32))[0, 0])
    assert 1.055 * key ** (1 / 2.4) - 0.055 == pytest.approx(118 / 255, abs=0.01)
    rng = np.random.default_rng(3)
    rgb = (rng.random((64, 64, 3)) ** 2).astype(np.float32)
    out = develop(rgb)
    lo, hi = rgb.min(axis=2), rgb.max(axis=2)
    t_in = (np.median(rgb, axis=2) - lo) / (hi - lo)
    t_out = (np.median(out, axis=2) - out.min(axis=2)) / (out.max(axis=2) - out.min(axis=2))
    np.testing.assert_allclose(t_out, t_in, atol=1e-4)  # the middle channel keeps its place: the hue
    np.testing.assert_allclose(develop(undevelop(out)), out, atol=1e-5)
    # Out of range in, in range out; in place as asked.
    wild = np.array([[1.7, -0.2, 0.4]], np.float32)
    assert develop(wild).min() >= 0.0 and develop(wild).max() <= 1.0
    same = rgb.copy()
    assert develop(same, out=same) is same and np.array_equal(same, out)


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A DNG of a real photo's scene light (scikit-image's coffee, as published), and the photo's luminance."""
    import skimage.data

    srgb8 = skimage.data.coffee()
    path = tmp_path_factory.mktemp("twin") / "coffee.dng"
    write_dng_from_linear_rgb(path, undevelop(srgb_to_linear(srgb8 / 255.0)).astype(np.float32),
                              white_balance=(1.0, 1.0, 1.0))
    return path, np.asarray(Image.fromarray(srgb8).convert("L"), np.float64)


def delivered(path: Path, curve: str, tmp_path: Path) -> np.ndarray:
    (tmp_path / f"{curve}.yaml").write_text(CHART.format(curve=curve))
    item = run_stages(path, load_chart(tmp_path / f"{curve}.yaml"), [], tmp_path / curve, export=True)
    (export,) = item.record.exports
    with Image.open(tmp_path / curve / export.path) as im:
        return np.asarray(im.convert("L").resize((400, 266)), np.float64)


def test_a_raw_left_alone_is_delivered_as_the_photo_it_is_a_picture_of(twin, tmp_path: Path) -> None:
    path, published = twin
    published = np.asarray(Image.fromarray(published.astype(np.uint8)).resize((400, 266)), np.float64)
    camera, linear = delivered(path, "camera", tmp_path), delivered(path, "linear", tmp_path)
    # Through the curve: the photo's own levels (its median within 3 of 255, every pixel within 6 on average).
    assert abs(np.median(camera) - np.median(published)) <= 3, (np.median(camera), np.median(published))
    assert np.abs(camera - published).mean() <= 6
    # In linear light: a stop darker in the mid-tones, as the renderer delivered RAWs before.
    assert np.median(published) - np.median(linear) >= 15, (np.median(linear), np.median(published))


def test_the_review_shows_a_raw_developed_and_a_jpeg_as_it_is() -> None:
    assert develops(SourceKind.RAW) and develops("raw") and not develops(SourceKind.RASTER)
    assert not develops(SourceKind.RAW, develop_raw=False)
    mid = np.full((8, 8, 3), 2.0**KEY_LOG2, np.float32)
    assert before_preview(mid, develop_curve=True)[0, 0, 0] == pytest.approx(118, abs=3)
    assert before_preview(mid)[0, 0, 0] == pytest.approx(88, abs=3)  # linear light, sRGB-encoded


def test_a_pushed_raws_highlights_land_short_of_white_after_the_development() -> None:
    # The highlight shoulder rolls a push's highlights off below 8-bit white; developed through the curve, whose own
    # shoulder lifts 0.99 of scene light to 255, it rolls them to the scene light the curve takes to that level.
    from pipeline.imaging.render import finish_rendition

    ramp = np.linspace(0.0, 0.6, 4096, dtype=np.float32)
    rgb = np.repeat(np.stack([ramp, ramp * 0.9, ramp * 0.8], axis=1)[None], 8, axis=0).copy()
    for develop_curve in (False, True):
        out = finish_rendition(rgb.copy(), "srgb", 0.0, 8, gains=(2.0, 2.0, 2.0), white=1.2, full_scale=2.0,
                               develop_curve=develop_curve)
        assert out.max() < 255, develop_curve  # nothing the source held below full scale is delivered blown
        assert np.all(np.diff(out[0, :, 0].astype(int)) >= 0)  # and the tones keep their order
