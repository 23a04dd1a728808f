"""The names a run's outputs keep (what stale-output removal spares), held as one buffer."""

from __future__ import annotations

from pipeline.outputs.shoot import _Names


def test_every_name_comes_back_once_whatever_its_characters() -> None:
    names = _Names()
    odd = "exports/web/caf\udce9.jpg"  # a file name that is not UTF-8 (os.fsdecode's surrogate escape)
    names.update(["exports/web/IMG_0001.jpg", "xmp/Ünïcode – 1.xmp", odd])
    names.add("exports/web/IMG_0001.jpg")
    names.add("instructions/a b.json")
    assert names.as_set() == {"exports/web/IMG_0001.jpg", "xmp/Ünïcode – 1.xmp", odd, "instructions/a b.json"}
    assert _Names().as_set() == set()
