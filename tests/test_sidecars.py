"""The photographer's culling from the shoot's XMP sidecars: which file a sidecar belongs to, what it says
(read from sidecars Lightroom and Camera Raw wrote), and what a run does with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline.cli import EXIT_OK, main
from pipeline.kernel.ingest import scan_shoot
from pipeline.kernel.sidecars import REJECTED_REASON, Culling, _rating, read_culling, sidecar_owners

ADOBE = Path(__file__).parent / "data" / "adobe_xmp"


def _sidecar(rating: str | None = None, label: str | None = None, keywords: tuple[str, ...] = ()) -> str:
    attrs = (f' xmp:Rating="{rating}"' if rating is not None else "") + (f' xmp:Label="{label}"' if label else "")
    subject = ("<dc:subject><rdf:Bag>" + "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
               + "</rdf:Bag></dc:subject>") if keywords else ""
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
            f' xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"{attrs}>'
            f'{subject}</rdf:Description></rdf:RDF></x:xmpmeta>\n<?xpacket end="w"?>\n')


def test_a_sidecar_belongs_to_the_file_it_is_named_after() -> None:
    files = ["day1/IMG_0002.CR2", "day1/IMG_0002.JPG", "day1/IMG_0003.NEF", "day1/IMG_0003.JPG",
             "day2/IMG_0002.CR2", "day1/shoot.v2.0004.dng", "day1/IMG_0005.CR3"]
    sidecars = ["day1/IMG_0002.xmp", "day1/img_0003.nef.XMP", "day1/IMG_0003.xmp", "day1/shoot.v2.0004.xmp",
                "day1/other.xmp"]
    assert sidecar_owners(sidecars, files) == {
        "day1/IMG_0002.CR2": "day1/IMG_0002.xmp",  # Adobe's name: every file of the stem (one photo, one rating)
        "day1/IMG_0002.JPG": "day1/IMG_0002.xmp",
        "day1/IMG_0003.NEF": "day1/img_0003.nef.XMP",  # darktable's name, for that file alone, wins; case aside
        "day1/IMG_0003.JPG": "day1/IMG_0003.xmp",
        "day1/shoot.v2.0004.dng": "day1/shoot.v2.0004.xmp",  # dots in the stem
    }  # another folder's sidecar is not day2's; a file without one has none


def test_the_culling_lightroom_and_camera_raw_wrote_is_read() -> None:
    # Lightroom 6.1: three stars and keywords; Lightroom Classic 9.1: a colour label of a localised set;
    # Camera Raw 9.4's own sidecar of a CR2: unrated, no label, no keyword, nothing to keep.
    assert read_culling(ADOBE, "02_lr6.1_JPG-sidecar_rating-keywords_IMG_5910.xmp") == Culling(
        3, None, ("Alvin the Squirrel", "Berkley", "USA"), "02_lr6.1_JPG-sidecar_rating-keywords_IMG_5910.xmp")
    labelled = read_culling(ADOBE, "03_lrc9.1_JPG-embedded_label-Verde_iptc-mess.xmp")
    assert labelled is not None and (labelled.rating, labelled.label) == (0, "Verde")
    assert read_culling(ADOBE, "01_acr9.4_CR2-sidecar_canon-eos30d.xmp") is None


def test_a_damaged_sidecar_is_left_out_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "IMG_0001.xmp").write_text("<x:xmpmeta><rdf:RDF>cut short")
    assert read_culling(tmp_path, "IMG_0001.xmp") is None
    assert "IMG_0001.xmp: no XMP read from this sidecar" in caplog.text


@pytest.mark.parametrize(("value", "rating"), [("-1", -1), ("3", 3), ("3.0", 3), ("0", 0), ("5", 5), ("6", None),
                                               ("-2", None), ("2.5", None), ("nan", None), ("", None), (None, None)])
def test_rating_is_a_whole_number_from_minus_one_to_five(value: str | None, rating: int | None) -> None:
    assert _rating(value) == rating


def test_a_rejected_frame_is_skipped_keeping_the_others_numbers_and_names(tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for i, name in enumerate(["IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg"]):
        Image.fromarray(np.full((32, 32, 3), 60 + 40 * i, np.uint8)).save(shoot / name)
    (shoot / "IMG_0002.xmp").write_text(_sidecar("-1"))
    (shoot / "IMG_0003.xmp").write_text(_sidecar("4", "Green", ("terrace",)))
    kept = scan_shoot(shoot)
    assert [(t.source_path, t.seq) for t in kept.tasks] == [("IMG_0001.jpg", 1), ("IMG_0003.jpg", 3)]
    assert [(s.source_path, s.reason) for s in kept.skipped if s.reason == REJECTED_REASON] == [
        ("IMG_0002.jpg", REJECTED_REASON)]
    assert kept.culling == {"IMG_0003.jpg": Culling(4, "Green", ("terrace",), "IMG_0003.xmp")}
    every = scan_shoot(shoot, rejects="process")
    assert [t.source_path for t in every.tasks] == ["IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg"]
    assert every.culling["IMG_0002.jpg"].rejected
    with pytest.raises(ValueError, match="skip, process"):
        scan_shoot(shoot, rejects="keep")


def test_a_run_keeps_the_photographers_culling_until_a_reviewer_decides(tmp_path: Path, raw_dir: Path,
                                                                         faces_dir: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW", shoot / "IMG_0002.CRW")
    shutil.copy(ADOBE / "02_lr6.1_JPG-sidecar_rating-keywords_IMG_5910.xmp", shoot / "IMG_0002.xmp")
    shutil.copy(faces_dir / "2008_001009.jpg", shoot / "IMG_0003.jpg")
    (shoot / "IMG_0003.xmp").write_text(_sidecar("-1"))
    out = tmp_path / "out"

    def run(*extra: str) -> dict:
        result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local", *extra])
        assert result.exit_code == EXIT_OK, result.output
        return json.loads((out / "summary.json").read_text())

    def review(name: str) -> dict:
        return json.loads((out / "instructions" / f"{name}.json").read_text())["review"]

    first = run()
    assert first["processed"] == 1 and first["skipped_by_reason"][REJECTED_REASON] == 1
    assert first["photographer_culling"] == 1
    assert review("IMG_0002.CRW") == {"rating": 3, "label": None, "keywords": ["Alvin the Squirrel", "Berkley", "USA"],
                                      "flag": None, "by": "photographer (IMG_0002.xmp)", "at": None}
    # postprod's own IMG_0002.xmp replaces the photographer's beside the RAW: it must carry the stars.
    packet = (out / "xmp" / "IMG_0002.xmp").read_text()
    assert 'xmp:Rating="3"' in packet and "<rdf:li>Berkley</rdf:li>" in packet
    assert not (out / "instructions" / "IMG_0003.jpg.json").exists()
    from pipeline.review.app import create_app

    gallery = {i["source_path"]: i for i in create_app(out).test_client().get("/api/images").get_json()["images"]}
    assert (gallery["IMG_0002.CRW"]["stars"], gallery["IMG_0002.CRW"]["flag"]) == (3, None)  # the review app's too
    assert '<span class=culling title="culled by photographer (IMG_0002.xmp)">\u2605\u2605\u2605</span>' in (
        out / "report.html").read_text(encoding="utf-8")
    # Developed on request: its instructions say the photographer rejected it; a rerun keeps the folder's choice.
    assert run("--photographer-rejects", "process")["processed"] == 2
    assert review("IMG_0003.jpg")["flag"] == "reject" and review("IMG_0003.jpg")["rating"] == -1
    assert "\u2715 rejected in culling</span>" in (out / "report.html").read_text(encoding="utf-8")
    assert run()["processed"] == 2
    # The sidecar edited (the photographer changed their mind): the new stars; a reviewer's decision wins.
    (shoot / "IMG_0002.xmp").write_text(_sidecar("5"))
    run()
    assert review("IMG_0002.CRW")["rating"] == 5
    doc_path = out / "instructions" / "IMG_0002.CRW.json"
    doc = json.loads(doc_path.read_text())
    doc["review"] = {"rating": 2, "label": "Red", "keywords": [], "flag": None, "by": "anna",
                     "at": "2026-12-04T10:00:00Z"}
    doc_path.write_text(json.dumps(doc))
    run()
    assert review("IMG_0002.CRW")["by"] == "anna" and review("IMG_0002.CRW")["rating"] == 2
    # Skipped again when asked: its deliveries go.
    assert run("--photographer-rejects", "skip")["processed"] == 1
    assert not (out / "instructions" / "IMG_0003.jpg.json").exists()


needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed (CI installs it)")


def _embed(path: Path, packet: Path) -> None:
    import subprocess

    subprocess.run(["exiftool", "-q", "-overwrite_original", f"-xmp<={packet}", str(path)], check=True)


@needs_exiftool
def test_the_culling_inside_a_jpeg_or_a_dng_is_read_and_a_sidecar_wins(tmp_path: Path, raw_dir: Path,
                                                                        faces_dir: Path) -> None:
    # exiftool writes Adobe's packets where Lightroom and Photo Mechanic do: a JPEG's APP1, a DNG's XMLPacket tag.
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(faces_dir / "2008_001009.jpg", shoot / "IMG_0001.jpg")
    _embed(shoot / "IMG_0001.jpg", ADOBE / "05a_lr6.1_JPG-export_rotated-crop-neg1.06_IMG_6455.xmp")
    shutil.copy(raw_dir / "tinydng_colorchart.dng", shoot / "IMG_0002.dng")
    (tmp_path / "reject.xmp").write_text(_sidecar("-1"))
    _embed(shoot / "IMG_0002.dng", tmp_path / "reject.xmp")
    shutil.copy(faces_dir / "2008_001322.jpg", shoot / "IMG_0003.jpg")
    (tmp_path / "two.xmp").write_text(_sidecar("2", "Red"))
    _embed(shoot / "IMG_0003.jpg", tmp_path / "two.xmp")
    (shoot / "IMG_0003.xmp").write_text(_sidecar("5"))  # the sidecar is the later word
    shot = scan_shoot(shoot)
    assert [t.source_path for t in shot.tasks] == ["IMG_0001.jpg", "IMG_0003.jpg"]
    assert [s.source_path for s in shot.skipped if s.reason == REJECTED_REASON] == ["IMG_0002.dng"]
    assert shot.culling == {"IMG_0001.jpg": Culling(4, None, ("Mono-tó", "USA"), "IMG_0001.jpg"),
                            "IMG_0003.jpg": Culling(5, None, (), "IMG_0003.xmp")}
    assert scan_shoot(shoot, rejects="process").culling["IMG_0002.dng"] == Culling(-1, None, (), "IMG_0002.dng")


def test_a_jpegs_packet_is_found_past_the_scans_first_bytes(tmp_path: Path, faces_dir: Path) -> None:
    from pipeline.kernel.sidecars import embedded_packet, packet_culling

    packet = _sidecar("3", "Blue").encode()
    jpeg = (faces_dir / "2008_001009.jpg").read_bytes()
    big_app2 = b"\xff\xe2" + (65_000).to_bytes(2, "big") + bytes(64_998)  # an ICC profile's size, say
    xmp_app1 = b"\xff\xe1" + (2 + 29 + len(packet)).to_bytes(2, "big") + b"http://ns.adobe.com/xap/1.0/\x00" + packet
    data = jpeg[:2] + big_app2 + xmp_app1 + jpeg[2:]
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    found = embedded_packet(str(path), "jpeg", data[:65536])
    assert found == packet
    assert packet_culling(found, "a.jpg") == Culling(3, "Blue", (), "a.jpg")
    assert embedded_packet(str(faces_dir / "2008_001009.jpg"), "jpeg", jpeg[:65536]) is None  # a camera's: none
    assert embedded_packet(str(path), "png", data[:65536]) is None


def _flagged(attrs: str) -> str:
    """A sidecar with ``attrs`` (XML attributes) in the namespaces of Lightroom's, digiKam's and Photo Mechanic's
    culling flags, as those tools write them (pick and good, PickLabel, Tagged)."""
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
            ' xmlns:xmpDM="http://ns.adobe.com/xmp/1.0/DynamicMedia/" xmlns:digiKam="http://www.digikam.org/ns/1.0/"'
            ' xmlns:photomechanic="http://ns.camerabits.com/photomechanic/1.0/"'
            f' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" {attrs}/></rdf:RDF></x:xmpmeta>\n')


@pytest.mark.parametrize(("attrs", "flag", "rating"), [
    # Lightroom Classic 15's reject of a three-star frame (it keeps the stars beside the flag), its pick, unflagged.
    ('photoshop:SidecarForExtension="NEF" xmp:Rating="3" xmpDM:pick="-1" xmpDM:good="false"', "reject", 3),
    ('xmpDM:pick="1" xmpDM:good="true"', "pick", None),
    ('xmp:Rating="2" xmpDM:pick="0"', None, 2),
    ('xmpDM:good="True"', "pick", None),  # Adobe's "good take" alone
    ('digiKam:PickLabel="1"', "reject", None),
    ('digiKam:PickLabel="3"', "pick", None),
    ('xmp:Rating="1" digiKam:PickLabel="2"', None, 1),  # pending: no verdict
    ('photomechanic:Tagged="True" photomechanic:ColorClass="3"', "pick", None),  # Photo Mechanic's tag
    ('photomechanic:Tagged="True" xmpDM:pick="-1"', "reject", None),  # a reject wins over a pick
])
def test_the_pick_and_reject_flags_culling_tools_write_are_read(tmp_path: Path, attrs: str, flag: str | None,
                                                                  rating: int | None) -> None:
    (tmp_path / "IMG_0001.xmp").write_text(_flagged(attrs))
    culling = read_culling(tmp_path, "IMG_0001.xmp")
    assert culling is not None and (culling.flag, culling.rating) == (flag, rating)
    assert culling.rejected == (flag == "reject")
    review = culling.review()
    assert review["flag"] == flag and review["rating"] == (-1 if flag == "reject" else rating or 0)


def test_nothing_flagged_nothing_read(tmp_path: Path) -> None:
    (tmp_path / "IMG_0001.xmp").write_text(_flagged('xmpDM:pick="0" xmpDM:good="false" photomechanic:Tagged="False"'))
    assert read_culling(tmp_path, "IMG_0001.xmp") is None


def test_a_frame_rejected_in_lightroom_is_skipped_and_a_pick_delivered_with_its_flag(tmp_path: Path) -> None:
    # Before, only xmp:Rating -1 (Bridge's reject) was read: a frame the photographer marked X in Lightroom Classic
    # 13.2 or later, or rejected in digiKam, was developed and delivered as a keeper.
    from pipeline.outputs.xmp import ImageDecision, xmp_packet
    from pipeline.kernel.sidecars import culling_flag
    from pipeline.imaging.identity import read_xmp_packet

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for i in range(1, 5):
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(shoot / f"IMG_000{i}.jpg")
    (shoot / "IMG_0001.xmp").write_text(_flagged('xmp:Rating="3" xmpDM:pick="-1" xmpDM:good="false"'))
    (shoot / "IMG_0002.xmp").write_text(_flagged('digiKam:PickLabel="1"'))
    (shoot / "IMG_0003.xmp").write_text(_flagged('xmp:Rating="4" photomechanic:Tagged="True"'))
    shot = scan_shoot(shoot)
    assert [t.source_path for t in shot.tasks] == ["IMG_0003.jpg", "IMG_0004.jpg"]
    assert sorted(s.source_path for s in shot.skipped if s.reason == REJECTED_REASON) == ["IMG_0001.jpg",
                                                                                          "IMG_0002.jpg"]
    assert shot.culling == {"IMG_0003.jpg": Culling(4, None, (), "IMG_0003.xmp", "pick")}
    # The XMP postprod delivers (it replaces the photographer's sidecar) keeps the flag as Lightroom writes it.
    doc = {"source_path": "IMG_0003.CR2", "xmp_form": "sidecar", "operations": [], "review": {},
           "image": {"source_kind": "raw", "width": 32, "height": 32}}
    for flag, rating, pick in (("pick", 4, "1"), ("reject", -1, "-1"), (None, -1, "-1"), (None, 4, None)):
        packet = xmp_packet(doc, ImageDecision(rating=rating, flag=flag))
        assert (f'xmpDM:pick="{pick}"' in packet) if pick else "xmpDM" not in packet
        tags = read_xmp_packet(packet.encode())
        assert tags is not None and culling_flag(tags) == (flag or ("reject" if rating == -1 else None))


def test_a_flag_inside_a_jpeg_or_a_dng_is_read() -> None:
    from pipeline.kernel.sidecars import packet_culling

    rejected = packet_culling(_flagged('xmpDM:pick="-1" xmpDM:good="false"').encode(), "a.jpg")
    assert rejected is not None and rejected.rejected and rejected.source == "a.jpg"
    tagged = packet_culling(_flagged('photomechanic:Tagged="True"').encode(), "b.dng")
    assert tagged == Culling(None, None, (), "b.dng", "pick")


def test_only_the_photographers_picks_are_developed_when_asked(tmp_path: Path) -> None:
    # A Photo Mechanic or Lightroom shoot uploaded whole, its selects tagged or flagged P: `--photographer-picks only`
    # delivers the selects, the other frames skipped and counted, keeping their numbers; a reject is still a reject.
    from pipeline.kernel.sidecars import NOT_PICKED_REASON

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):  # (pictures, not constant frames: those fail as "no picture in the file")
        Image.fromarray(rng.integers(20 * i, 60 + 20 * i, (64, 96, 3), dtype=np.uint8)).save(shoot / f"IMG_000{i}.jpg")
    (shoot / "IMG_0002.xmp").write_text(_flagged('photomechanic:Tagged="True"'))
    (shoot / "IMG_0004.xmp").write_text(_flagged('xmp:Rating="5" xmpDM:pick="1" xmpDM:good="true"'))
    (shoot / "IMG_0005.xmp").write_text(_flagged('xmpDM:pick="-1"'))
    every = scan_shoot(shoot)
    assert [t.source_path for t in every.tasks] == ["IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg", "IMG_0004.jpg"]
    assert every.picked == 2
    picked = scan_shoot(shoot, picks="only")
    assert [(t.source_path, t.seq) for t in picked.tasks] == [("IMG_0002.jpg", 2), ("IMG_0004.jpg", 4)]
    assert sorted((s.source_path, s.reason) for s in picked.skipped if not s.reason.startswith("sidecar")) == [
        ("IMG_0001.jpg", NOT_PICKED_REASON), ("IMG_0003.jpg", NOT_PICKED_REASON), ("IMG_0005.jpg", REJECTED_REASON)]
    with pytest.raises(ValueError, match="all, only, 1, 2, 3, 4, 5 or label:NAME"):
        scan_shoot(shoot, picks="some")
    # Through the CLI: the choice is the folder's for its reruns; a shoot with no pick is developed whole, said.
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local",
                                       "--photographer-picks", "only"])
    assert result.exit_code == EXIT_OK, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["processed"], summary["photographer_picked"], summary["photographer_picks"]) == (2, 2, "only")
    assert summary["skipped_by_reason"][NOT_PICKED_REASON] == 2
    rerun = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local", "--json"])
    assert rerun.exit_code == EXIT_OK, rerun.output
    assert json.loads(rerun.stdout)["processed"] == 2
    for name in ("IMG_0002.xmp", "IMG_0004.xmp"):
        (shoot / name).unlink()
    whole = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local"])
    assert whole.exit_code == EXIT_OK, whole.output
    assert "no frame is picked (a P flag, a tag): every frame developed" in whole.output
    assert json.loads((out / "summary.json").read_text())["processed"] == 4


@pytest.mark.parametrize(("attrs", "label"), [
    ('xmp:Rating="4" digiKam:ColorLabel="4" digiKam:PickLabel="3"', "Green"),  # as digiKam writes a sidecar
    ('digiKam:ColorLabel="6"', "Purple"),  # digiKam's magenta, Lightroom's purple
    ('digiKam:ColorLabel="2"', "Orange"),
    ('xmp:Rating="1" digiKam:ColorLabel="0"', None),
    ('xmp:Label="Red" digiKam:ColorLabel="5"', "Red"),  # a Label Lightroom or Bridge wrote is the word
])
def test_digikams_numbered_colour_labels_are_read(tmp_path: Path, attrs: str, label: str | None) -> None:
    (tmp_path / "IMG_0001.xmp").write_text(_flagged(attrs))
    culling = read_culling(tmp_path, "IMG_0001.xmp")
    assert culling is not None and culling.label == label


# --- stars rated in the camera: written into the file itself -------------------------------------------------------


def _canon_packet(rating: int) -> bytes:
    # As an EOS R body writes it into a CR3 (an element, not an attribute; 0 when unrated), padded as Canon pads it.
    return ("<?xpacket begin='\ufeff' id='W5M0MpCehiHzreSzNTczkc9d'?><x:xmpmeta xmlns:x=\"adobe:ns:meta/\">"
            "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description rdf:about=\"\" "
            f"xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\"><xmp:Rating>{rating}</xmp:Rating></rdf:Description>"
            "</rdf:RDF></x:xmpmeta>" + " " * 2048 + "<?xpacket end='w'?>").encode()


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def _cr3(rating: int) -> bytes:
    """An ISO base media file laid out as a CR3 is: ftyp, moov, Canon's XMP box, its preview's box, mdat."""
    preview_uuid = bytes.fromhex("eaf42b5e1c984b88b9fbb7dc406e4d16")
    xmp_uuid = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")
    return (_box(b"ftyp", b"crx " + bytes(4) + b"crx isom") + _box(b"moov", bytes(70_000))
            + _box(b"uuid", xmp_uuid + _canon_packet(rating)) + _box(b"uuid", preview_uuid + bytes(500))
            + _box(b"mdat", bytes(1000)))


def _tiff_raw(path: Path, packet: bytes | None, magic: bytes = b"II*\x00") -> None:
    """A TIFF-structured RAW's first IFD (a NEF's, an ORF's with its own magic), its XMP where the camera puts it."""
    info = {700: packet} if packet is not None else {}
    Image.new("RGB", (32, 32)).save(path, format="TIFF", tiffinfo=info)
    data = bytearray(path.read_bytes())
    data[:4] = magic
    path.write_bytes(bytes(data))


def _camera_exif(endian: str, fujifilm: int | None = None, rating: int | None = None) -> bytes:
    """A camera JPEG's APP1 EXIF: IFD0's Rating (0x4746) where ``rating`` is given; FUJIFILM maker notes
    (little-endian, as Fujifilm writes them whatever the EXIF's order) holding the in-camera rating, tag 0x1431,
    where ``fujifilm`` is."""
    import struct

    entries = []
    if rating is not None:
        entries.append(struct.pack(endian + "HHI", 0x4746, 3, 1) + struct.pack(endian + "H", rating) + bytes(2))
    tail = b""
    if fujifilm is not None:
        exif_at = 8 + 2 + 12 * (len(entries) + 1) + 4
        note = b"FUJIFILM" + struct.pack("<I", 12) + struct.pack("<H", 2)
        note += struct.pack("<HHI", 0x0000, 7, 4) + b"0130" + struct.pack("<HHII", 0x1431, 4, 1, fujifilm)
        note += struct.pack("<I", 0)
        entries.append(struct.pack(endian + "HHII", 0x8769, 4, 1, exif_at))
        tail = struct.pack(endian + "H", 1) + struct.pack(endian + "HHII", 0x927C, 7, len(note), exif_at + 18)
        tail += struct.pack(endian + "I", 0) + note
    ifd0 = struct.pack(endian + "H", len(entries)) + b"".join(entries) + struct.pack(endian + "I", 0)
    body = b"Exif\x00\x00" + (b"II" if endian == "<" else b"MM") + struct.pack(endian + "HI", 42, 8) + ifd0 + tail
    return b"\xff\xe1" + (2 + len(body)).to_bytes(2, "big") + body


def _fujifilm_jpeg(jpeg: bytes, rating: int, endian: str = "<") -> bytes:
    return jpeg[:2] + _camera_exif(endian, fujifilm=rating) + jpeg[2:]


def _raf(jpeg: bytes) -> bytes:
    header = b"FUJIFILMCCD-RAW 0201FF392201".ljust(84, b"\x00")
    return header + (148).to_bytes(4, "big") + len(jpeg).to_bytes(4, "big") + bytes(148 - 92) + jpeg + bytes(4096)


def test_stars_rated_in_the_camera_are_read_from_the_raw_itself(tmp_path: Path, faces_dir: Path) -> None:
    # Canon writes a CR3's rating into its XMP box, Nikon a NEF's into IFD0's XMP, Fujifilm into its maker notes
    # (a RAF's embedded JPEG, a camera JPEG). The code before read a JPEG's and a DNG's packet alone.
    jpeg = (faces_dir / "2008_001009.jpg").read_bytes()
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    (shoot / "A_0001.CR3").write_bytes(_cr3(3))
    (shoot / "A_0002.CR3").write_bytes(_cr3(0))  # unrated: no culling
    _tiff_raw(shoot / "B_0001.NEF", _sidecar("4").encode())
    _tiff_raw(shoot / "B_0002.ORF", _sidecar("-1").encode(), magic=b"IIRO")  # "candidate for deletion"
    _tiff_raw(shoot / "B_0003.NEF", None)
    (shoot / "C_0001.RAF").write_bytes(_raf(_fujifilm_jpeg(jpeg, 5)))
    (shoot / "C_0002.jpg").write_bytes(_fujifilm_jpeg(jpeg, 2, endian=">"))
    (shoot / "C_0003.jpg").write_bytes(_fujifilm_jpeg(jpeg, 0))
    shot = scan_shoot(shoot)
    assert shot.culling == {"A_0001.CR3": Culling(3, None, (), "A_0001.CR3"),
                            "B_0001.NEF": Culling(4, None, (), "B_0001.NEF"),
                            "C_0001.RAF": Culling(5, None, (), "C_0001.RAF"),
                            "C_0002.jpg": Culling(2, None, (), "C_0002.jpg")}
    assert [s.source_path for s in shot.skipped if s.reason == REJECTED_REASON] == ["B_0002.ORF"]
    (shoot / "A_0001.xmp").write_text(_sidecar("1", "Red"))  # a sidecar is the later word
    assert scan_shoot(shoot).culling["A_0001.CR3"] == Culling(1, "Red", (), "A_0001.xmp")


def test_a_rating_only_the_pairs_jpeg_holds_is_the_raws(tmp_path: Path, faces_dir: Path) -> None:
    jpeg = (faces_dir / "2008_001009.jpg").read_bytes()
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    _tiff_raw(shoot / "IMG_0001.NEF", None)
    (shoot / "IMG_0001.JPG").write_bytes(_fujifilm_jpeg(jpeg, 4))
    (shoot / "IMG_0002.CR3").write_bytes(_cr3(0))
    (shoot / "IMG_0002.JPG").write_bytes(jpeg[:2] + _xmp_app1(_sidecar("-1").encode()) + jpeg[2:])
    _tiff_raw(shoot / "IMG_0003.NEF", _sidecar("5").encode())
    (shoot / "IMG_0003.JPG").write_bytes(_fujifilm_jpeg(jpeg, 1))  # the RAW's own wins
    shot = scan_shoot(shoot)
    assert [t.source_path for t in shot.tasks] == ["IMG_0001.NEF", "IMG_0003.NEF"]
    assert [s.source_path for s in shot.skipped if s.reason == REJECTED_REASON] == ["IMG_0002.CR3"]
    assert shot.culling == {"IMG_0001.NEF": Culling(4, None, (), "IMG_0001.JPG"),
                            "IMG_0003.NEF": Culling(5, None, (), "IMG_0003.NEF")}
    # Both developed: each file is its own photo, with its own rating.
    both = scan_shoot(shoot, pairs="both", rejects="process").culling
    assert "IMG_0001.NEF" not in both and both["IMG_0001.JPG"].rating == 4 and both["IMG_0003.JPG"].rating == 1


def _xmp_app1(packet: bytes) -> bytes:
    return b"\xff\xe1" + (2 + 29 + len(packet)).to_bytes(2, "big") + b"http://ns.adobe.com/xap/1.0/\x00" + packet



def _tiff_exif_rating(path: Path, rating: int, endian: str = "<") -> None:
    """A TIFF-structured RAW (an ARW) whose IFD0 holds EXIF's Rating (0x4746), as Sony's bodies write it."""
    import struct

    order = b"II" if endian == "<" else b"MM"
    ifd0 = struct.pack(endian + "H", 2) + struct.pack(endian + "HHII", 0x0100, 4, 1, 32)
    ifd0 += struct.pack(endian + "HHI", 0x4746, 3, 1) + struct.pack(endian + "H", rating) + bytes(2)
    path.write_bytes(order + struct.pack(endian + "HI", 42, 8) + ifd0 + struct.pack(endian + "I", 0) + bytes(256))


def test_exifs_rating_is_read_where_a_camera_writes_no_xmp(tmp_path: Path, faces_dir: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    _tiff_exif_rating(shoot / "DSC_0001.ARW", 2)
    _tiff_exif_rating(shoot / "DSC_0002.ARW", 3, endian=">")
    _tiff_exif_rating(shoot / "DSC_0003.ARW", 0)  # unrated, as Sony writes it
    jpeg = (faces_dir / "2008_001009.jpg").read_bytes()
    (shoot / "DSC_0004.jpg").write_bytes(jpeg[:2] + _camera_exif(">", rating=4) + jpeg[2:])
    (shoot / "DSC_0005.jpg").write_bytes(jpeg[:2] + _camera_exif("<", fujifilm=2, rating=5) + jpeg[2:])
    (shoot / "DSC_0006.jpg").write_bytes(jpeg[:2] + _camera_exif("<", fujifilm=0, rating=0) + jpeg[2:])
    # Stars taken back in a tool that wrote xmp:Rating 0 over the camera's EXIF 4: the XMP is the later word.
    (shoot / "DSC_0007.jpg").write_bytes(jpeg[:2] + _camera_exif("<", rating=4) + _xmp_app1(_sidecar("0").encode())
                                         + jpeg[2:])
    shot = scan_shoot(shoot)
    assert {sp: c.rating for sp, c in shot.culling.items()} == {"DSC_0001.ARW": 2, "DSC_0002.ARW": 3,
                                                                 "DSC_0004.jpg": 4, "DSC_0005.jpg": 5}


@pytest.mark.parametrize("packet", [
    _canon_packet(0), _canon_packet(2), _sidecar("0").encode(), _sidecar("0.0").encode(), _sidecar("-1").encode(),
    _sidecar("0", "Red").encode(), _sidecar("0", keywords=("a",)).encode(), _sidecar("").encode(),
    _flagged('xmp:Rating="0" xmpDM:pick="1"').encode(), _flagged('xmp:Rating="0" xmpDM:pick="-1"').encode(),
    _canon_packet(0).replace(b"<xmp:Rating>0", b"<xmp:CreatorTool>x</xmp:CreatorTool><xmp:Rating>3"),  # (a closing
    # tag just before the rating's element)
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:MicrosoftPhoto="http://ns.microsoft.com/photo/1.0/"'
    b' MicrosoftPhoto:Rating="50"/></rdf:RDF></x:xmpmeta>',
])
def test_an_unrated_cameras_packet_is_passed_over_without_a_parse_and_nothing_else_is(packet: bytes) -> None:
    # Every EOS R and Nikon Z body writes xmp:Rating 0 into every frame (64 KB, padded): an exiv2 parse is 1.5 ms of the
    # scan's a frame. What the shortcut passes over must be what the parse finds no culling in.
    from pipeline.imaging.identity import read_xmp_packet
    from pipeline.kernel.sidecars import _culling, _unrated

    tags = read_xmp_packet(packet)
    assert tags is not None
    if _unrated(packet):
        assert _culling(tags, "a.CR3") is None
    assert _unrated(packet) == (packet in (_canon_packet(0), _sidecar("0").encode(), _sidecar("0.0").encode()))


def test_the_frames_rated_so_many_stars_are_the_picks_when_asked(tmp_path: Path, faces_dir: Path) -> None:
    # A photographer who marks selects with stars (in Lightroom, Photo Mechanic, or in the camera) gets them alone
    # developed with `--photographer-picks 3`; a pick flag is a select too, a reject never is.
    from pipeline.kernel.sidecars import NOT_PICKED_REASON

    jpeg = (faces_dir / "2008_001009.jpg").read_bytes()
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for i in range(1, 7):
        (shoot / f"IMG_000{i}.jpg").write_bytes(jpeg[:-2] + bytes([i]) + jpeg[-2:])  # (six files, six hashes)
    (shoot / "IMG_0001.xmp").write_text(_sidecar("2"))
    (shoot / "IMG_0002.jpg").write_bytes(jpeg[:2] + _camera_exif("<", rating=3) + jpeg[2:])  # rated in the camera
    (shoot / "IMG_0003.xmp").write_text(_sidecar("5"))
    (shoot / "IMG_0004.xmp").write_text(_flagged('photomechanic:Tagged="True"'))
    (shoot / "IMG_0005.xmp").write_text(_flagged('xmp:Rating="4" xmpDM:pick="-1"'))
    three = scan_shoot(shoot, picks="3")
    assert [(t.source_path, t.seq) for t in three.tasks] == [("IMG_0002.jpg", 2), ("IMG_0003.jpg", 3),
                                                              ("IMG_0004.jpg", 4)]
    assert three.picked == 3
    assert sorted((s.source_path, s.reason) for s in three.skipped if not s.reason.startswith("sidecar")) == [
        ("IMG_0001.jpg", NOT_PICKED_REASON), ("IMG_0005.jpg", REJECTED_REASON), ("IMG_0006.jpg", NOT_PICKED_REASON)]
    assert [t.source_path for t in scan_shoot(shoot, picks="5").tasks] == ["IMG_0003.jpg", "IMG_0004.jpg"]
    assert len(scan_shoot(shoot, picks="1").tasks) == 4
    assert scan_shoot(shoot).picked == 1  # (all: the pick flags alone are counted)
    # Through the CLI: none rated so high, the shoot is developed whole, and the line says why.
    for name in ("IMG_0003.xmp", "IMG_0004.xmp"):
        (shoot / name).unlink()
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local",
                                       "--photographer-picks", "4", "--dry-run"])
    assert result.exit_code == EXIT_OK, result.output
    assert "no frame is picked or rated 4 stars or more: every frame developed" in result.output


def test_the_frames_with_a_colour_label_are_the_picks_when_asked(tmp_path: Path, faces_dir: Path) -> None:
    # A studio marking a client's selects with a colour label (Lightroom's Green, Bridge's "Select"): only those and
    # the picked frames are developed with `--photographer-picks label:NAME`; the folder keeps the choice.
    from pipeline.kernel.sidecars import NOT_PICKED_REASON

    jpeg = (faces_dir / "2008_001009.jpg").read_bytes()
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for i in range(1, 6):
        (shoot / f"IMG_000{i}.jpg").write_bytes(jpeg[:-2] + bytes([i]) + jpeg[-2:])
    (shoot / "IMG_0001.xmp").write_text(_sidecar("2", "Green"))
    (shoot / "IMG_0002.xmp").write_text(_sidecar(None, "Red"))
    (shoot / "IMG_0003.xmp").write_text(_sidecar(None, "Select"))
    (shoot / "IMG_0004.xmp").write_text(_flagged('xmpDM:pick="1"'))
    green = scan_shoot(shoot, picks="label:green")
    assert [(t.source_path, t.seq) for t in green.tasks] == [("IMG_0001.jpg", 1), ("IMG_0004.jpg", 4)]
    assert sorted(s.source_path for s in green.skipped if s.reason == NOT_PICKED_REASON) == [
        "IMG_0002.jpg", "IMG_0003.jpg", "IMG_0005.jpg"]
    assert [t.source_path for t in scan_shoot(shoot, picks="label: Select ").tasks] == ["IMG_0003.jpg", "IMG_0004.jpg"]
    for bad in ("label:", "label:  ", "green"):
        with pytest.raises(ValueError, match="label:NAME"):
            scan_shoot(shoot, picks=bad)
    out = tmp_path / "out"
    first = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local",
                                      "--photographer-picks", "label:Red", "--json", "-q"])
    assert first.exit_code == EXIT_OK, first.output
    assert (json.loads(first.stdout)["processed"], json.loads(first.stdout)["photographer_picks"]) == (2, "label:Red")
    rerun = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local", "--json", "-q"])
    assert json.loads(rerun.stdout)["photographer_picks"] == "label:Red" and json.loads(rerun.stdout)["processed"] == 2
    none = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local", "--dry-run",
                                     "--photographer-picks", "label:Blue"])
    assert "no frame is picked or labelled Blue" not in none.output  # (a pick flag is a pick: IMG_0004)
    (shoot / "IMG_0004.xmp").unlink()
    none = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--executor", "local", "--dry-run",
                                     "--photographer-picks", "label:Blue"])
    assert "--photographer-picks label:Blue: no frame is picked or labelled Blue: every frame developed" in none.output
    bad = CliRunner().invoke(main, ["process", str(shoot), "--out", str(out), "--photographer-picks", "blue"])
    assert bad.exit_code == 2 and "label:NAME" in bad.output
