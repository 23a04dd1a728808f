"""The end of a run and the history: captures, photographers, operators' rows, evidence files,
equipment findings per body, and defects tracked from shoot to shoot. Tier 1: records and small
arrays written inline; the whole path on real photos is in test_equipment_corpus.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline.cli.main import main
from pipeline.equipment.analysis import (
    EQUIPMENT_SCHEMA,
    EXPOSURE_BIN_EDGES,
    OPERATORS_SCHEMA,
    analyse_equipment,
    assign_photographers,
    captures,
    equipment_rows,
    keystone_lean,
    median_from_hist,
    operator_rows,
)
from pipeline.equipment.evidence import evidence_bytes, evidence_path, load_evidence
from pipeline.equipment.findings import FindingKind
from pipeline.equipment.history import body_history, find_output_folders, load_tables, photographer_history
from pipeline.equipment.photographers import Assignment, PhotographerRegister
from pipeline.imaging.dust import DustEvidence
from pipeline.imaging.sensor_defects import PhotositeCandidate, PhotositeDeviation, PhotositeScan
from pipeline.kernel.files import write_bytes_atomic
from pipeline.kernel.records import (
    AppliedBy,
    ImageRecord,
    Operation,
    OperationKind,
    SourceKind,
    Status,
    Verdict,
)
from pipeline.kernel.schema import MANIFEST_SCHEMA, to_table, write_parquet_atomic
from pipeline.planning.rules.straighten import KEYSTONE_STABILITY

T0 = datetime(2026, 3, 2, 10, 0, 0)


def rec(path: str, kind: SourceKind = SourceKind.RAW, when: datetime | None = T0, serial: str | None = "S1",
        artist: str | None = "Ana Lima", **kw) -> ImageRecord:
    r = ImageRecord(path, f"{abs(hash(path)):064x}"[:64], 100, "dng" if kind is SourceKind.RAW else "jpeg", kind)
    r.camera.make, r.camera.model, r.camera.captured_at = "Acme", "Z9", when
    r.identity.camera_serial, r.identity.artist = serial, artist
    for k, v in kw.items():
        setattr(r, k, v)
    return r


# --- captures and photographers -----------------------------------------------------------------------
def test_a_raw_and_its_jpeg_are_one_capture_with_the_raw_standing_for_it():
    pair = [rec("day1/IMG_0002.JPG", SourceKind.RASTER), rec("day1/IMG_0002.CR2")]
    other = rec("day1/IMG_0003.CR2", when=T0 + timedelta(seconds=4))
    same_name_later = rec("day2/IMG_0002.CR2", when=T0 + timedelta(days=1))
    renumbered = rec("day1/img_0002.heic", SourceKind.RASTER, when=T0 + timedelta(hours=3))  # another capture
    dup = rec("copy/IMG_0003.CR2", duplicate_of="day1/IMG_0003.CR2")
    caps = captures(pair + [other, same_name_later, renumbered, dup])
    assert [(c.primary.source_path, len(c.files)) for c in caps] == [
        ("day1/IMG_0002.CR2", 2), ("day1/IMG_0003.CR2", 1), ("day1/img_0002.heic", 1), ("day2/IMG_0002.CR2", 1)]


def test_photographer_precedence_option_register_artist():
    records = [rec("a.dng", serial="S1", artist="Ana Lima"), rec("b.dng", serial="S2", artist=None),
               rec("c.dng", serial=None, artist=None)]
    register = PhotographerRegister(Path("r.yaml"), (Assignment(body="S2", photographer="Ben Ode"),))
    assign_photographers(records, None, register)
    assert [(r.identity.photographer, r.identity.photographer_source) for r in records] == [
        ("Ana Lima", "exif_artist"), ("Ben Ode", "register"), (None, None)]
    assign_photographers(records, "  Cleo   Park ", register)
    assert {(r.identity.photographer, r.identity.photographer_source) for r in records} == {("Cleo Park", "option")}


def test_operator_rows_count_captures_corrections_reasons_and_bursts():
    def planned(path, when, ops, verdict=Verdict.FLAG, ev=0.0, tilt=0.0):
        r = rec(path, when=when)
        r.operations, r.plan.verdict, r.plan.exposure_ev, r.lines.horizon_tilt_deg = ops, verdict, ev, tilt
        r.equipment.focus_miss = False
        return r

    exp = Operation("exposure", OperationKind.EXPOSURE, {"ev": 1.0}, "under")
    crop = Operation("crop-4x5", OperationKind.CROP, {"aspect": "4:5"}, "crop")
    hand = Operation("straighten", OperationKind.STRAIGHTEN, {"angle_deg": 8.0}, "tilted", applied_by=AppliedBy.RETOUCHER)
    rej = Operation("reject-sharpness", OperationKind.REJECT, {"check": "sharpness"}, "soft", applied_by=AppliedBy.RETOUCHER)
    records = [
        planned("IMG_1.CR2", T0, [exp, crop], Verdict.ACCEPT, ev=-1.2, tilt=1.0),
        planned("IMG_1.JPG", T0, [exp, crop], Verdict.ACCEPT, ev=-1.2, tilt=1.0),  # its pair: not counted again
        planned("IMG_2.CR2", T0 + timedelta(seconds=1), [hand], ev=-0.9, tilt=2.0),  # a burst with IMG_1
        planned("IMG_3.CR2", T0 + timedelta(seconds=30), [rej, exp], Verdict.REJECT, ev=0.1, tilt=3.0),
        rec("IMG_4.CR2", when=T0 + timedelta(seconds=60), status=Status.FAILED),
        rec("again/IMG_3.CR2", duplicate_of="IMG_3.CR2"),
    ]
    records[1].source_kind = SourceKind.RASTER
    records[2].equipment.focus_miss = True
    assign_photographers(records)
    (row,) = operator_rows(records, "shoot-1")
    assert row["photographer"] == "Ana Lima" and row["photographer_source"] == "exif_artist"
    assert (row["captures"], row["files"], row["failed"], row["planned"], row["duplicates"]) == (4, 6, 1, 3, 1)
    assert (row["accepted"], row["flagged"], row["rejected"], row["to_retoucher"]) == (1, 1, 1, 2)
    assert (row["needs_exposure"], row["needs_straighten"], row["needs_white_balance"]) == (2, 1, 0)
    assert dict(row["reasons"]) == {"exposure": 2, "retoucher:straighten": 1, "reject:sharpness": 1}
    assert (row["bursts"], row["burst_frames"]) == (1, 2)
    assert (row["focus_misses"], row["focus_judged"]) == (1, 3)
    assert row["exposure_ev_median"] == pytest.approx(-0.9) and row["horizon_tilt_median_deg"] == pytest.approx(2.0)
    assert sum(row["exposure_ev_hist"]) == 3 and len(row["exposure_ev_hist"]) == len(EXPOSURE_BIN_EDGES) + 1
    to_table([row], OPERATORS_SCHEMA)  # the row fits the schema


def test_a_photographers_pitch_is_counted_from_steady_converging_verticals_only():
    def shot(path: str, convergence: float | None, stability: float | None = 0.9, one_sided: bool = False):
        r = rec(path)
        r.frame.width, r.frame.height = 6000, 4000
        r.lines.verticals_convergence, r.lines.verticals_convergence_stability = convergence, stability
        r.lines.verticals_one_sided = one_sided
        r.plan.verdict = Verdict.ACCEPT
        return r

    records = [
        shot("up.dng", -3.0),  # meets above the frame: 1.5 deg at the edges, pitched up
        shot("up_more.dng", -5.0),  # 2.5 deg
        shot("down.dng", 4.0),  # meets below: pitched down 2 deg
        shot("slight.dng", -0.8),  # 0.4 deg at the edges: under what a viewer sees
        shot("arcade.dng", -6.0, stability=KEYSTONE_STABILITY - 0.1),  # resamples do not hold it
        shot("one_side.dng", 0.0, None, one_sided=True),  # pitch and roll cannot be told apart
        shot("level.dng", 0.0, None),
        shot("no_lines.dng", None, None),
    ]
    for i, r in enumerate(records):
        r.camera.captured_at = T0 + timedelta(minutes=i)
    assert [keystone_lean(r) for r in records] == [1.5, 2.5, -2.0, 0.4, None, None, 0.0, None]
    portrait = shot("portrait.dng", -3.0)
    portrait.frame.width, portrait.frame.height = 4000, 6000  # the same convergence per long edge, a narrower frame
    assert keystone_lean(portrait) == pytest.approx(1.0)
    assign_photographers(records)
    (row,) = operator_rows(records, "s1")
    assert (row["planned"], row["pitched_frames"], row["keystone_lean_median_deg"]) == (8, 3, 1.5)
    assert sum(row["keystone_lean_hist"]) == 3
    to_table([row], OPERATORS_SCHEMA)
    (person,) = photographer_history(to_table([row], OPERATORS_SCHEMA))
    assert person["pitched_share"] == pytest.approx(3 / 8) and 1.0 <= person["keystone_lean_median_deg"] <= 2.0


def test_median_from_hist():
    edges = (-1.0, 0.0, 1.0)
    assert median_from_hist([0, 0, 4, 0], edges) == pytest.approx(0.5)
    assert median_from_hist([3, 0, 0, 1], edges) == -1.0
    assert median_from_hist([0, 0, 0, 0], edges) is None


# --- evidence files and the equipment findings ------------------------------------------------------------
def dust_map(spot: bool, rng: np.random.Generator, shape=(40, 60)) -> DustEvidence:
    score = np.abs(rng.normal(1.0, 0.5, shape)).astype(np.float16)
    if spot:
        score[20, 30] = 12.0
    return DustEvidence(score, np.full(shape, 0.2, np.float16), np.full(shape, 0.004, np.float16),
                        np.full(shape, 0.04, np.float16), 0.9)


def test_evidence_round_trip_and_a_damaged_file(tmp_path):
    scan = PhotositeScan(600, 400, (PhotositeCandidate(5, 7, PhotositeDeviation.BRIGHT, 0.9, 0.1, 40.0),))
    ev = dust_map(True, np.random.default_rng(0))
    path = tmp_path / evidence_path("ab" * 32)
    write_bytes_atomic(path, evidence_bytes(ev, scan))
    back = load_evidence(path)
    assert back.photosites == scan
    assert np.array_equal(back.dust.score, ev.score) and back.dust.usable_fraction == pytest.approx(0.9)
    assert load_evidence(tmp_path / "missing.npz") is None
    path.write_bytes(b"not a zip")
    assert load_evidence(path) is None
    write_bytes_atomic(path, evidence_bytes(None, None))
    assert load_evidence(path) == type(back)(None, None)


def test_findings_per_body_count_a_pair_once(tmp_path):
    rng = np.random.default_rng(1)
    records = []
    for i in range(12):
        hot = PhotositeCandidate(10, 20, PhotositeDeviation.BRIGHT, 0.85 + 0.01 * i, 0.1, 50.0)
        raw = rec(f"IMG_{i:02d}.DNG", when=T0 + timedelta(minutes=i))
        raw.camera.aperture, raw.frame.orientation = 16.0, 1
        raw.equipment.evidence_path = evidence_path(raw.content_hash)
        write_bytes_atomic(tmp_path / raw.equipment.evidence_path,
                           evidence_bytes(dust_map(True, rng), PhotositeScan(600, 400, (hot,))))
        raw.equipment.focus_miss = i == 3
        raw.equipment.focus_detail, raw.equipment.focus_subject_x, raw.equipment.focus_subject_y = "soft face", 0.4, 0.3
        jpeg = rec(f"IMG_{i:02d}.JPG", SourceKind.RASTER, when=raw.camera.captured_at)
        jpeg.equipment.evidence_path = evidence_path(jpeg.content_hash)
        write_bytes_atomic(tmp_path / jpeg.equipment.evidence_path, evidence_bytes(dust_map(True, rng), None))
        records += [raw, jpeg]
    records.append(rec("other.dng", serial=None, artist=None))
    records[-1].camera.make = records[-1].camera.model = None
    assign_photographers(records)
    result = analyse_equipment(records, tmp_path)
    kinds = {f.kind: f for f in result.findings}
    assert set(kinds) == {FindingKind.DUST, FindingKind.HOT_PIXEL, FindingKind.FOCUS_MISS}
    dust = kinds[FindingKind.DUST]
    assert (dust.frames, dust.frames_examined) == (12, 12)  # twelve captures, not 24 files
    assert (dust.x, dust.y) == pytest.approx((30.5 / 60, 20.5 / 40))
    assert kinds[FindingKind.HOT_PIXEL].frames == 12
    focus = kinds[FindingKind.FOCUS_MISS]
    assert (focus.source_path, focus.x, focus.y, focus.frames_examined) == ("IMG_03.DNG", 0.4, 0.3, 12)
    assert result.frames_without_body == 1
    rows = equipment_rows(result, "shoot-1", records)
    table = to_table(rows, EQUIPMENT_SCHEMA)
    assert set(table.column("photographer").to_pylist()) == {"Ana Lima"}
    assert min(table.column("captured_from").to_pylist()) == T0


def _again(op: str, of: str) -> Operation:
    """The plan's word that a frame is its view again: a near-duplicate of an earlier frame, or a bracket member."""
    check = "duplicates" if op == "near" else "bracket"
    return Operation(f"flag-{check}", OperationKind.FLAG, {"check": check}, f"{op} of {of}",
                     applied_by=AppliedBy.RETOUCHER)


@pytest.mark.parametrize("again", ["near", "bracket", "hash"])
def test_one_view_shot_again_proves_no_sensor_defect(tmp_path, again):
    """Frames the plan found to be one view again (a tripod's near-duplicates, an exposure bracket), or whose
    perceptual hash says so where the chart ignores near-duplicates, hold the view's glints and dark points on the
    same photosites and its dark things at one place: no new picture, so neither a photosite defect nor dust. The
    same photosite standing out in three different pictures is one."""
    rng = np.random.default_rng(2)
    glint = PhotositeCandidate(10, 20, PhotositeDeviation.BRIGHT, 0.9, 0.1, 40.0)
    records = []
    for view in range(3):
        hot = PhotositeCandidate(30, 40, PhotositeDeviation.BRIGHT, 0.6 + 0.1 * view, 0.1, 40.0)
        for k in range(4):  # the view, then three more frames of it
            r = rec(f"V{view}_{k}.DNG", when=T0 + timedelta(minutes=view, seconds=2 * k))
            r.camera.aperture = 16.0
            r.equipment.evidence_path = evidence_path(r.content_hash)
            scan = PhotositeScan(600, 400, (hot, glint) if view == 0 else (hot,))
            write_bytes_atomic(tmp_path / r.equipment.evidence_path, evidence_bytes(dust_map(view == 0, rng), scan))
            if again == "hash":  # each view's hash 16 bits from the others'; its frames 0-3 bits from its first
                r.content.phash = f"{(0xFFFF << (16 * view)) ^ ((1 << k) - 1):016x}"
            else:  # the plan's word alone: hashes about 32 bits apart
                r.content.phash = f"{int(rng.integers(0, 2**63)):016x}"
                if k:
                    r.operations = [_again(again, f"V{view}_0.DNG")]
            records.append(r)
    result = analyse_equipment(records, tmp_path)
    found = [(f.kind, f.frames, f.frames_examined, f.y) for f in result.findings]
    # Before: the view's glint read as a hot photosite in 4 of 12 frames and its dark thing as dust.
    assert found == [(FindingKind.HOT_PIXEL, 3, 3, pytest.approx(30.5 / 400))]


# --- history ----------------------------------------------------------------------------------------------------
def write_shoot(root: Path, shoot: str, when: datetime, frames: int, aperture: float, dust_at: tuple | None,
                person: str = "Ana Lima") -> Path:
    out = root / shoot
    out.mkdir(parents=True)
    records = [rec(f"IMG_{i:03d}.dng", when=when + timedelta(seconds=5 * i), artist=person) for i in range(frames)]
    for r in records:
        r.camera.aperture, r.plan.verdict = aperture, Verdict.ACCEPT
    assign_photographers(records)
    meta = {"shoot_id": shoot}
    write_parquet_atomic(to_table((r.to_row() for r in records), MANIFEST_SCHEMA, meta), out / "manifest.parquet")
    write_parquet_atomic(to_table(operator_rows(records, shoot), OPERATORS_SCHEMA, meta), out / "operators.parquet")
    rows = []
    if dust_at:
        rows.append({"shoot_id": shoot, "camera_serial": "S1", "camera_make": "Acme", "camera_model": "Z9",
                     "kind": "dust", "x": dust_at[0], "y": dust_at[1], "radius": 0.004, "strength": 0.2,
                     "frames": 5, "frames_examined": frames, "source_path": None, "evidence": [],
                     "confidence": 0.9, "detail": "dust", "photographer": person, "captured_from": when,
                     "captured_until": when})
    write_parquet_atomic(to_table(rows, EQUIPMENT_SCHEMA, meta), out / "equipment.parquet")
    return out


def test_a_dust_spot_is_tracked_until_shoots_that_would_show_it_do_not(tmp_path):
    day = timedelta(days=7)
    write_shoot(tmp_path, "s1", T0, 20, 11.0, (0.30, 0.60))
    write_shoot(tmp_path, "s2", T0 + day, 20, 11.0, (0.305, 0.602), person="Ben Ode")
    write_shoot(tmp_path, "s3", T0 + 2 * day, 20, 2.8, None)  # wide open: could not show it
    tables = load_tables(find_output_folders([tmp_path]))
    _, defects = body_history(tables)
    assert [(d["status"], d["first_shoot"], d["last_shoot"], d["shoots_seen"]) for d in defects] == [
        ("undecided", "s1", "s2", 2)]
    write_shoot(tmp_path, "s4", T0 + 3 * day, 20, 16.0, None)  # at f/16 it would show: cleaned in between
    write_shoot(tmp_path, "s5", T0 + 4 * day, 20, 16.0, (0.7, 0.2))  # a new spot elsewhere
    tables = load_tables(find_output_folders([tmp_path]))
    bodies, defects = body_history(tables)
    assert [(d["status"], d["x"], d["first_shoot"]) for d in defects] == [("gone", 0.30, "s1"), ("present", 0.7, "s5")]
    assert "cleaned in between" in defects[0]["detail"] and "s4" in defects[0]["detail"]
    (body,) = bodies
    assert (body["body"], body["shoots"], body["frames"], body["dust_spots_present"], body["dust_spots_gone"]) == (
        "S1", 5, 100, 1, 1)
    people = {p["photographer"]: p for p in photographer_history(tables.operators)}
    assert (people["Ana Lima"]["shoots"], people["Ana Lima"]["captures"], people["Ben Ode"]["shoots"]) == (4, 80, 1)


def test_operators_command(tmp_path):
    write_shoot(tmp_path / "outs", "s1", T0, 12, 11.0, (0.3, 0.6))
    res = CliRunner().invoke(main, ["operators", str(tmp_path / "outs"), "--out", str(tmp_path / "h")])
    assert res.exit_code == 0, res.output
    assert "Ana Lima" in res.output and "dust" in res.output and "present" in res.output and "pitched" in res.output
    assert {p.name for p in (tmp_path / "h").iterdir()} == {
        "photographers.parquet", "photographer_shoots.parquet", "bodies.parquet", "body_defects.parquet"}
    assert pq.read_table(tmp_path / "h" / "bodies.parquet").column("body").to_pylist() == ["S1"]
    # An output folder written before a column was (the camera's pitch): its counts read 0, its medians none.
    older = pq.read_table(tmp_path / "outs" / "s1" / "operators.parquet")
    older = older.drop_columns(["pitched_frames", "keystone_lean_median_deg", "keystone_lean_hist"])
    write_parquet_atomic(older, tmp_path / "outs" / "s1" / "operators.parquet")
    res = CliRunner().invoke(main, ["operators", str(tmp_path / "outs"), "--out", str(tmp_path / "h")])
    assert res.exit_code == 0, res.output
    (person,) = pq.read_table(tmp_path / "h" / "photographers.parquet").to_pylist()
    assert (person["pitched_frames"], person["pitched_share"], person["keystone_lean_median_deg"]) == (0, 0.0, None)
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(main, ["operators", str(empty)])
    assert res.exit_code == 2 and "no postprod output folder" in res.output  # a usage error, as the CLI documents


def test_a_bad_register_stops_the_run_before_any_work(tmp_path):
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    bad = tmp_path / "bodies.csv"
    bad.write_text("body,who\nS1,Ana\n")
    res = CliRunner().invoke(main, ["process", str(shoot), "--out", str(tmp_path / "out"), "--photographers", str(bad),
                                    "--executor", "local"])
    assert res.exit_code == 2 and "bodies.csv" in res.output and "who" in res.output
    assert not (tmp_path / "out" / "manifest.parquet").exists()
