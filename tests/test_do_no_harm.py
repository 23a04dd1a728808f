"""benchmarks/do_no_harm.py counts what the plan would change in photos right as they are.

The same real photo (scikit-image's coffee, which the estimate reads warm as published) twice: once with the
EXIF of a camera set to a white-balance preset, for which the plan proposes a correction of over 50 mired (not
applied: a person accepts it), and once balanced automatically in sunlight, which the plan leaves as shot. The
script must count each where it belongs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.do_no_harm import decisions, run, table
from tests.test_white_balance_daylight import _jpeg_with_exif


def _jpeg(path: Path, white_balance: int) -> None:
    from skimage import data

    path.write_bytes(_jpeg_with_exif(data.coffee(), white_balance))  # 1/250 s, f/11, ISO 200: 13.9 EV


@pytest.mark.slow
def test_the_counts_follow_the_plan(tmp_path: Path, model_dir: Path) -> None:
    shoot = tmp_path / "delivered"
    shoot.mkdir()
    _jpeg(shoot / "preset.jpg", 1)
    _jpeg(shoot / "auto.jpg", 0)
    photos = {p.name: p for p in decisions(run(shoot, "base", tmp_path / "work"))}
    assert set(photos) == {"preset.jpg", "auto.jpg"}
    preset = photos["preset.jpg"]
    assert preset.proposed_mired <= -50 and preset.mired == 0.0 and not preset.colour_flagged, preset
    assert photos["auto.jpg"].mired == 0.0 and photos["auto.jpg"].proposed_mired == 0.0, photos["auto.jpg"]
    rows = {r.split(" | ")[0].lstrip("| "): r.split(" | ")[1].rstrip(" |") for r in table(list(photos.values()), 10.0)[2:]}
    proposed = "a white-balance change proposed to a person, not applied (the renderer's once accepted)"
    assert rows[proposed] == "1 of 2 (50 %)"
    assert rows["white balance shifted by 50 mired or more, no colour flag"] == "0 of 2 (0 %)"
    assert rows["white balance left within the chart's 10 mired"] == "2 of 2 (100 %)"


def test_the_report_holds_the_table_and_every_photo(tmp_path: Path) -> None:
    import argparse

    from benchmarks.do_no_harm import Photo, write_report

    photos = [Photo("a.jpg", ev=1.2, mired=-60.0, flags=["white_balance"]), Photo("b.jpg", lifts=[1.18, 0.83]),
              Photo("c.jpg", proposed_ev=-2.0, flags=["clipped_highlights"])]
    out = tmp_path / "DO_NO_HARM.md"
    write_report(out, photos, 10.0, argparse.Namespace(chart="base", about="Two test photos."), "python x.py f")
    text = out.read_text()
    assert "Two test photos." in text and "- command: `python x.py f`" in text and "chart `base`" in text
    assert "| exposure changed by 1 EV or more | 1 of 3 (33 %) |" in text
    assert "| white balance shifted by 50 mired or more, flagged | 1 of 3 (33 %) |" in text
    # A darkening proposed to a person is no change made, and is counted and shown as proposed.
    assert "| exposure left within 0.3 EV (the accuracy benchmark's do-no-harm bar) | 2 of 3 (67 %) |" in text
    proposed = "an exposure change proposed to a person, not applied (the renderer's once accepted)"
    assert f"| {proposed} | 1 of 3 (33 %) |" in text
    assert "c.jpg" in text and "exposure +0.00 EV (-2.00 proposed)" in text
    # A face given a lift in a photo right as it is, counted and shown with its amounts.
    assert "| a face given a lift (applied, or told a retoucher) | 1 of 3 (33 %) |" in text
    assert "faces lifted +1.18, +0.83 EV" in text
    assert text.index("a.jpg") < text.index("b.jpg")  # the largest change first
    assert not list(tmp_path.glob(".*.tmp"))
