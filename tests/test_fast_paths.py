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
