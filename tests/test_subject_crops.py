"""Crops placed on the subject (``placement: saliency``): the crop that holds the most of the subject's map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from charts.loader import load_chart
from charts.schema import CropPlacement, CropSpec
from pipeline.imaging.decode import decode_proxy
from pipeline.imaging.geometry import kept_share
from pipeline.imaging.measure import measure_all
from pipeline.imaging.measure.content import decode_saliency_map, encode_saliency_map, salient_object_map
from pipeline.kernel.records import ImageRecord, OperationKind, SourceKind
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.crops import SALIENT_AIR, salient_focus

#: scikit-image's coffee cup (600x400): the cup, drawn by eye (x, y, w, h in pixels; benchmarks/subject_boxes.json).
CUP = (0.29 * 600, 0.03 * 400, 0.42 * 600, 0.69 * 400)


def _planned(path: Path, aspect: str, keep_map: bool = True) -> tuple[float, float, float, float]:
    rgb = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000).rgb
    m = measure_all(rgb, True)
    record = ImageRecord.from_row(dict(source_path=path.name, content_hash="0" * 64, file_size=1, format="jpeg",
                                       source_kind=SourceKind.RASTER, width=rgb.shape[1], height=rgb.shape[0]))
    record.exposure, record.colour, record.content = m.exposure, m.colour, m.content
    if not keep_map:
        record.content.saliency_map = None
    chart = load_chart("social_media").chart
    chart = chart.model_copy(update={"crops": [CropSpec(aspect=aspect, placement=CropPlacement.SALIENCY)]})
    (crop,) = [o for o in plan_image(record, chart) if o.kind is OperationKind.CROP]
    return tuple(crop.params["box"])  # type: ignore[return-value]


def test_a_crop_on_the_subject_holds_the_most_of_a_cup_off_the_centre(tmp_path: Path) -> None:
    # The coffee photo cut so its cup stands left of the centre (as a photographer composing on a third puts it): a
    # 9:16 crop cannot hold the whole cup; the crop that holds the most of the subject's map holds as much of it as
    # any crop can. Centred on the spectral residual's salient region (the rule before), the crop held less; a
    # centred one much less.
    from skimage import data

    from benchmarks.subject_crops import best_share

    Image.fromarray(data.coffee()[:, 150:]).save(tmp_path / "cup.jpg", quality=95)
    cup = (CUP[0] - 150, CUP[1], CUP[2], CUP[3])
    crop = _planned(tmp_path / "cup.jpg", "9:16")
    best = best_share(cup, 450, 400, crop[2], crop[3])
    assert crop[2] == pytest.approx(225, abs=1) and best == pytest.approx(225 / CUP[2])
    assert kept_share(crop, 0.0, cup) == pytest.approx(best, abs=0.01), crop
    assert kept_share(_planned(tmp_path / "cup.jpg", "9:16", keep_map=False), 0.0, cup) < best - 0.04  # the rule before
    assert kept_share(((450 - 225) / 2, 0, 225, 400), 0.0, cup) < best - 0.2  # centred


def test_the_subjects_map_reads_the_cup_and_travels_in_the_record() -> None:
    from skimage import data

    from pipeline.imaging.color import srgb_to_linear

    rgb = srgb_to_linear(data.coffee().astype(np.float32) / 255)
    grid = salient_object_map(rgb)
    assert grid.shape == (11, 16) and grid.max() == pytest.approx(1.0)
    rows, cols = np.mgrid[0:11, 0:16]
    x, y, w, h = CUP
    on_cup = ((cols + 0.5) / 16 > x / 600) & ((cols + 0.5) / 16 < (x + w) / 600) & ((rows + 0.5) / 11 < (y + h) / 400)
    assert grid[on_cup].mean() > 2 * grid[~on_cup].mean()  # the cup, not the table around it
    text = encode_saliency_map(grid)
    assert text.startswith("16x11:") and len(text) == 6 + 2 * 176
    assert np.abs(decode_saliency_map(text) - grid).max() <= 0.5 / 255 + 1e-6
    for bad in ("", "16x11", "16x11:zz", "4x4:00ff", "0x0:"):
        with pytest.raises(ValueError, match="not a saliency map"):
            decode_saliency_map(bad)
    assert not salient_object_map(np.zeros((40, 60, 3), np.float32)).any()  # no light, no subject


def test_a_map_without_a_subject_centres_the_crop_and_a_subject_draws_it() -> None:
    flat = np.full((10, 16), 0.5, np.float32)
    assert salient_focus(flat, 1600.0, 1000.0, (800.0, 1000.0)) == pytest.approx((800.0, 500.0))
    right = np.zeros((10, 16), np.float32)
    right[4:6, 14] = 1.0  # a subject in the 15th column of 16
    x, y = salient_focus(right, 1600.0, 1000.0, (800.0, 1000.0))
    # The least move that holds all of it with air (SALIENT_AIR of the crop's 800 px) beyond it, on the 12.5 px steps
    # tried: the crop's left edge at the first step from where its air clears the subject's right edge (1500 px).
    least = 1500.0 - (1.0 - SALIENT_AIR) * 800.0
    assert y == 500.0 and least <= x - 400.0 < least + 12.5
