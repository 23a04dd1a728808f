"""Work run beside a stage's own (pipeline.kernel.beside): the in-process executor's CPUs, the same results."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from pipeline.executors import usable_cpus
from pipeline.executors.local import LocalExecutor
from pipeline.imaging.color import luminance
from pipeline.imaging.decode import decode_proxy, decode_raster
from pipeline.imaging.measure import measure_all
from pipeline.kernel.beside import Later, beside
from pipeline.kernel.records import SourceKind


def test_on_one_thread_the_call_waits_for_its_result_and_runs_once() -> None:
    calls: list[int] = []
    later = beside(1, lambda x: calls.append(x) or x * 2, 21)
    assert isinstance(later, Later) and calls == []  # not run until asked for
    assert later.result() == 42 and later.result() == 42
    assert calls == [21]


def test_on_more_threads_the_call_runs_in_another_thread_now() -> None:
    main = threading.get_ident()
    started = threading.Event()

    def work() -> int:
        started.set()
        return threading.get_ident()

    future = beside(2, work)
    assert isinstance(future, Future)
    assert started.wait(5.0)  # started without being asked for
    assert future.result(5.0) != main


@pytest.mark.parametrize("threads", [1, 2])
def test_an_error_reaches_whoever_asks_for_the_result(threads: int) -> None:
    def fails() -> None:
        raise ValueError("the file's fault")

    pending = beside(threads, fails)
    with pytest.raises(ValueError, match="the file's fault"):
        pending.result()


def test_the_local_executor_gives_its_images_every_usable_cpu() -> None:
    assert LocalExecutor().threads == usable_cpus() >= 1
    assert LocalExecutor(threads=1).threads == 1


def test_the_measures_are_the_same_with_the_colour_and_lines_beside(testdata: Path) -> None:
    path = testdata / "wb" / "Flickr_Christopher_Schmidt_CC_BY_2.0.jpg"
    rgb = decode_raster(path, 1600, 100_000_000)[0]
    luma = luminance(rgb)
    before = rgb.copy()
    alone = measure_all(rgb, True, luma=luma, threads=1)
    beside_ = measure_all(rgb, True, luma=luma, threads=3)
    assert beside_ == alone
    assert alone.colour.cast_mired is not None and alone.lines.lines_found is not None  # measured, not empty
    assert np.array_equal(rgb, before)  # the threads only read the proxy


def test_the_photosite_scan_beside_libraw_finds_what_it_finds_alone(raw_dir: Path) -> None:
    path = raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW"
    alone = decode_proxy(path, SourceKind.RAW, 1600, 250_000_000, scan_photosites=True, threads=1)
    beside_ = decode_proxy(path, SourceKind.RAW, 1600, 250_000_000, scan_photosites=True, threads=2)
    assert alone.photosites is not None and alone.photosites.skipped is None  # a Bayer sensor: scanned
    assert beside_.photosites == alone.photosites
    assert np.array_equal(beside_.rgb, alone.rgb)


def test_the_renditions_rendered_beside_each_other_are_the_ones_rendered_in_turn(
        testdata: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.imaging.render as render
    from charts.schema import Rendition
    from pipeline.imaging.render import Adjustments, render_renditions

    asked: list[int] = []
    monkeypatch.setattr(render, "beside", lambda threads, *a, **k: (asked.append(threads), beside(threads, *a, **k))[1])

    rgb = decode_raster(testdata / "wb" / "Flickr_Christopher_Schmidt_CC_BY_2.0.jpg", 1600, 100_000_000)[0]
    h, w = rgb.shape[:2]
    renditions = {
        "web": Rendition(long_edge_px=800),
        "square": Rendition(crop="1:1", width_px=500, height_px=500, format="tiff", bit_depth=16),
        "print": Rendition(crop="4:5", long_edge_px=1000, color_space="adobe_rgb"),
    }
    adjustments = Adjustments(exposure_ev=0.7, angle_deg=1.5)
    in_turn = render_renditions(rgb, w, h, adjustments, renditions, threads=1)
    together = render_renditions(rgb, w, h, adjustments, renditions, threads=3)
    assert asked == [1, 1, 1, 3, 3, 3]  # in threads the second time
    assert list(together) == list(in_turn) == list(renditions)
    for name in renditions:
        assert together[name].dtype == in_turn[name].dtype and np.array_equal(together[name], in_turn[name]), name
    asked.clear()
    monkeypatch.setattr(render, "BESIDE_MAX_PIXELS", 1_000_000)  # a master beside a print crop: in turn
    assert all(np.array_equal(a, b) for a, b in zip(render_renditions(rgb, w, h, adjustments, renditions,
                                                                      threads=3).values(), in_turn.values()))
    assert asked == [1, 1, 1]
