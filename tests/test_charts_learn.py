"""``postprod charts learn``: a client's exposure key from approved photos, judged with each photo left out."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from charts.learn import MIN_PHOTOS, central_key, chart_text, learn_key, summary_lines
from charts.loader import load_chart
from pipeline.cli.main import main


def test_a_key_shifted_from_the_chart_is_learned_and_helps() -> None:
    rng = np.random.default_rng(1)
    spread = rng.normal(0.0, 0.3, 24)
    key = learn_key(list(spread - 1.2), base_target=0.0, tolerance=0.33)
    assert key.n == 24
    assert key.target == pytest.approx(central_key(spread - 1.2), abs=0.025)
    assert -1.45 < key.target < -0.95
    assert key.before_within == 0 and key.after_within >= 10
    assert key.after_median < 0.4 < 1.0 < key.before_median
    assert key.helps


def test_photos_in_two_clusters_share_no_key() -> None:
    """Half the set near the chart's target, half a stop and more under it (immich's 21 photos read so):
    keyed on their middle, fewer of them are within the tolerance."""
    readings = [0.0, 0.07, 0.14, 0.16, 0.19, 0.2, 0.32, 0.41, 0.42, -0.001, -0.07,
                -0.3, -0.6, -0.7, -0.86, -0.96, -1.07, -1.2, -1.23, -1.37, -1.68]
    key = learn_key(readings, base_target=0.0, tolerance=0.33)
    assert not key.helps
    assert key.after_within < key.before_within


def test_one_odd_photo_moves_the_key_little() -> None:
    readings = [0.5 + 0.01 * k for k in range(12)]
    with_night_shot = [*readings, -4.0]
    assert abs(central_key(np.array(with_night_shot)) - central_key(np.array(readings))) < 0.03


def test_too_few_photos_is_an_error() -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_PHOTOS}"):
        learn_key([0.1] * (MIN_PHOTOS - 1), 0.0, 0.33)


def test_the_chart_written_extends_its_parent_and_sets_the_target_only(tmp_path: Path) -> None:
    key = learn_key([-1.0 + 0.02 * k for k in range(10)], 0.3, 0.25)
    text = chart_text({"exposure": {"target_ev": key.target}}, extends="culinary", description="Bistro look", client="Bistro", learned_from="10 photos",
                      date="2026-12-01", lines=summary_lines(key, "culinary"))
    path = tmp_path / "bistro.yaml"
    path.write_text(text)
    chart = load_chart(path).chart
    parent = load_chart("culinary").chart
    assert chart.exposure.target_ev == key.target == pytest.approx(-0.9, abs=0.05)
    assert chart.client == "Bistro"
    assert chart.exposure.tolerance_ev == parent.exposure.tolerance_ev
    assert chart.crops == parent.crops and chart.renditions == parent.renditions
    assert text.startswith("# Learned by postprod (charts learn) on 2026-12-01 from 10 photos:")


def _moody_photos(folder: Path, ev: float = -1.0, mired: float = 0.0,
                  names: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket"), pieces: int = 2) -> Path:
    """Real photos (``pieces`` side by side strips of each of scikit-image's colour samples ``names``),
    developed ``ev`` darker in scene light and lit ``mired`` warmer than D65."""
    from PIL import Image
    from skimage import data

    from pipeline.imaging.color import linear_to_srgb, srgb_to_linear
    from pipeline.imaging.measure.metering import inverse_tone_curve, tone_curve
    from pipeline.imaging.white_balance import light_rgb

    folder.mkdir()
    light = light_rgb(mired) / light_rgb(mired).max()
    for name in names:
        rgb = getattr(data, name)()
        width = rgb.shape[1] // pieces
        for k in range(pieces):
            part = rgb[:, k * width:(k + 1) * width]
            lin = tone_curve(inverse_tone_curve(srgb_to_linear(part / 255.0)) * 2.0**ev) * light
            enc = linear_to_srgb(lin.astype(np.float32))
            Image.fromarray((np.clip(enc, 0, 1) * 255 + 0.5).astype(np.uint8)).save(folder / f"{name}_{k}.jpg",
                                                                                      quality=92)
    return folder


@pytest.mark.slow
def test_learn_writes_a_chart_that_keeps_the_approved_look(tmp_path: Path) -> None:
    approved = _moody_photos(tmp_path / "approved")
    house = tmp_path / "house" / "house.yaml"  # the chart it extends, by path, in another folder
    house.parent.mkdir()
    house.write_text("schema_version: 2\nextends: base\ndescription: House\nexposure:\n  tolerance_ev: 0.3\n")
    out = tmp_path / "charts" / "moody.yaml"
    out.parent.mkdir()
    result = CliRunner().invoke(main, ["charts", "learn", str(approved), "--out", str(out), "--client", "Moody",
                                       "--extends", str(house), "--executor", "local", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "extends: ../house/house.yaml" in out.read_text()
    chart = load_chart(out).chart
    assert chart.client == "Moody" and chart.exposure.tolerance_ev == 0.3
    assert chart.exposure.target_ev < -0.5  # developed a stop darker than photographs are
    assert "8 approved photos read" in result.output and f"wrote {out}" in result.output
    # The plan itself, run on the approved photos under each chart, corrects fewer of them under the learned one.
    said = re.search(r"the plan corrects the exposure of (\d+) of them under \S+, (\d+) under the learned chart",
                     result.output)
    assert said is not None, result.output
    assert int(said[2]) < int(said[1])
    assert said[0] in out.read_text()
    # Rerun into the same file: refused before any work, then replaced with --force.
    again = CliRunner().invoke(main, ["charts", "learn", str(approved), "--out", str(out), "--executor", "local"])
    assert again.exit_code == 2 and "exists; --force replaces it" in again.output


@pytest.mark.parametrize("args, message", [
    (["--out", "{tmp}/client.txt"], "a chart file ends in .yaml or .yml"),
    (["--out", "{tmp}/nowhere/client.yaml"], "no folder"),
    (["--out", "{tmp}/client.yaml", "--extends", "culinery"], "culinary"),
])
def test_bad_options_stop_before_any_work(tmp_path: Path, args: list[str], message: str) -> None:
    approved = tmp_path / "approved"
    approved.mkdir()
    result = CliRunner().invoke(main, ["charts", "learn", str(approved), *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not list(tmp_path.glob("**/*.yaml"))


def test_a_folder_of_too_few_photos_is_refused(tmp_path: Path) -> None:
    approved = _moody_photos(tmp_path / "approved")
    for p in sorted(approved.iterdir())[:2]:
        p.unlink()
    result = CliRunner().invoke(main, ["charts", "learn", str(approved), "--out", str(tmp_path / "c.yaml"),
                                       "--executor", "local", "--no-progress"])
    assert result.exit_code == 2 and f"6 photo(s) could be read; a client's key needs at least {MIN_PHOTOS}" in result.output
    assert not (tmp_path / "c.yaml").exists()


@pytest.mark.slow
def test_a_target_is_learned_from_what_reviewers_did_to_the_corrections(tmp_path: Path) -> None:
    """A shoot developed a stop and a half dark, processed under base (which brightens it), reviewed by a retoucher who takes
    half a stop off every brightening, rejects one and accepts one as it is: the learned target is about half a
    stop under base's, and with it the plan's corrections land nearer what the reviewer chose."""
    from pipeline.kernel.run import RunSettings, process_shoot
    from pipeline.outputs.decisions import reviewed_amounts
    from pipeline.review.store import OpChange, ReviewStore

    shoot = _moody_photos(tmp_path / "shoot", ev=-1.5)  # every frame dark enough for base to brighten it
    out = tmp_path / "out"
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="base"))
    store = ReviewStore(out)
    planned = {}
    for path in sorted(p.name for p in shoot.iterdir()):
        doc, version = store.get(path)
        ev = next((op["params"]["ev"] for op in doc["operations"] if op["op_id"] == "exposure"), None)
        if ev is not None:
            planned[path] = (ev, version)
    assert len(planned) >= 8, planned
    names = sorted(planned)
    for k, path in enumerate(names):
        ev, version = planned[path]
        change = (OpChange("exposure", status="rejected") if k == 0 else OpChange("exposure", status="accepted")
                  if k == 1 else OpChange("exposure", status="accepted", ev=round(ev - 0.5, 2)))
        store.update(path, version, [change], "Ana")
    amounts = {sp: (was, wanted, status) for sp, was, wanted, status in reviewed_amounts(out)}
    assert amounts[names[0]] == (planned[names[0]][0], 0.0, "rejected")
    assert amounts[names[1]] == (planned[names[1]][0], planned[names[1]][0], "accepted")
    assert amounts[names[2]] == pytest.approx((planned[names[2]][0], round(planned[names[2]][0] - 0.5, 2), "accepted"))

    chart = tmp_path / "reviewed.yaml"
    result = CliRunner().invoke(main, ["charts", "learn-from-reviews", str(out), "--out", str(chart)])
    assert result.exit_code == 0, result.output
    assert f"{len(names)} reviewed exposure corrections (1 accepted as planned, {len(names) - 2} changed, 1 rejected)" \
        in result.output
    learned = load_chart(chart).chart
    assert learned.exposure.target_ev == pytest.approx(-0.5, abs=0.1)
    assert "extends: base" in chart.read_text()
    said = re.search(r"what the reviewer wanted (\d+) -> (\d+) of", result.output)
    assert said is not None and int(said[2]) > int(said[1])


def test_reviews_are_needed_to_learn_from_them(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(main, ["charts", "learn-from-reviews", str(out), "--out", str(tmp_path / "c.yaml"),
                                       "--extends", "base"])
    assert result.exit_code == 2 and "no exposure or white-balance correction was decided" in result.output
    result = CliRunner().invoke(main, ["charts", "learn-from-reviews", str(out), "--out", str(tmp_path / "c.yaml")])
    assert result.exit_code == 2 and "say which with --extends" in result.output


@pytest.mark.slow
def test_reviewers_who_keep_a_warm_light_teach_a_warm_target(tmp_path: Path) -> None:
    """A shoot lit 80 mired warm, which base neutralises; the reviewer rejects every white-balance correction (the
    warmth is the client's look): the chart learned keeps about that much warmth (policy warm), and the exposure,
    which the reviewer did not touch, is left as base's."""
    from pipeline.kernel.run import RunSettings, process_shoot
    from pipeline.review.store import OpChange, ReviewStore

    shoot = _moody_photos(tmp_path / "shoot", ev=0.0, mired=80.0, names=("astronaut", "chelsea", "coffee"), pieces=3)
    out = tmp_path / "out"
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="base"))
    store = ReviewStore(out)
    rejected = 0
    for path in sorted(p.name for p in shoot.iterdir()):
        doc, version = store.get(path)
        if any(op["op_id"] == "white_balance" for op in doc["operations"]):
            store.update(path, version, [OpChange("white_balance", status="rejected")], "Ana")
            rejected += 1
    assert rejected >= 8
    chart = tmp_path / "warm.yaml"
    result = CliRunner().invoke(main, ["charts", "learn-from-reviews", str(out), "--out", str(chart)])
    assert result.exit_code == 0, result.output
    assert f"{rejected} reviewed white-balance corrections ({rejected} rejected) asked for" in result.output
    learned, base = load_chart(chart).chart, load_chart("base").chart
    assert learned.white_balance.policy == "warm"
    assert 50 <= learned.white_balance.warm_shift_mired <= 100
    assert learned.exposure == base.exposure


@pytest.mark.slow
def test_a_bright_look_whose_whites_clip_is_said_to_read_short(tmp_path: Path) -> None:
    approved = _moody_photos(tmp_path / "approved", ev=1.2)  # developed brighter: their whites clip
    out = tmp_path / "bright.yaml"
    result = CliRunner().invoke(main, ["charts", "learn", str(approved), "--out", str(out), "--even-if-worse",
                                       "--executor", "local", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "photos clip 1 % of their pixels or more at white" in result.output
    assert load_chart(out).chart.exposure.target_ev > 0
