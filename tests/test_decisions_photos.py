"""White balance, skin and crops on real photos (issue 17 items 3-4), tier 2.

The shared ``wb/`` photos (a wrong white balance judged by eye, two with an
intended warmth, and a pair rendered wrongly and correctly from one raw) are
reference files: no constant was fitted on them (the benchmark reports them
apart); these tests hold today's decisions on them as floors. The espresso and
the astronaut are the sample photos scikit-image ships; the dinner is PASCAL VOC
2008_002079. Faces are found by the real detector.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.accuracy import analysis_graph
from charts.loader import load_chart
from pipeline.imaging.decode import decode_proxy
from pipeline.imaging.geometry import kept_share
from pipeline.imaging.measure import colour_measure
from pipeline.imaging.white_balance import linear_srgb_to_lab
from pipeline.kernel.records import ImageRecord, OperationKind, SourceKind
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.crops import protected_region
from pipeline.planning.rules.white_balance import is_skin

BASE = load_chart("base").chart


def _planned(path: Path, chart=BASE):  # noqa: ANN001, ANN202
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    h, w = decoded.rgb.shape[:2]
    record = ImageRecord.from_row(dict(
        source_path=path.name, content_hash="0" * 64, file_size=1, format="jpeg", source_kind=SourceKind.RASTER,
        width=w, height=h, exposure_ev=0.0, sharpness=100.0, lines_found=0, phash="0" * 16,
        clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0, clipped_shadows_pct_b=0.0))
    record.colour = colour_measure(decoded.rgb, rendered=True)  # a JPEG, read in its scene light as measure_exposure does
    ops = plan_image(record, chart)
    wb = next((o for o in ops if o.kind is OperationKind.WHITE_BALANCE), None)
    return decoded.rgb, record, wb, ops


def _labels(testdata: Path) -> list[dict[str, str]]:
    with open(testdata / "wb" / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_real_wrong_white_balance_is_corrected_in_the_right_direction(testdata: Path) -> None:
    rows = [r for r in _labels(testdata) if r["cast"] in ("warm", "cool") and not r["truth_log2_rb"]]
    assert len(rows) == 5
    for row in rows:
        _, record, wb, _ = _planned(testdata / "wb" / row["file"])
        assert wb is not None, row["file"]
        # A cool cast needs a warmer picture (+), a warm one a cooler (-).
        assert (wb.params["mired_shift"] > 0) == (row["cast"] == "cool"), (row["file"], wb.params)


def test_intended_warmth_is_kept(testdata: Path) -> None:
    # A portrait lit by a bare bulb (read 169 mired warm in its scene light) and a sunset (181, and magenta
    # beyond any light's): the base chart, which wants neutral, corrects at most 150 mired, so some warmth stays
    # and a person is asked to look; charts that keep a warm ambience (social media, food) keep more of it.
    # (Read as measure_exposure reads a JPEG, in its scene light: this test read the display-linear pixels
    # before, where the portrait read over 200 mired warm and kept 30 under the base chart too.)
    for row in (r for r in _labels(testdata) if r["cast"] == "warm-intended"):
        _, record, wb, ops = _planned(testdata / "wb" / row["file"])
        kept = record.colour.cast_mired + (wb.params["mired_shift"] if wb else 0.0)
        assert kept >= 10, (row["file"], record.colour.cast_mired, wb and wb.params)
        assert any(o.kind is OperationKind.FLAG for o in ops), row["file"]
        for chart in ("social_media", "culinary"):
            _, record, wb, _ = _planned(testdata / "wb" / row["file"], load_chart(chart).chart)
            kept = record.colour.cast_mired + (wb.params["mired_shift"] if wb else 0.0)
            assert kept >= 30, (chart, row["file"], record.colour.cast_mired, wb and wb.params)
    # Under a chart that keeps some warmth (culinary: 30 % of it), more of it stays than under base.
    path = testdata / "wb" / "Pexels_dot_com_Isadora_Menezes.jpg"
    _, record, wb, _ = _planned(path, load_chart("culinary").chart)
    _, _, base_wb, _ = _planned(path)
    assert wb.params["mired_shift"] >= base_wb.params["mired_shift"] + 30


def test_the_pair_is_corrected_towards_its_truth(testdata: Path) -> None:
    (row,) = [r for r in _labels(testdata) if r["truth_log2_rb"]]
    _, _, wb, ops = _planned(testdata / "wb" / row["file"])
    g = wb.params["gains"]
    log2_rb = math.log2(g[0] / g[2])
    # The truth is +2.13 (a tungsten preset on a daylight scene, bluer than any black body: the colour
    # checker's greys read log2 R/B -2.2). FLOOR, not the target (within 0.5): the correction goes the right
    # way by +0.79 today; the greens that fill the frame pull every cue (see benchmarks/ACCURACY.md).
    assert 0.75 <= log2_rb <= float(row["truth_log2_rb"]) + 0.5


def test_skin_stays_skin_under_a_bare_bulb(testdata: Path) -> None:
    from benchmarks.accuracy_corpus import EYE_DRAWN_FACES

    rgb, record, wb, _ = _planned(testdata / "wb" / "Pexels_dot_com_Isadora_Menezes.jpg")
    ((x, y, w, h),) = EYE_DRAWN_FACES["wb/Pexels_dot_com_Isadora_Menezes"]
    face = np.median(rgb[int(y + h / 4):int(y + 3 * h / 4), int(x + w / 4):int(x + 3 * w / 4)].reshape(-1, 3), axis=0)
    assert is_skin(face * np.asarray(wb.params["gains"]))


def test_the_espresso_cup_stays_white(testdata: Path) -> None:
    from benchmarks.accuracy_corpus import PACKAGE_SAMPLES, _package_file  # noqa: F401

    path = _package_file("skimage", "data/coffee.png")
    rgb, record, wb, _ = _planned(path)
    # The cup's rim, left of the coffee (rows 95-125, columns 120-170 of the 400 x 600 photo): as
    # published it is a warm white; it must not turn cyan or blue (the old plan's -4364 K made it cyan).
    rim = np.median(rgb[95:125, 120:170].reshape(-1, 3), axis=0)
    gains = np.asarray(wb.params["gains"]) if wb else np.ones(3)
    _, a, b = linear_srgb_to_lab(rim * gains)
    assert a > -3 and b > -3, (a, b, wb and wb.params)
    assert wb is None or abs(wb.params["mired_shift"]) < 100


@pytest.fixture(scope="module")
def dinner(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> ImageRecord:
    work = tmp_path_factory.mktemp("dinner")
    shoot = work / "shoot"
    shoot.mkdir()
    (shoot / "dinner.jpg").write_bytes((testdata / "faces" / "pascal_voc" / "2008_002079.jpg").read_bytes())
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=work / "out", executor="local",
                                       graph_path=analysis_graph(work / "graph.yaml"), chart="social_media"))
    (record,) = result.records
    return record


def test_the_dinner_crops_cut_no_diner_and_say_who_is_left_out(dinner: ImageRecord) -> None:
    W, H = dinner.frame.width, dinner.frame.height
    faces = {i: (f.x, f.y, f.width, f.height) for i, f in enumerate(dinner.faces) if f.width >= 0.04 * min(W, H)}
    assert len(faces) >= 5  # the detector finds the diners
    crops = {o.params["aspect"]: o for o in dinner.operations if o.kind is OperationKind.CROP}
    flags = {o.params["aspect"]: o for o in dinner.operations if o.kind is OperationKind.FLAG
             and o.params["check"] == "crop"}
    for aspect in ("4:5", "9:16", "1:1"):
        shares = {i: kept_share(tuple(crops[aspect].params["box"]), 0.0, protected_region(f, W, H))
                  for i, f in faces.items()}
        assert all(s >= 0.999 or s <= 0.001 for s in shares.values()), (aspect, shares)
        kept = sum(s >= 0.999 for s in shares.values())
        assert kept >= 3, aspect  # was one of six
        if kept < len(faces):
            assert aspect in flags and len(flags[aspect].params["faces_left_out"]) == len(faces) - kept


def test_the_astronauts_head_is_kept_whole_at_the_top_of_the_frame(testdata: Path, tmp_path: Path) -> None:
    from PIL import Image

    from benchmarks.accuracy_corpus import _package_file

    # Her face 1 % from the top of a landscape cut of the photo: the 1:1 and 4:5 crops keep it and its headroom.
    im = Image.open(_package_file("skimage", "data/astronaut.png")).convert("RGB")
    im = im.crop((0, 70, 512, 400))  # 512 x 330: the brow-to-chin box (172, 72, 85, 100) now starts at y = 2
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    im.save(shoot / "astronaut_top.png")
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local",
                                       graph_path=analysis_graph(tmp_path / "graph.yaml"), chart="corporate_portrait"))
    (record,) = result.records
    assert record.faces
    W, H = record.frame.width, record.frame.height
    for op in (o for o in record.operations if o.kind is OperationKind.CROP):
        for f in record.faces:
            if f.width >= 0.04 * min(W, H):
                assert kept_share(tuple(op.params["box"]), op.params["angle_deg"],
                                  protected_region((f.x, f.y, f.width, f.height), W, H)) >= 0.999, op.params


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_a_black_and_white_portrait_gets_no_colour_judgement(testdata: Path, tmp_path: Path, mode: str) -> None:
    from PIL import Image

    from pipeline.imaging.measure.colour import MONOCHROME_CHROMA

    # A new user's black-and-white portrait was flagged "face(s) 1 not skin-coloured as shot": nothing in a
    # black-and-white picture has a colour to judge. The same photo in colour, under its bare bulb, still is.
    src = testdata / "wb" / "Pexels_dot_com_Isadora_Menezes.jpg"
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    grey = Image.open(src).convert("L")  # a grey JPEG, or a monochrome conversion saved in colour
    (grey if mode == "L" else grey.convert("RGB")).save(shoot / "bw.jpg", quality=90)
    (shoot / "colour.jpg").write_bytes(src.read_bytes())
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local",
                                       graph_path=analysis_graph(tmp_path / "graph.yaml"), chart="base"))
    by_name = {Path(r.source_path).name: r for r in result.records}
    bw, colour = by_name["bw.jpg"], by_name["colour.jpg"]
    assert bw.faces  # the detector finds her in black and white too
    assert bw.colour.chroma_p99 <= MONOCHROME_CHROMA < colour.colour.chroma_p99

    def judged(record: ImageRecord) -> list:
        return [o for o in record.operations if o.kind is OperationKind.WHITE_BALANCE
                or (o.kind is OperationKind.FLAG and o.params.get("check") in ("white_balance", "skin"))]

    assert judged(bw) == []
    assert any(o.kind is OperationKind.WHITE_BALANCE for o in judged(colour))


def test_a_toned_black_and_white_portrait_keeps_its_tone(testdata: Path, tmp_path: Path) -> None:
    from PIL import Image

    from benchmarks.toned_fit import TONINGS, jpeg, toned
    from pipeline.imaging.measure.colour import MONOCHROME_CHROMA, TONED_CHROMA
    from pipeline.kernel.records import RENDER_ON_ACCEPT
    from pipeline.planning.rules.white_balance import TONED_NOTE, is_toned

    # A toned black-and-white portrait (mmpose's 300w_indoor_020, a new user's try) was neutralised to grey: its
    # colour read as a cast. Sepia and a cyanotype of the same portrait keep their tone: the neutralising is
    # proposed, never applied, and their faces (the tone's colour) are not flagged "not skin". The photo in colour,
    # under its bare bulb, is no toned picture and is still judged as a colour photograph.
    src = testdata / "wb" / "Pexels_dot_com_Isadora_Menezes.jpg"
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    srgb8 = np.asarray(Image.open(src).convert("RGB"))
    for name in ("sepia", "cyanotype"):
        Image.fromarray(jpeg(toned(srgb8, TONINGS[name], 1.0), 85)).save(shoot / f"{name}.png")
    (shoot / "colour.jpg").write_bytes(src.read_bytes())
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local",
                                       graph_path=analysis_graph(tmp_path / "graph.yaml"), chart="base"))
    by_name = {Path(r.source_path).name: r for r in result.records}
    colour = by_name["colour.jpg"]
    assert not is_toned(colour) and colour.colour.off_tone_chroma_p99 > TONED_CHROMA
    assert any(o.kind is OperationKind.WHITE_BALANCE and TONED_NOTE not in o.reason for o in colour.operations)
    proposals = 0
    for name in ("sepia", "cyanotype"):
        record = by_name[f"{name}.png"]
        assert record.faces and is_toned(record), name
        assert record.colour.chroma_p99 > MONOCHROME_CHROMA and record.colour.off_tone_chroma_p99 <= TONED_CHROMA
        wb = [o for o in record.operations if o.kind is OperationKind.WHITE_BALANCE]
        assert all(o.params.get(RENDER_ON_ACCEPT) and TONED_NOTE in o.reason for o in wb), (name, wb)
        proposals += len(wb)
        assert not [o for o in record.operations if o.kind is OperationKind.FLAG
                    and o.params.get("check") in ("white_balance", "skin")], name
    assert proposals  # the cyanotype reads far too cool for a published photo: its neutralising is offered
