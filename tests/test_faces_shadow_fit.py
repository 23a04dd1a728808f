"""The faces rule's shadow-twin tool (benchmarks/faces_shadow_fit.py): its ``--more-dir`` photos, read with their
human-drawn boxes from a dlib imglab file (benchmarks/accuracy_corpus.py's ``more_dir_sources``), and kept apart
from the tuning sources in the shoot and the figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import faces_shadow_fit
from benchmarks.accuracy_corpus import Source, more_dir_sources

TESTING_XML = """<?xml version='1.0' encoding='ISO-8859-1'?>
<dataset>
<images>
  <image file='2008_002506.jpg' width='64' height='48'>
    <box top='10' left='12' width='20' height='21'/>
    <box top='8' left='40' width='18' height='18'/>
  </image>
  <image file='absent.jpg' width='500' height='375'>
    <box top='1' left='2' width='30' height='30'/>
  </image>
</images>
</dataset>
"""


def _folder(tmp_path: Path) -> Path:
    """dlib's layout: photos beside ``testing.xml``, which also lists a photo the folder does not have."""
    folder = tmp_path / "dlib"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("2008_002506.jpg", "unlisted.jpg"):
        Image.fromarray(rng.integers(40, 200, (48, 64, 3), dtype=np.uint8)).save(folder / name)
    (folder / "testing.xml").write_text(TESTING_XML, encoding="ISO-8859-1")
    return folder


def test_more_dir_sources_read_the_imglab_boxes(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    got = {s.id: s for s in more_dir_sources(folder)}
    # The absent photo of testing.xml is skipped; a photo it does not list comes without boxes.
    assert sorted(got) == ["more/dlib/2008_002506", "more/dlib/unlisted"]
    assert got["more/dlib/2008_002506"].faces == ((12.0, 10.0, 20.0, 21.0), (40.0, 8.0, 18.0, 18.0))  # x, y, w, h
    assert got["more/dlib/unlisted"].faces == ()
    assert all(s.group == "faces" for s in got.values())


def test_more_dir_face_sources_keep_the_boxed_photos_and_refuse_a_held_out_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _folder(tmp_path)
    pool = [Source("pascal_voc/x", folder / "unlisted.jpg", "faces", ((1, 1, 5, 5),))]
    monkeypatch.setattr(faces_shadow_fit, "build_pool", lambda *a, **k: pool)
    monkeypatch.setattr(faces_shadow_fit, "assign_splits", lambda p: {"pascal_voc/x": "tuning"})
    got = faces_shadow_fit.more_dir_face_sources(tmp_path, tmp_path, (folder,))
    assert [s.id for s in got] == ["more/dlib/2008_002506"]  # the unboxed photo is left out
    # The same bytes as a held-out source of the benchmark, under another name: refused.
    pool[0] = Source("pascal_voc/x", tmp_path / "copy.jpg", "faces", ((1, 1, 5, 5),))
    (tmp_path / "copy.jpg").write_bytes((folder / "2008_002506.jpg").read_bytes())
    monkeypatch.setattr(faces_shadow_fit, "assign_splits", lambda p: {"pascal_voc/x": "held_out"})
    with pytest.raises(ValueError, match="held-out"):
        faces_shadow_fit.more_dir_face_sources(tmp_path, tmp_path, (folder,))


def test_more_dir_twins_are_tagged_apart(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (boxed,) = [s for s in more_dir_sources(folder) if s.faces]
    truth = faces_shadow_fit.make_shoot([], tmp_path / "shoot", 64, more=[boxed])
    # One unshadowed pair and one pair per face and depth, JPEG and DNG, all tagged m0.
    assert len(truth) == 2 * (1 + 2 * len(faces_shadow_fit.DEPTHS_EV))
    assert {faces_shadow_fit.source_group(n) for n in truth} == {"--more-dir sources"}
    assert all(n.startswith("m0_") for n in truth)
    assert (tmp_path / "shoot" / "m0_f1_d1.5.dng").is_file()
    assert faces_shadow_fit.source_group("s3_lit.jpg") == "tuning sources"
    depths = [f["shadow_ev"] for f in truth["m0_f0_d1.0.jpg"]]
    assert depths[0] == pytest.approx(1.0, abs=0.05) and depths[1] < faces_shadow_fit.LIT_BELOW_EV


def test_miss_causes_name_what_the_rule_did() -> None:
    """A shadow read too shallow is the measurement's; one the surroundings do not show is the flag's; a face the
    detector lost is not detected; a shadow read at its depth and confirmed is no miss."""
    from tests.planning_inputs import LIT_SURROUND_EV, face, image_record

    boxes = [(200.0, 800.0, 300.0, 300.0), (1200.0, 800.0, 300.0, 300.0), (2200.0, 800.0, 300.0, 300.0)]

    def twin(name: str, evs: list[float], surrounds: list[float]) -> object:
        return image_record(source_path=name, faces=[face(x, y, s, ev, surround_ev=sv)
                                                     for (x, y, s, _), ev, sv in zip(boxes, evs, surrounds)])

    lit = [LIT_SURROUND_EV] * 3
    shadow = [{"box": list(b), "shadow_ev": 1.0 if k == 0 else 0.0} for k, b in enumerate(boxes)]
    truth = {"m0_lit.dng": [{"box": list(b), "shadow_ev": 0.0} for b in boxes],
             "m0_f0_d1.0.dng": shadow, "m0_f0_d1.2.dng": shadow, "m0_f0_d1.5.dng": shadow, "m0_f0_d0.8.dng": shadow}
    records = faces_shadow_fit.replan({
        "m0_lit.dng": twin("m0_lit.dng", [0.0, 0.0, 0.0], lit),
        "m0_f0_d1.0.dng": twin("m0_f0_d1.0.dng", [-1.0, 0.0, 0.0], [LIT_SURROUND_EV - 1.0, *lit[1:]]),  # found
        "m0_f0_d1.2.dng": twin("m0_f0_d1.2.dng", [-0.3, 0.0, 0.0], [LIT_SURROUND_EV - 0.3, *lit[1:]]),  # too shallow
        "m0_f0_d1.5.dng": twin("m0_f0_d1.5.dng", [-1.5, 0.0, 0.0], lit),  # its surroundings read as lit
        "m0_f0_d0.8.dng": image_record(source_path="m0_f0_d0.8.dng",
                                       faces=[face(*boxes[k][:3], 0.0, surround_ev=LIT_SURROUND_EV) for k in (1, 2)]),
    })
    counts, lines = faces_shadow_fit.miss_causes(records, truth)
    assert counts == {("shadowed DNG", "amount off by the measurement (both domains)"): [("m0_f0_d1.2.dng", 0)],
                      ("shadowed DNG", "surround did not confirm (face_shadow flag)"): [("m0_f0_d1.5.dng", 0)],
                      ("shadowed DNG", "not detected"): [("m0_f0_d0.8.dng", 0)]}
    assert len(lines) == 3 and not any(line.startswith("m0_f0_d1.0") for line in lines)
