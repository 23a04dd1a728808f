"""The extra tuning pool of the accuracy corpus stays out of the benchmark's splits (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.accuracy_corpus import (
    DEBIAN_WALLPAPERS,
    EXTRA_SPLIT,
    EXTRA_TUNING_PHOTOS,
    CorpusSpec,
    Renderer,
    assign_splits,
    build_corpus,
    build_pool,
)


def test_extra_pool_is_not_in_the_benchmark_pool(testdata: Path, tmp_path: Path) -> None:
    pool = build_pool(testdata, tmp_path, print, wallpapers=False)
    assert pool and not any(s.id.startswith("extra/") for s in pool)
    # No package of the extra pool is one the benchmark's pool downloads from.
    assert not set(EXTRA_TUNING_PHOTOS) & set(DEBIAN_WALLPAPERS)
    # The splits of the benchmark's pool are a function of that pool alone.
    assert assign_splits(pool) == assign_splits(list(reversed(pool)))


def test_extra_split_puts_every_item_in_it(testdata: Path, tmp_path: Path) -> None:
    (coffee,) = [s for s in build_pool(testdata, tmp_path, print, wallpapers=False) if s.id == "skimage/coffee"]
    spec = CorpusSpec(long_edge=256, offsets_per_source=1, casts_per_source=1, rotations_per_source=0)
    corpus = build_corpus(tmp_path / "extra", [coffee], testdata, Renderer("curve_film"), print,
                          references=False, spec=spec, split=EXTRA_SPLIT)
    assert corpus.splits == {"skimage/coffee": EXTRA_SPLIT}
    # The published photo, the 0 EV and one exposure twin, one cast: RAW and rendered each; its backlit twin
    # (a photo without faces).
    assert sorted((i.set, i.domain) for i in corpus.items) == [
        ("backlit", "rendered"), ("cast", "raw"), ("cast", "rendered"), ("exposure", "raw"), ("exposure", "rendered"),
        ("original", "raw"), ("original", "rendered"), ("original", "rendered")]
    assert {i.split for i in corpus.items} == {EXTRA_SPLIT}
    assert all(i.id.startswith("X_") for i in corpus.items)
    manifest = json.loads((tmp_path / "extra" / "manifest.json").read_text())
    assert {i["split"] for i in manifest["items"]} == {EXTRA_SPLIT}
