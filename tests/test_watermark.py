"""A rendition's watermark: where it lands, what it covers, and the chart keys that describe it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from render_cases import run_stages

from charts.loader import load_chart
from charts.schema import Watermark
from pipeline.imaging.icc import ColorSpace
from pipeline.imaging.render import RenditionStrips, render_key
from pipeline.imaging.watermark import draw_mark, make_mark, missing_glyphs
from pipeline.kernel.errors import ConfigError
from pipeline.kernel.stage import RunContext
from stages.export import Export


def logo(path: Path, rgb: tuple[int, int, int] = (255, 0, 0)) -> Path:
    """A 40x20 opaque rectangle of ``rgb`` inside a transparent 4 px border: a logo with transparency."""
    rgba = np.zeros((28, 48, 4), np.uint8)
    rgba[4:24, 4:44] = (*rgb, 255)
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def covered(mark) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in the picture of the mark's pixels that cover anything."""
    ys, xs = np.nonzero(mark.coverage > 0.02)
    return mark.x + xs.min(), mark.y + ys.min(), mark.x + xs.max() + 1, mark.y + ys.max() + 1


# --- the mark ------------------------------------------------------------------------------------


@pytest.mark.parametrize("anchor", ["bottom_right", "top_left", "center"])
def test_text_mark_is_sized_and_placed_against_the_short_edge(anchor: str) -> None:
    spec = Watermark(text="Studio proof", anchor=anchor, size_pct=30, inset_pct=5, shadow=False)
    mark = make_mark(spec, 1200, 800, "srgb")
    x0, y0, x1, y1 = covered(mark)
    assert abs((x1 - x0) - 240) <= 6, (x0, x1)  # 30 % of the 800 px short edge (the glyphs' side bearings aside)
    inset = 40
    if anchor == "bottom_right":
        assert 1200 - inset - 4 <= x1 <= 1200 - inset and 800 - inset - 4 <= y1 <= 800 - inset
    elif anchor == "top_left":
        assert inset <= x0 <= inset + 4 and inset <= y0 <= inset + 4
    else:
        assert abs((x0 + x1) / 2 - 600) <= 3 and abs((y0 + y1) / 2 - 400) <= 3


def test_the_mark_keeps_its_size_against_the_picture_in_every_rendition() -> None:
    spec = Watermark(text="(c) Studio", shadow=False)
    small, large = make_mark(spec, 540, 960, "srgb"), make_mark(spec, 2160, 3840, "srgb")
    ws, wl = covered(small)[2] - covered(small)[0], covered(large)[2] - covered(large)[0]
    assert abs(wl / ws - 4.0) < 0.15


def test_logo_blends_by_its_alpha_and_the_opacity_and_touches_nothing_else(tmp_path: Path) -> None:
    spec = Watermark(image=str(logo(tmp_path / "logo.png")), anchor="top_left", size_pct=12, inset_pct=0,
                     opacity=0.5)
    rng = np.random.default_rng(0)
    before = rng.integers(0, 256, (400, 600, 3), dtype=np.uint8)
    after = draw_mark(before.copy(), make_mark(spec, 600, 400, "srgb"))
    # The logo's 48 px width at 12 % of 400 px: 1:1, its opaque body at (4..44, 4..24), its border transparent.
    body = np.s_[4:24, 4:44]
    want = np.rint(before[body] * 0.5 + np.array([255, 0, 0]) * 0.5)
    assert np.abs(after[body].astype(int) - want).max() <= 1
    outside = np.ones(before.shape[:2], bool)
    outside[3:25, 3:45] = False  # the body and the one pixel its resampling may soften
    np.testing.assert_array_equal(after[outside], before[outside])


def test_white_stays_white_and_red_is_converted_into_the_rendition_space(tmp_path: Path) -> None:
    white = Watermark(text="PROOF", anchor="center", size_pct=80, opacity=1.0, shadow=False)
    mark = make_mark(white, 1000, 1000, "display_p3")
    full = mark.coverage > 0.999
    assert full.sum() > 500 and np.allclose(mark.colour[full], 1.0, atol=1e-5)
    red = Watermark(image=str(logo(tmp_path / "red.png")), size_pct=48, opacity=1.0)
    srgb, p3 = make_mark(red, 100, 100, ColorSpace.SRGB), make_mark(red, 100, 100, ColorSpace.DISPLAY_P3)
    centre = (p3.coverage.shape[0] // 2, p3.coverage.shape[1] // 2)
    np.testing.assert_allclose(srgb.colour[centre], [1.0, 0.0, 0.0], atol=1e-6)
    # sRGB's red inside Display P3's gamut: (0.9175, 0.2003, 0.1386) encoded (Apple's and the CSS Color 4 figures).
    np.testing.assert_allclose(p3.colour[centre], [0.9175, 0.2003, 0.1386], atol=2e-3)


def test_a_picture_marked_strip_by_strip_is_the_picture_marked_whole() -> None:
    spec = Watermark(text="Studio Lumière — proof", anchor="bottom", size_pct=60, opacity=0.7)
    rng = np.random.default_rng(1)
    picture = rng.integers(0, 65536, (700, 500, 3), dtype=np.uint16)
    mark = make_mark(spec, 500, 700, "adobe_rgb")
    whole = draw_mark(picture.copy(), mark)
    strips = [draw_mark(picture[r:r + 37].copy(), mark, r) for r in range(0, 700, 37)]
    np.testing.assert_array_equal(np.concatenate(strips), whole)
    assert (whole != picture).any()


def test_a_mark_larger_than_the_picture_is_cut_to_it() -> None:
    spec = Watermark(text="A very long notice that cannot fit", size_pct=100, inset_pct=25)
    mark = make_mark(spec, 64, 300, "srgb")
    x, y, w, h = mark.box
    assert x >= 0 and y >= 0 and x + w <= 64 and y + h <= 300
    draw_mark(np.zeros((300, 64, 3), np.uint8), mark)


def test_missing_glyphs_are_named() -> None:
    assert missing_glyphs("Studio Lumière — © 2026", None) == ""
    assert missing_glyphs("Studio 漢字 漢", None) == "漢字"


# --- the chart -----------------------------------------------------------------------------------


def chart_file(folder: Path, watermark: str, extends: str = "social_media") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "client.yaml"
    path.write_text(f"schema_version: 2\nextends: {extends}\nrenditions:\n  feed_square:\n    watermark:\n"
                    + "".join(f"      {line}\n" for line in watermark.splitlines()), encoding="utf-8")
    return path


def test_a_logo_is_found_beside_the_chart_that_names_it(tmp_path: Path) -> None:
    (tmp_path / "brand").mkdir()
    logo(tmp_path / "brand" / "logo.png")
    chart = load_chart(chart_file(tmp_path / "brand", "image: logo.png\nanchor: top_left")).chart
    mark = chart.renditions["feed_square"].watermark
    assert mark is not None and Path(mark.image) == (tmp_path / "brand" / "logo.png").resolve()
    assert chart.renditions["feed_portrait"].watermark is None


@pytest.mark.parametrize("lines, key, words", [
    ("image: nowhere.png", "renditions.feed_square.watermark.image", "logo"),
    ("text: Studio 漢字", "renditions.feed_square.watermark.text", "'漢', '字'"),
    ("text: proof\nimage: logo.png", "renditions.feed_square.watermark.text", "either a text or an image"),
    ("text: proof\ncolour: white", "renditions.feed_square.watermark.colour", "'#rrggbb'"),
    ("text: proof\nanchor: middle", "renditions.feed_square.watermark.anchor", "bottom_right"),
])
def test_a_bad_watermark_stops_the_run_at_its_file_line_and_key(tmp_path: Path, lines: str, key: str,
                                                                 words: str) -> None:
    logo(tmp_path / "logo.png")
    path = chart_file(tmp_path, lines)
    with pytest.raises(ConfigError) as err:
        load_chart(path)
    where = err.value.location
    assert Path(where.file) == path and where.key == key and where.line is not None and where.line >= 5
    assert words in str(err.value)


def test_a_new_logo_changes_the_render_key(tmp_path: Path) -> None:
    path = logo(tmp_path / "logo.png")
    chart = load_chart(chart_file(tmp_path, "image: logo.png")).chart
    before = render_key("abc", chart, [])
    assert render_key("abc", chart, []) == before
    Image.open(path).convert("RGBA").resize((96, 56)).save(path)  # the client's new logo (another size too:
    # the digest is read again when the file's size or time changes, and a coarse clock may keep the time)
    assert render_key("abc", chart, []) != before


# --- delivered -----------------------------------------------------------------------------------


RENDITIONS = """\
schema_version: 2
renditions:
  web:
    long_edge_px: 480
    format: png
{web_mark}  master:
    long_edge_px: 400
    format: tiff
    bit_depth: 16
{master_mark}"""
LOGO_MARK = "    watermark: {image: logo.png, anchor: bottom_left, size_pct: 25, opacity: 0.8}\n"
TEXT_MARK = "    watermark: {text: proof, size_pct: 40}\n"


def read_pixels(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # 8- and 16-bit alike


def test_a_real_raw_delivered_with_a_mark_differs_only_under_it(raw_dir: Path, tmp_path: Path) -> None:
    """A Canon CRW rendered under a chart whose PNG rendition carries a logo, and under the same chart without it:
    the two files differ only inside the mark's box, and the rendition without a mark is the same file."""
    src = raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW"
    logo(tmp_path / "logo.png")
    files = {}
    for name, web_mark in (("plain", ""), ("marked", LOGO_MARK)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(RENDITIONS.format(web_mark=web_mark, master_mark=""), encoding="utf-8")
        item = run_stages(src, load_chart(path), [], tmp_path / name, export=True)
        files[name] = {e.rendition: read_pixels(tmp_path / name / e.path) for e in item.record.exports}
    plain, marked = files["plain"]["web"], files["marked"]["web"]
    spec = load_chart(tmp_path / "marked.yaml").chart.renditions["web"].watermark
    x, y, w, h = make_mark(spec, plain.shape[1], plain.shape[0], "srgb").box
    differs = np.argwhere((plain != marked).any(axis=2))
    assert len(differs) > 0.5 * w * h
    assert (differs[:, 0] >= y).all() and (differs[:, 0] < y + h).all()
    assert (differs[:, 1] >= x).all() and (differs[:, 1] < x + w).all()
    assert x == round(0.03 * plain.shape[0]) and y + h == plain.shape[0] - round(0.03 * plain.shape[0])
    np.testing.assert_array_equal(files["plain"]["master"], files["marked"]["master"])


def test_a_master_written_strip_by_strip_carries_the_mark_as_a_whole_one(raw_dir: Path, tmp_path: Path) -> None:
    """A master too large to hold is handed to the export stage as strips (RenditionStrips) and marked strip by
    strip as it is written: the TIFF is the one the whole picture gives, to the bit."""
    src = raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW"
    path = tmp_path / "chart.yaml"
    path.write_text(RENDITIONS.format(web_mark="", master_mark=TEXT_MARK), encoding="utf-8")
    chart = load_chart(path)
    written = []
    for name in ("whole", "strips"):
        item = run_stages(src, chart, [], tmp_path / name)
        if name == "strips":
            pixels = item.artifacts["renditions"]["master"]
            item.artifacts["renditions"]["master"] = RenditionStrips(
                pixels.shape[1], pixels.shape[0], 16, lambda v0, v1, p=pixels: p[v0:v1].copy(), 53)
        context = RunContext(shoot_dir=src.parent, out_dir=tmp_path / name, chart=chart, shoot_id="shoot-1")
        Export(Export.Params(), context).process(item)
        written.append(read_pixels(tmp_path / name / next(e.path for e in item.record.exports
                                                          if e.rendition == "master")))
    assert written[0].dtype == np.uint16
    np.testing.assert_array_equal(written[0], written[1])


@pytest.mark.parametrize("colour, halo", [("#ffffff", 0.0), ("#202020", 1.0)])
def test_the_texts_shadow_sets_it_off_from_what_lies_under_it(colour: str, halo: float) -> None:
    """White text gets a dark shadow, dark text a light one: both read on a picture of their own tone."""
    mark = make_mark(Watermark(text="PROOF", colour=colour, size_pct=60), 1000, 1000, "srgb")
    text = np.asarray([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)], np.float32)
    shadow_only = (mark.coverage > 0.05) & (np.abs(mark.colour - text).max(axis=2) > 0.5)
    assert shadow_only.sum() > 100  # the shadow shows beyond the glyphs
    near = np.abs(mark.colour[shadow_only] - halo).max(axis=1) < 0.35  # (the glyphs' edges blend the two)
    assert near.mean() > 0.9, near.mean()


def test_a_tiled_mark_covers_the_whole_picture_and_strips_make_the_same_file() -> None:
    """A proof's tiled notice: copies in every part of the picture (no crop frees it), the same whether the picture
    is marked whole or strip by strip."""
    spec = Watermark(text="PROOF", anchor="tiled", size_pct=20, opacity=0.4)
    rng = np.random.default_rng(2)
    picture = rng.integers(0, 256, (600, 900, 3), dtype=np.uint8)
    mark = make_mark(spec, 900, 600, "srgb")
    whole = draw_mark(picture.copy(), mark)
    changed = (whole != picture).any(axis=2)
    for rows in (slice(0, 300), slice(300, 600)):
        for cols in (slice(0, 450), slice(450, 900)):
            assert changed[rows, cols].mean() > 0.03, (rows, cols)  # a copy in each quarter
    strips = [draw_mark(picture[r:r + 41].copy(), mark, r) for r in range(0, 600, 41)]
    np.testing.assert_array_equal(np.concatenate(strips), whole)
