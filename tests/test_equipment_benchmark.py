"""How benchmarks/equipment.py scores dust spots against the corpus's particles."""

from __future__ import annotations

from benchmarks.equipment import dust_patches, match_dust

W, H = 3000, 2000


def particle(x: float, y: float, r22: float) -> dict:
    return {"x": x, "y": y, "r22": r22, "s22": 0.3}


# The tuning split's PPT-0003-DUSTY pair: 15.5 photosites apart, radii 12.0 and 4.5 at f/22 (their
# shadows overlap at every aperture), and the one spot the detector reports on them.
PAIR = [particle(0.4433, 0.5878, 11.97), particle(0.4480, 0.5909, 4.48)]
PAIR_SPOT = (0.4473, 0.5877)


def test_overlapping_shadows_are_one_patch_found_by_one_spot():
    assert dust_patches(PAIR, W, H) == [0, 0]
    m = match_dust([PAIR_SPOT], PAIR, W, H)
    # One patch, found; the spot went to the nearer (small) particle, not the large one.
    assert (m.patches, m.found_patches, m.matched, m.false) == (1, {0}, {1}, 0)


def test_shadows_that_do_not_touch_are_two_patches():
    # Centres 20 photosites apart, radii 12 + 4.5: a gap at f/22, so two targets; one spot finds one.
    apart = [particle(0.4400, 0.5900, 12.0), particle(0.4400 + 20 / W, 0.5900, 4.5)]
    assert dust_patches(apart, W, H) == [0, 1]
    m = match_dust([(0.4400, 0.5900)], apart, W, H)
    assert (m.patches, len(m.found_patches), m.false) == (2, 1, 0)


def test_patches_chain_and_keep_their_order():
    chain = [particle(0.10, 0.10, 10), particle(0.90, 0.90, 10), particle(0.10 + 15 / W, 0.10, 10),
             particle(0.10 + 30 / W, 0.10, 10)]
    assert dust_patches(chain, W, H) == [0, 1, 0, 0]


def test_both_particles_of_a_patch_resolved_is_not_false():
    m = match_dust([(PAIR[0]["x"], PAIR[0]["y"]), (PAIR[1]["x"], PAIR[1]["y"])], PAIR, W, H)
    assert (m.patches, m.found_patches, m.matched, m.false) == (1, {0}, {0, 1}, 0)


def test_a_second_spot_on_a_lone_particle_and_a_spot_far_from_all_are_false():
    lone = [particle(0.5, 0.5, 8.0)]
    m = match_dust([(0.5, 0.5), (0.505, 0.5), (0.2, 0.2)], lone, W, H)
    assert (m.patches, m.found_patches, m.false) == (1, {0}, 2)
    assert m.pos_err == [0.0]


def test_a_spot_beyond_two_percent_finds_nothing():
    lone = [particle(0.5, 0.5, 8.0)]
    m = match_dust([(0.5 + 0.021, 0.5)], lone, W, H)
    assert (m.found_patches, m.false) == (set(), 1)
