"""The names a run's outputs keep (what stale-output removal spares), held as one buffer."""

from __future__ import annotations

from pipeline.outputs.shoot import NameDigests, _Names


def test_every_name_comes_back_once_whatever_its_characters() -> None:
    names = _Names()
    odd = "exports/web/caf\udce9.jpg"  # a file name that is not UTF-8 (os.fsdecode's surrogate escape)
    names.update(["exports/web/IMG_0001.jpg", "xmp/Ünïcode – 1.xmp", odd])
    names.add("exports/web/IMG_0001.jpg")
    names.add("instructions/a b.json")
    want = {"exports/web/IMG_0001.jpg", "xmp/Ünïcode – 1.xmp", odd, "instructions/a b.json"}
    assert set(names.names()) == want and len(list(names.names())) == 5  # read again: the same, twice as noted
    assert list(_Names().names()) == []
    kept = NameDigests(names.names())
    assert len(kept) == 4 and all(n in kept for n in want)
    assert "exports/web/IMG_0002.jpg" not in kept and "" not in kept and 1 not in kept
    assert "anything" not in NameDigests([])


def test_names_are_read_back_whole_across_blocks(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(_Names, "BLOCK", 7)  # names cut by every block's edge
    names = _Names()
    want = [f"exports/web/IMG_{k:04d}.jpg" for k in range(50)] + ["x"]
    names.update(want)
    assert list(names.names()) == want
