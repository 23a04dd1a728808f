"""Every fast path gives the outputs of the path it shortcuts, bit for bit.

Speed work (issue 16) replaced computations with cheaper ones that must not
move a pixel or a measured number: each test here runs the fast path and the
reference computation on the same input and requires identical arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.imaging.color import Proxy, to_srgb8, u16_to_linear, u16_to_srgb8
from pipeline.imaging.decode import decode_proxy
from pipeline.kernel.records import SourceKind


def test_srgb8_table_gives_every_16_bit_value_its_computed_code() -> None:
    values = np.arange(65536, dtype=np.uint16)
    reference = to_srgb8(u16_to_linear(values))
    np.testing.assert_array_equal(u16_to_srgb8(values), reference)
    # In an image's layout too (vectorised code must not depend on an element's position).
    rng = np.random.default_rng(1)
    image = rng.integers(0, 65536, size=(37, 53, 3), dtype=np.uint16)
    np.testing.assert_array_equal(u16_to_srgb8(image), to_srgb8(u16_to_linear(image)))
    with pytest.raises(ValueError, match="uint16"):
        u16_to_srgb8(image.astype(np.int32))


@pytest.mark.parametrize("name", ["Canon_PowerShot_G2_CRW_0304.CRW", "Kodak_DC120_DC120IMG_P003908.KDC",
                                  "tinydng_colorchart.dng"])
def test_raw_proxy_srgb8_is_the_float_proxy_encoded(raw_dir: Path, name: str) -> None:
    decoded = decode_proxy(raw_dir / name, SourceKind.RAW, 1600, 250_000_000)
    assert decoded.rgb16 is not None
    np.testing.assert_array_equal(decoded.rgb, u16_to_linear(decoded.rgb16))
    proxy = Proxy(decoded.rgb, 1.0, decoded.rgb16)
    np.testing.assert_array_equal(proxy.srgb8, to_srgb8(decoded.rgb))


def test_near_duplicates_pairs_as_the_pairwise_loop_did() -> None:
    import random
    from types import SimpleNamespace

    from pipeline.kernel.records import Status
    from pipeline.planning.rules.duplicates import near_duplicates

    def pairwise(records: list, max_distance: int) -> dict[int, int]:  # the loop numpy replaced
        hashes = [(i, int(r.content.phash, 16)) for i, r in enumerate(records)
                  if r.content.phash and r.status is Status.OK and r.duplicate_of is None]
        out = {}
        for k, (i, hi) in enumerate(hashes):
            for j, hj in hashes[:k]:
                if (hi ^ hj).bit_count() <= max_distance:
                    out[i] = j
                    break
        return out

    rng = random.Random(16)
    base = [rng.getrandbits(64) for _ in range(150)]
    near = [b ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for b in base[:100]]
    hashes = base + near + [rng.getrandbits(64) for _ in range(150)]
    rng.shuffle(hashes)
    records = [SimpleNamespace(content=SimpleNamespace(phash=f"{h:016x}" if i % 17 else None),
                               status=Status.OK if i % 13 else Status.FAILED,
                               duplicate_of="x" if i % 29 == 0 else None) for i, h in enumerate(hashes)]
    for distance in (0, 2, 6, 12):
        expected = pairwise(records, distance)
        assert near_duplicates(records, distance) == expected
    assert pairwise(records, 2)  # the set has near duplicates to find


def test_brightest_channel_is_the_max_over_the_channels() -> None:
    from pipeline.imaging.color import brightest_channel

    rng = np.random.default_rng(3)
    image = rng.normal(0.5, 0.4, size=(41, 67, 3)).astype(np.float32)
    image[5, 7, 1] = np.nan  # propagated, as max does
    counts = rng.integers(0, 65536, size=(13, 17, 3), dtype=np.uint16)
    for a in (image, image[3:30:2, 10:50], image.reshape(-1, 3), counts):
        np.testing.assert_array_equal(brightest_channel(a), a.max(axis=-1))


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_photosite_noise_model_medians_are_opencvs_3x3_median(dtype: type) -> None:
    """The scan's 3x3 medians (a sorting network on shifted views of a colour plane, never copied)
    are OpenCV's medianBlur of the plane, at every position the noise model reads."""
    import cv2

    from pipeline.imaging.sensor_defects import _median3x3

    rng = np.random.default_rng(4)
    cfa = rng.integers(500, 4000, size=(90, 124)).astype(dtype)
    cfa[::7, ::5] = 0  # ties and extremes
    plane = cfa[1::2, 0::2]  # a strided view, as the scan passes it
    reference = cv2.medianBlur(np.ascontiguousarray(plane), 3)
    for step in (1, 2, 5):
        rows, cols = slice(1, plane.shape[0] - 1, step), slice(1, plane.shape[1] - 1, step)
        got = _median3x3(plane, rows, cols)
        assert got.dtype == plane.dtype
        np.testing.assert_array_equal(got, reference[rows, cols])
