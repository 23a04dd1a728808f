"""Accuracy floors: today's postprod against known truth, on a tiny corpus (issue 17, item 1).

``benchmarks/accuracy.py`` reports the figures on the whole corpus (``benchmarks/ACCURACY.md``);
this tier runs the same generator, the same postprod path (``process_shoot``, local executor,
``--only plan`` per chart) and the same scoring on four sources, with the rendered twins developed
by the numpy emulation of RawTherapee's film curve, so it needs neither RawTherapee nor darktable.

Each ``FLOOR`` below is what today's postprod scores here (measured 2026-11-29 on commit 8001f15,
with a small margin for platform noise). It is a floor, not a target: the decision work (issue 17,
items 2-6) must raise each figure towards its ``TARGET`` and tighten the floor in the same commit;
a change that falls below a floor made a decision worse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import accuracy as acc
from benchmarks.accuracy_corpus import (
    CorpusSpec,
    Renderer,
    build_corpus,
    build_pool,
    cast_gains,
    decode_dng_linear,
    film_curve_inverse,
    film_curve_render,
    shadow_mask,
)

TINY_SOURCES = ("pascal_voc/2008_001322", "skimage/astronaut", "skimage/motorcycle_left",
                "raw/Canon_PowerShot_G2_CRW_0305")
TINY_SPEC = CorpusSpec(long_edge=640, offsets_per_source=3, casts_per_source=2, rotations_per_source=2)


@pytest.fixture(scope="module")
def tiny(testdata: Path, tmp_path_factory: pytest.TempPathFactory):
    """The tiny corpus, every system's decisions on it, and the scored rows (all items pooled)."""
    work = tmp_path_factory.mktemp("accuracy")
    pool = [s for s in build_pool(testdata, work, print, wallpapers=False) if s.id in TINY_SOURCES]
    assert {s.id for s in pool} == set(TINY_SOURCES)
    corpus = build_corpus(work / "corpus", pool, testdata, Renderer("curve_film"), print, spec=TINY_SPEC)
    decisions, crops, _ = acc.decide(corpus, corpus.items, work, rawtherapee=False, jobs=1, baselines=False)
    twins = [i for i in corpus.items if i.split != "reference"]
    rows = acc.evaluate(twins, decisions, crops, False, corpus)
    reference = acc.score(corpus, corpus.items, decisions, crops, False)["reference"]
    return corpus, {**{r.metric: r for r in rows}, **{f"reference: {r.metric}": r for r in reference}}


def value(rows: dict[str, acc.Row], startswith: str, system: str = "postprod") -> float:
    (row,) = [r for name, r in rows.items() if name.startswith(startswith)]
    v = row.value(system)
    assert v is not None, f"no figure for {startswith!r}"
    return v


# --- the corpus's truth holds (tier 1: values written inline) --------------------------------------


def test_film_curve_matches_rawtherapee_on_a_grey_ramp() -> None:
    # rawtherapee-cli 5.9, "Standard Film Curve - ISO Low", 8-bit output of a grey-step DNG (0.18 * 2**ev).
    measured = {-6: 6, -4: 22, -3: 40, -2: 71, -1: 115, 0: 166, 1: 216, 2: 248}
    for ev, out8 in measured.items():
        grey = np.full((1, 1, 3), 0.18 * 2.0**ev)
        display = film_curve_render(grey)[0, 0, 0]
        encoded = 1.055 * display ** (1 / 2.4) - 0.055
        assert encoded * 255 == pytest.approx(out8, abs=0.6), ev
    rgb = np.random.default_rng(1).random((16, 16, 3)) ** 2
    np.testing.assert_allclose(film_curve_render(film_curve_inverse(rgb)), rgb, atol=1e-9)


def test_cast_gains_are_the_light_of_the_black_body() -> None:
    from benchmarks.accuracy_baselines import cast_mired

    # The mired every system's correction is read in (postprod's: the locus light of the same red/blue
    # ratio) reads each injected light within 2 mired, the coolest (-120 mired, 29 600 K) included.
    for delta in (-120.0, -80.0, -50.0, -20.0, 20.0, 50.0, 80.0, 120.0):
        assert cast_mired(cast_gains(delta)) == pytest.approx(delta, abs=2.0)
    warm = cast_gains(50.0)
    assert warm[0] > 1.0 > warm[2]


def test_twins_carry_exactly_the_injected_offset(tiny) -> None:
    corpus, _ = tiny
    by_id = {i.id: i for i in corpus.items}
    ref = next(i for i in corpus.items if i.source == "skimage/astronaut" and i.id.endswith("_raw_ev+0.0"))
    base = decode_dng_linear(corpus.path(ref))
    for item in corpus.items:
        if item.source != ref.source or item.domain != "raw" or item.set not in ("exposure", "cast"):
            continue
        twin = decode_dng_linear(corpus.path(item))
        ok = (base.max(-1) < 0.2) & (base.min(-1) > 0.01) & (twin.max(-1) < 0.95)
        ratio = np.median(twin[ok] / base[ok], axis=0)
        if item.set == "exposure":
            np.testing.assert_allclose(ratio, 2.0 ** -item.truth["ev"], rtol=0.02, err_msg=item.id)
        else:
            gains = cast_gains(item.truth["injected_mired"], item.truth["injected_tint_log2_g"])
            np.testing.assert_allclose(ratio, gains, rtol=0.02, err_msg=item.id)
    assert by_id


def test_shadow_darkens_the_face_centre_by_its_depth() -> None:
    box = (100.0, 80.0, 60.0, 60.0)
    mask = shadow_mask((300, 300), [box])
    centre = mask[95:125, 115:145]
    assert centre.min() > 0.99  # the metered half of the face is fully in the shadow
    assert mask[:, :20].max() < 1e-3 and mask[250:, :].max() < 1e-3  # and the frame's edges are not


def test_crop_geometry_of_the_scoring() -> None:
    face = [100.0, 100.0, 50.0, 50.0]  # with 25 % headroom: y from 87.5 to 150
    assert acc.crop_face_share([0, 0, 400, 400], 0.0, face, (400, 400)) == pytest.approx(1.0)
    assert acc.crop_face_share([125, 0, 300, 400], 0.0, face, (400, 400)) == pytest.approx(0.5)
    assert acc.crop_face_share([0, 200, 400, 200], 0.0, face, (400, 400)) == pytest.approx(0.0)
    assert acc.crop_face_share([0, 100, 400, 300], 0.0, face, (400, 400)) == pytest.approx(50 / 62.5)


# --- floors: today's postprod, which the decision work must raise ----------------------------------
# Measured on this tiny corpus on 2026-11-29 (commit 8001f15): continuous figures carry a margin of
# about 10 % for platform noise; counts are exact (the path is deterministic).


def text(rows: dict[str, acc.Row], startswith: str) -> str:
    (row,) = [r for name, r in rows.items() if name.startswith(startswith)]
    return row.text("postprod")


def test_exposure_raw_twins_floor(tiny) -> None:
    _, rows = tiny
    # TARGET: median <= 0.15 EV, 95th percentile <= 0.4, no wrong sign where |offset| >= 0.7.
    # 0.38 and 0.74 since the face key was refitted on 17 sources of tuning material (2026-12-01; 0.30 and 0.62
    # before): the old key was fitted on four bright photos, this corpus's astronaut among them. On the
    # benchmark's held-out split the same refit moved the RAW twins' median 0.42 -> 0.41 EV and their 95th
    # percentile 1.50 -> 1.05 (ACCURACY.md).
    assert value(rows, "RAW twins (DNG): median |error| (n=") <= 0.42  # FLOOR (0.38 on 2026-12-01)
    assert value(rows, "RAW twins (DNG): 95th percentile") <= 0.8  # FLOOR (0.74; 1.16 before the scene-light meter)
    assert value(rows, "RAW twins (DNG): corrections of the wrong sign") <= 0  # FLOOR = TARGET (holds here)


def test_exposure_rendered_twins_floor(tiny) -> None:
    _, rows = tiny
    # TARGET: median <= 0.3 EV, 95th percentile <= 0.6, no wrong sign where |offset| >= 0.7.
    # 0.40 today, was 0.34: since exposure.min_confidence (0.8) an offset within what well-exposed photographs
    # read (0.62 EV on the frame alone) is left as shot, so a 0.4 EV twin keeps its 0.4 EV; the price of
    # leaving the originals alone (published 2 -> 3 of 3, rendered 0 EV twins 3 -> 4 of 4 below).
    # 0.415 since a rendered source's white point weighs half (spread x2): on the held-out split the median went
    # 0.50 -> 0.49 and the published photos left within 0.3 EV 21 -> 26 of 36 (ACCURACY.md).
    assert value(rows, "rendered twins (JPEG): median |error| (n=") <= 0.42  # FLOOR (0.37 since the face key's refit; 0.94 before)
    assert value(rows, "rendered twins (JPEG): 95th percentile") <= 1.1  # FLOOR (1.00 since the refit, was 0.89; 3.15 before)
    assert value(rows, "rendered twins (JPEG): corrections of the wrong sign") <= 0  # FLOOR = TARGET (2 of 9 before)


def test_fivek_floor(tiny) -> None:
    _, rows = tiny
    # TARGET: all 7 FiveK files within 0.5 EV of their +-1.5 EV truth.
    assert value(rows, "reference: within 0.5 EV of the truth") >= 5 / 7 - 1e-9  # FLOOR (5 of 7 since the face key's refit; 4 before)


def test_do_no_harm_floor(tiny) -> None:
    _, rows = tiny
    # TARGET: >= 90 % of originals need |correction| <= 0.3 EV; median white-balance shift <= 10 mired.
    # 2 of 3, 2 of 4 and 3 of 4 since the face key was refitted on 17 sources of tuning material (3, 4 and 4
    # before): the old key was fitted on four bright photos, this corpus's astronaut among them. The refit
    # ships on the held-out split's figures (published photos within 0.3 EV 18 -> 20 of 36, originals changed
    # by 1 EV or more 19 -> 14 of 116; ACCURACY.md), not on these four sources.
    assert value(rows, "published photos: share needing") >= 2 / 3 - 1e-9  # FLOOR (2 of 3; 3 of 3 with the 4-photo face key)
    assert value(rows, "RAW twins at 0 EV: share needing") >= 2 / 4 - 1e-9  # FLOOR (2 of 4; 4 of 4 with the 4-photo face key)
    assert value(rows, "rendered twins at 0 EV: share needing") >= 3 / 4 - 1e-9  # FLOOR (3 of 4; 4 of 4 with it)
    # 15.3 today, was 10.7: rendered sources' white balance is read in their scene light (through the inverse
    # tone curve, wb6), where their own colour reads as their RAW twins' does instead of squeezed by the curve;
    # the rendered cast twins' error fell with it (benchmarks/wb_decompose.py: tuning 50.0 -> 31.9 mired).
    assert value(rows, "median |white-balance shift| on all originals") <= 16  # FLOOR (15.3 mired today; was 10.7)


def test_casts_floor(tiny) -> None:
    _, rows = tiny
    # TARGET: median error <= 10 mired, no correction in the wrong direction.
    assert value(rows, "RAW cast twins: median |error| (") <= 19  # FLOOR (17.3 mired today; was 18.9)
    # 28.3 today, was 23.9: the plan leaves a cast as shot when its four light cues disagree (confidence
    # < min_confidence), and on developed JPEGs they disagree more (the tone curve bends each cue its own
    # way), so two of the six rendered casts here are left to a retoucher, flagged, instead of guessed.
    assert value(rows, "rendered cast twins: median |error| (") <= 31  # FLOOR (28.3 mired today)
    assert value(rows, "RAW cast twins: corrections in the wrong direction") <= 0  # FLOOR = TARGET (holds here)
    assert value(rows, "rendered cast twins: corrections in the wrong direction") <= 0  # FLOOR = TARGET


def test_the_colour_flags_rate_is_reported_for_cast_twins_and_originals(tiny) -> None:
    # A diagnostic, not a floor: the share of cast twins (50 mired or more) and of uncast originals whose colour
    # the plan flags or proposes to a person, side by side, so a flag that fires as often on both shows.
    corpus, rows = tiny
    (row,) = [r for name, r in rows.items() if name.startswith("colour flagged for a retoucher's eye")]
    text = row.text("postprod")
    casts = [i for i in corpus.items if i.set == "cast" and abs(i.truth["mired"]) >= 50 and i.split != "reference"]
    originals = [i for i in corpus.items if i.set == "original" and i.split != "reference"]
    assert "cast twins of 50 mired or more: " in text and f"(n={len(casts)})" in text, text
    assert "uncast originals: " in text and f"(n={len(originals)})" in text, text
    assert 0.0 <= row.value("postprod") <= 1.0


def test_real_white_balance_floor(tiny) -> None:
    _, rows = tiny
    # TARGET: direction right on every wb/ photo, the pair within 0.5 of its log2 R/B truth (+2.13),
    # the intended warmth kept, and skin (hue 15-85 deg, chroma >= 10) on every face after the correction.
    assert value(rows, "reference: real wrong-white-balance photos (wb/): direction right") >= 1.0  # FLOOR = TARGET
    assert value(rows, "reference: wb/pairs: log2 R/B") <= 1.4  # FLOOR (|error| 1.34 today)
    assert value(rows, "reference: warm-intended photos keep some warmth") >= 1.0  # FLOOR = TARGET (2 of 2)
    skin = [r for name, r in rows.items() if name.startswith("skin kept")]
    assert skin[0].value("postprod") >= 1.0  # FLOOR = TARGET (28 of 28 faces on the twins today; was 27)


def test_faces_to_brighten_floor(tiny) -> None:
    _, rows = tiny
    # TARGET: every shadowed face found and brightened (JPEG and DNG), amount within 0.3 EV of the shadow,
    # no lift on a lit face. FLOOR: 2 of 3 found in each (0 of 3 before the exposure was keyed on the faces
    # in the brightest light; the miss is the astronaut, whose only face is the shadowed one).
    assert text(rows, "shadowed faces found and brightened (JPEG)").endswith("of 3 (67 %)") or \
        value(rows, "shadowed faces found and brightened (JPEG)") > 2 / 3
    assert text(rows, "shadowed faces found and brightened (DNG twins)").endswith("of 3 (67 %)") or \
        value(rows, "shadowed faces found and brightened (DNG twins)") > 2 / 3
    assert value(rows, "amount within 0.3 EV of the shadow's depth") >= 3 / 6 - 1e-9  # FLOOR (3 of 6)
    assert value(rows, "lit faces given a lift") <= 0  # FLOOR = TARGET (0 of 18 today)
    assert value(rows, "faces at the frame edge detected") >= 1.0  # FLOOR (12 of 12 today)


def test_crops_and_straightening_floor(tiny) -> None:
    _, rows = tiny
    # TARGET: no unflagged crop cuts a face; rotations recovered within 0.3 deg (median); none applied
    # where no tilt was injected.
    assert value(rows, "unflagged crops that cut a face") <= 0  # FLOOR = TARGET (0 of 104 crops today; was 48)
    # TARGET: no rendition enlarged beyond its chart's max_upscale without a flag (the naive baseline, which
    # delivers every box as asked, is charged for each one; the row must count some renditions).
    assert value(rows, "renditions enlarged beyond") <= 0  # FLOOR = TARGET
    assert value(rows, "renditions enlarged beyond", "naive") > 0
    # 2.64 today, was 2.45: two items only, neither recovered within 0.3 deg before or after.
    assert value(rows, "rotation: median |error|") <= 2.8  # FLOOR (2.64 deg today)
    assert value(rows, "rotations applied to published photos") <= 0  # FLOOR = TARGET (0 of 3 today; was 1)


def test_backlit_floor(tiny) -> None:
    # skimage's motorcycle (no face), its top developed 1.5 EV over and its ground 2 EV under: its shadows' lift is
    # proposed, and accepted, brings its ground toward the published one without passing it, and leaves its top
    # where it was, where a global push brightens it further.
    corpus, rows = tiny
    (twin,) = [i for i in corpus.items if i.set == "backlit"]
    assert twin.source == "skimage/motorcycle_left"
    for name, r in rows.items():
        if "ground" in name or "top (" in name or "newly clipped" in name or "shadow lift" in name:
            print(name, r.text("postprod"))
    assert value(rows, "backlit twins given a shadow lift") == 1.0
    assert value(rows, "ground: median move toward the published level") >= 0.3
    assert value(rows, "ground: median error with postprod's proposed lift accepted") <= 0.0
    assert value(rows, "ground: lifted past its published level") == 0
    assert value(rows, "pixels newly clipped by the correction") == pytest.approx(0.0, abs=0.05)
