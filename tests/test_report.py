"""report.html: counts, reasons, overlays, and nothing fetched from outside the folder."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.equipment.findings import FindingKind
from pipeline.kernel.run import REPORT_NAME, RunSettings, process_shoot
from pipeline.outputs.equipment_report import LISTED_BODIES, EquipmentView, _bodies
from pipeline.outputs.report import _scenes_table, _Scene


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        for key in ("src", "href"):
            if key in a:
                self.refs.append(a[key])

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def report(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, _Collect, dict]:
    shoot = tmp_path_factory.mktemp("shoot")
    for p in faces_dir.glob("*.jpg"):
        shutil.copy(p, shoot)
    (shoot / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 200)
    (shoot / "2008_001009.xmp").write_text("<x:xmpmeta/>")  # a sidecar: skipped and counted
    out = tmp_path_factory.mktemp("out")
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="corporate_portrait"))
    parser = _Collect()
    parser.feed((out / REPORT_NAME).read_text(encoding="utf-8"))
    return out, parser, json.loads((out / "summary.json").read_text())


def test_report_is_readable_offline(report: tuple[Path, _Collect, dict]) -> None:
    out, parser, _ = report
    assert parser.refs, "the report links its previews and instructions"
    for ref in parser.refs:
        assert "://" not in ref and not ref.startswith("/"), ref
        assert (out / ref).is_file(), ref
    assert not any(tag == "script" for tag, _ in parser.tags)


def test_report_counts_and_overlays(report: tuple[Path, _Collect, dict]) -> None:
    out, parser, summary = report
    text = " ".join(parser.text)
    page = (out / REPORT_NAME).read_text(encoding="utf-8")
    assert f"<b>{summary['faces_to_brighten']}</b>faces to brighten" in page
    assert f"<b>{summary['verdicts'].get('reject', 0)}</b>rejected" in page
    assert f"<b>{len(summary['failed'])}</b>failed" in page
    assert "corrupt.jpg" in text  # failed files are listed with their reason
    assert summary["skipped_by_reason"] == {"sidecar (.xmp)": 1}
    assert "<h2>Not processed</h2>" in page and "<tr><td>1</td><td>sidecar (.xmp)</td></tr>" in page
    docs = [json.loads(p.read_text()) for p in (out / "instructions").glob("*.json")]
    n_faces = sum(len(d["faces"]) for d in docs)
    n_crops = sum(1 for d in docs for o in d["operations"] if o["kind"] == "crop")
    rects = [a for tag, a in parser.tags if tag == "rect"]
    dashed = [a for a in rects if "stroke-dasharray" in a]
    assert len(rects) - len(dashed) == n_faces > 0
    assert len(dashed) == n_crops > 0
    red = [a for a in rects if a.get("stroke") == "#e53935"]
    assert len(red) == sum(1 for d in docs for o in d["operations"] if o["kind"] == "brighten_face")


def test_a_padded_crop_is_drawn_whole_with_its_pad() -> None:
    # A packshot's square crop of a 3:2 frame reaches above and below it: the card was drawn on the picture alone,
    # the frame cut at its edges. The SVG now takes in the whole crop, its pad drawn in the colour delivered
    # (white where the backdrop is whitened, else the backdrop's colour encoded for sRGB).
    import re

    from pipeline.outputs.report import ReportImage, _overlay

    def doc(*extra: dict) -> dict:
        crop = {"kind": "crop", "params": {"aspect": "1:1", "box": [25.0, -25.0, 150.0, 150.0], "angle_deg": 0.0,
                                           "pad_rgb": [0.9, 0.9, 0.9]}, "review": {"status": "pending"}}
        return {"image": {"width": 200, "height": 100}, "faces": [], "operations": [crop, *extra]}

    svg = _overlay(ReportImage("cup.jpg", "ok", doc=doc(), picture="cup.jpg"))
    assert 'viewBox="0 -25 200 150"' in svg
    pads = re.findall(r'<rect x="(-?\d+)" y="(-?\d+)" width="(\d+)" height="(\d+)" fill="([^"]+)"/>', svg)
    assert [p[:4] for p in pads] == [("25", "-25", "150", "25"), ("25", "100", "150", "25")]
    assert {p[4] for p in pads} == {"rgb(243,243,243)"}  # 0.9 linear, as sRGB
    whitened = _overlay(ReportImage("cup.jpg", "ok", picture="cup.jpg", doc=doc(
        {"kind": "whiten_backdrop", "params": {}, "review": {"status": "pending"}})))
    assert 'fill="#fff"' in whitened
    # A crop inside the frame changes nothing.
    inside = doc()
    inside["operations"][0]["params"] = {"aspect": "1:1", "box": [50.0, 0.0, 100.0, 100.0], "angle_deg": 0.0}
    assert 'viewBox="0 0 200 100"' in _overlay(ReportImage("cup.jpg", "ok", doc=inside, picture="cup.jpg"))


def test_a_pad_is_drawn_at_the_level_of_a_sweep_falling_off() -> None:
    # A sweep darker towards its corners is padded at its level along the edge the pad carries on from (the renderer
    # does so, without a seam): the report drew such a pad in the sweep's brightest colour, a step of 40 levels
    # against the picture's darker edge. Now each band is a gradient along that edge, at the renderer's levels.
    import re

    import numpy as np

    from pipeline.imaging.color import linear_to_srgb
    from pipeline.imaging.measure.exposure import falloff_level
    from pipeline.outputs.report import ReportImage, _overlay

    falloff = [0.0, 0.0, 0.0, -1.2, 0.0, 0.0]  # 2**(-1.2 x**2): brightest at the left edge, 1.2 EV down at the right
    crop = {"kind": "crop", "review": {"status": "pending"},
            "params": {"aspect": "1:1", "box": [-20.0, 0.0, 100.0, 100.0], "angle_deg": 0.0,
                       "pad_rgb": [0.9, 0.9, 0.9], "pad_falloff": falloff}}
    doc = {"image": {"width": 60, "height": 100}, "faces": [], "operations": [crop]}
    svg = _overlay(ReportImage("cup.jpg", "ok", doc=doc, picture="cup.jpg"))

    def encoded(level: float) -> int:
        return int(np.round(255 * linear_to_srgb(np.float32(0.9 * level))))

    bands = re.findall(r'<linearGradient id="([^"]+)" gradientUnits="userSpaceOnUse" x1="(\d+)" y1="(\d+)" '
                       r'x2="(\d+)" y2="(\d+)">(.*?)</linearGradient></defs><rect x="(-?\d+)"[^>]*fill="url\(#\1\)"', svg)
    assert [b[1:5] + (b[6],) for b in bands] == [("0", "0", "0", "100", "-20"), ("0", "0", "0", "100", "60")]
    for band, x in zip(bands, (0.0, 1.0)):  # beside the frame: the left edge's level, then the right's, down
        greys = [int(c.split(",")[1]) for c in re.findall(r'stop-color="(rgb\([^"]+\))"', band[5])]
        level = float(falloff_level(falloff, np.float32(x), np.float32(0.5)))
        assert greys == [encoded(level)] * 9, (greys, encoded(level))
    assert encoded(1.0) - encoded(2**-1.2) > 40  # the right pad is drawn at the darker edge's level, not the left's
    # A pad across the frame's top follows that edge's level from left to right, each band its own gradient id.
    crop["params"]["box"] = [0.0, -20.0, 60.0, 120.0]
    doc["image"]["height"] = 80
    svg = _overlay(ReportImage("cup.jpg", "ok", doc=doc, picture="cup.jpg"))
    top = re.search(r'x1="0" y1="0" x2="60" y2="0">(.*?)</linearGradient>', svg)
    assert top is not None
    greys = [int(c.split(",")[1]) for c in re.findall(r'stop-color="(rgb\([^"]+\))"', top.group(1))]
    assert greys[0] == encoded(1.0) and greys[-1] == encoded(2**-1.2) and greys == sorted(greys, reverse=True)
    ids = re.findall(r'linearGradient id="([^"]+)"', svg)
    assert len(ids) == len(set(ids)) == 2


def test_scenes_of_one_frame_are_counted_not_listed() -> None:
    group = _Scene(frames=3, first="2026-01-01T10:00:00", last="2026-01-01T10:05:00", ev_min=0.5, ev_max=0.5)
    group.matched["exposure"] = 3
    html = _scenes_table({1: _Scene(frames=1), 2: group, 3: _Scene(frames=1)})
    assert "scene 2</span>" in html and "exposure on 3" in html and "10:00:00 &ndash; 10:05:00" in html
    assert "scene 1</span>" not in html and "scene 3</span>" not in html
    assert "2 frames are scenes of their own" in html
    # A shoot of unrelated photos: no table of single frames, one line.
    alone = _scenes_table({k: _Scene(frames=1) for k in range(1, 151)})
    assert "<table>" not in alone and "150 frames are scenes of their own" in alone
    assert "1 frame is a scene of its own" in _scenes_table({1: _Scene(frames=1), 2: group})


def test_camera_bodies_with_nothing_found_are_counted_when_there_are_many() -> None:
    def body(k: int) -> dict:
        return {"body": f"Canon EOS #{k}", "photographers": [("Ann", 2)], "frames": 2, "focus_judged": 2}

    bodies = [body(k) for k in range(LISTED_BODIES + 3)]
    miss = {"kind": FindingKind.FOCUS_MISS, "camera_make": "Canon", "camera_model": "EOS", "camera_serial": "7"}
    html = "".join(_bodies(EquipmentView([miss], [], bodies)))
    assert html.count("<tr>") == 2 and "Canon EOS #7" in html and "1 of 2" in html
    assert f"Another {LISTED_BODIES + 2} camera bodies ({2 * (LISTED_BODIES + 2)} frames)" in html
    # A few bodies are each a row, found on or not.
    few = "".join(_bodies(EquipmentView([], [], bodies[:3])))
    assert few.count("<tr>") == 4 and "camera bodies (" not in few
    alone = "".join(_bodies(EquipmentView([], [], bodies)))
    assert "<table>" not in alone and f"All {LISTED_BODIES + 3} camera bodies" in alone


def test_many_failed_files_are_counted_by_reason_before_they_are_listed() -> None:
    from pipeline.outputs.report import FAILED_BY_REASON_FROM, ReportImage, render_report

    # Pillow's 1,067 test images failed 373 files: a list of 373 rows, of some forty reasons. From ten failures the
    # report counts them by reason (their sizes and byte counts left out, so that files failing alike read alike).
    small = [ReportImage(f"icon{i}.png", "failed", error=f"decode_raw: image is {4 + i}x{3 + i} px: too small to "
                         "measure (postprod needs at least 8 px a side)") for i in range(7)]
    junk = [ReportImage(f"notes{i}.txt", "failed", error="decode_raw: not an image: neither LibRaw nor Pillow "
                        "recognises this file") for i in range(4)]
    page = render_report(small + junk, {}, "base")
    assert len(small + junk) >= FAILED_BY_REASON_FROM
    assert "<h2>Failed files, by reason</h2>" in page
    assert ("<tr><td>7</td><td>decode_raw: image is …x… px: too small to measure (postprod needs at least … px a "
            "side)</td></tr>") in page
    assert "<tr><td>4</td><td>decode_raw: not an image: neither LibRaw nor Pillow recognises this file</td></tr>" in page
    assert page.count("<td class=path>") == 11  # every file still listed, with its own reason
    assert "icon6.png</td><td>decode_raw: image is 10x9 px" in page
    # A few failures are only listed.
    assert "by reason" not in render_report(small[:3], {}, "base")


def test_the_report_draws_blurs_red_eyes_and_marked_lifts_not_the_turned_down() -> None:
    from pipeline.outputs.report import ReportImage, _overlay

    ops = [{"kind": "blur_face", "params": {"box": [10.0, 10.0, 30.0, 40.0], "face_box": [15.0, 20.0, 20.0, 20.0]},
            "review": {"status": "pending"}},
           {"kind": "red_eye", "params": {"face_index": 0, "eyes": [[120.0, 50.0, 4.0], [140.0, 50.0, 4.0]]},
            "review": {"status": "accepted"}},
           {"kind": "brighten_face", "params": {"box": [60.0, 20.0, 30.0, 30.0], "ev": 0.5, "feather_px": 7.5,
                                                "drawn": True}, "review": {"status": "accepted"}},
           {"kind": "blur_face", "params": {"box": [150.0, 10.0, 30.0, 40.0], "drawn": True},
            "review": {"status": "rejected"}}]
    svg = _overlay(ReportImage("a.jpg", "ok", doc={"image": {"width": 200, "height": 100}, "faces": [],
                                                   "operations": ops}))
    assert svg.count('stroke="#00acc1"') == 1  # the blur turned down is not drawn
    assert svg.count('<circle cx="120" cy="50"') == 1 and svg.count('<circle cx="140" cy="50"') == 1
    assert '<ellipse cx="75" cy="35" rx="15" ry="15" fill="none" stroke="#e53935"' in svg


def test_files_delivered_smaller_than_their_box_are_counted(report: tuple[Path, _Collect, dict]) -> None:
    # PASCAL VOC's photos (500 px) under corporate_portrait (web 1600 x 2000, avatar 800 x 800, max_upscale 1): every
    # boxed rendition is delivered at the crop's own pixels, and the run says so in its summary and report.
    import pyarrow.parquet as pq

    from charts.loader import load_chart

    out, parser, summary = report
    boxes = {n: r.box for n, r in load_chart("corporate_portrait").chart.renditions.items() if r.box is not None}
    under: dict[str, int] = {}
    images = set()
    for e in pq.read_table(out / "exports.parquet").to_pylist():
        box = boxes.get(e["rendition"])
        if box and (e["width"] < box[0] or e["height"] < box[1]):
            under[e["rendition"]] = under.get(e["rendition"], 0) + 1
            images.add(e["source_path"])
    assert under and summary["delivered_smaller"] == under
    assert summary["images_delivered_smaller"] == len(images)
    text = " ".join(parser.text)
    assert "Delivered smaller than asked" in text and f"{under['avatar']} avatar" in text


def test_the_retoucher_tasks_are_counted_by_kind_above_their_table() -> None:
    """The task table of a large shoot is long (230 rows for 816 listing photos): the line above it says how many of
    each kind, a proposal apart from a task by hand; file names in it are not broken mid-word."""
    from pipeline.outputs.report import ReportBuilder, ReportImage

    def doc(*ops: tuple[str, bool]) -> dict:
        return {"image": {"width": 300, "height": 200}, "verdict": "flag", "faces": [], "faces_to_brighten": 0,
                "summary": "", "operations": [
                    {"op_id": f"{kind}-{i}", "kind": kind, "applied_by": "retoucher", "reason": f"{kind} reason",
                     "params": {"render_on_accept": True} if proposal else {}, "review": {"status": "pending"}}
                    for i, (kind, proposal) in enumerate(ops)]}

    with ReportBuilder() as b:
        b.add(ReportImage("a_bedroom.jpg", "ok", doc=doc(("straighten", False), ("lift_shadows", True))))
        b.add(ReportImage("b_kitchen.jpg", "ok", doc=doc(("straighten", False), ("flag", False))))
        page = "".join(b.chunks({"shoot": "s", "exports": 0}, "real_estate_interiors"))
    assert "<h2>For the retoucher</h2><p>straighten: 2, lift shadows (to confirm): 1</p>" in page
    assert page.count("<td class=path>", page.index('<table class="tasks">')) == 3
    assert ".tasks td.path{word-break:normal;white-space:nowrap}" in page
