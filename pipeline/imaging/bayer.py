"""Full-resolution RAW decode by regions, for sensors too large to demosaic whole in a worker.

LibRaw demosaics a file in one piece: for a 100 MP medium-format frame its
buffers peak at 1.7 GB (the photosites, a four-channel image and the 16-bit
output), more than a worker should hold. The render of a full-resolution
rendition of such a file reads the photosites LibRaw unpacked (2 bytes
each, 200 MB at 100 MP) and develops any region of the oriented frame on
demand, with LibRaw's own colour steps:

1. black subtracted per photosite (``black_level_per_channel``, clamped at 0);
2. the camera white balance as LibRaw scales it (``use_camera_wb``, highlight
   mode "clip"): each channel times ``cam_mul[c] / min(cam_mul) * 65535 /
   (white - black)``, truncated and clipped to 16 bits;
3. demosaicked with OpenCV's edge-aware Bayer interpolation (LibRaw's default
   is AHD, which has no region-wise form: the one step that differs; on a
   24 MP frame the two agree to a CIEDE2000 of 0.14 on average,
   tests/test_bayer.py);
4. camera RGB to linear sRGB with LibRaw's ``rgb_cam`` matrix, clipped to 16 bits;
5. turned to the file's orientation (LibRaw's ``flip``).

Regions overlap their neighbours' photosites by a margin wider than the
demosaic's reach, so a frame developed in strips is the frame developed
whole, to the bit. Only 2x2 Bayer sensors with square photosites are
developed here (:func:`supports`); anything else goes through LibRaw whole.
"""

from __future__ import annotations

import cv2
import numpy as np
import rawpy

from pipeline.kernel.errors import InputError

# OpenCV names a Bayer layout by the 2x2 block that starts at the second row
# and column: an RGGB sensor is COLOR_BayerBG2RGB to it.
_OPENCV_CODE = {
    "RGGB": cv2.COLOR_BayerBG2RGB_EA,
    "BGGR": cv2.COLOR_BayerRG2RGB_EA,
    "GRBG": cv2.COLOR_BayerGB2RGB_EA,
    "GBRG": cv2.COLOR_BayerGR2RGB_EA,
}
#: Photosites around a region developed with it (OpenCV's edge-aware demosaic reads 2 around a pixel).
MARGIN = 8


def _layout(raw: rawpy.RawPy) -> str | None:
    pattern = np.asarray(raw.raw_pattern)
    desc = bytes(raw.color_desc).decode("ascii", "replace")
    if pattern.shape != (2, 2) or len(desc) < 4:
        return None
    letters = "".join(desc[int(i)] for i in pattern.reshape(-1))
    return letters if letters in _OPENCV_CODE else None


# dcraw's xyz_rgb: linear sRGB (D65) to XYZ.
_XYZ_RGB = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])


def rgb_cam(raw: rawpy.RawPy) -> np.ndarray:
    """LibRaw's camera RGB -> linear sRGB matrix (``rgb_cam``), which rawpy does not expose.

    From the camera's XYZ -> camera matrix (``rgb_xyz_matrix``, LibRaw's
    ``cam_xyz``) as dcraw's ``cam_xyz_coeff`` makes it (rows normalised so
    white stays white, then the pseudo-inverse); a DNG whose matrix LibRaw
    keeps as ``cmatrix`` gives it directly.

    Returns
    -------
    ndarray, (3, 3)

    Raises
    ------
    InputError
        If the file carries neither matrix.
    """
    cam_xyz = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
    if np.any(cam_xyz):
        cam_rgb = cam_xyz @ _XYZ_RGB
        cam_rgb /= cam_rgb.sum(axis=1, keepdims=True)
        return np.linalg.pinv(cam_rgb)
    cmatrix = np.asarray(raw.color_matrix, dtype=np.float64)[:, :3]
    if np.any(cmatrix):
        return cmatrix
    raise InputError("the RAW file carries no colour matrix LibRaw exposes: develop it with LibRaw")


def supports(raw: rawpy.RawPy, flip: int | None = None) -> bool:
    """Whether :class:`BayerFrame` can develop this (unpacked or not) file: a 2x2 RGB Bayer sensor, square photosites;
    ``flip`` as :class:`BayerFrame`'s."""
    try:
        s = raw.sizes
        return (
            raw.num_colors == 3
            and _layout(raw) is not None
            and (s.pixel_aspect or 1.0) == 1.0
            and (s.flip if flip is None else flip) in (0, 3, 5, 6)
        )
    except (rawpy.LibRawError, AttributeError, ValueError):
        return False


class BayerFrame:
    """The oriented full-resolution frame of a Bayer RAW, developed region by region.

    Parameters
    ----------
    raw : rawpy.RawPy
        The opened file; unpacked here if it is not yet. It must stay open
        while regions are asked for (the photosites are LibRaw's buffer).
    flip : int, optional
        LibRaw's turn to develop it in (:func:`~pipeline.imaging.decode.develop_flip`: the photographer's XMP
        turned it); the file's own when None.

    Attributes
    ----------
    width, height : int
        Size of the oriented frame (LibRaw's full-size output).

    Raises
    ------
    InputError
        If LibRaw cannot unpack the file, or it is not a sensor this module
        develops (see :func:`supports`).
    """

    def __init__(self, raw: rawpy.RawPy, flip: int | None = None) -> None:
        if not supports(raw, flip):
            raise InputError("not a 2x2 Bayer sensor with square photosites: develop it with LibRaw")
        try:
            mosaic = raw.raw_image_visible
        except rawpy.LibRawError as exc:
            raise InputError(f"cannot unpack the RAW data: {exc}") from None
        self.raw = raw
        self.mosaic = mosaic
        s = raw.sizes
        self.flip = s.flip if flip is None else flip
        self.sensor_height, self.sensor_width = mosaic.shape
        self.width, self.height = (self.sensor_height, self.sensor_width) if self.flip & 4 else mosaic.shape[::-1]
        layout = _layout(raw)
        assert layout is not None
        self.code = _OPENCV_CODE[layout]
        pattern = np.asarray(raw.raw_pattern)
        black = np.asarray(raw.black_level_per_channel, dtype=np.float32)
        cam_mul = np.asarray(raw.camera_whitebalance, dtype=np.float64)
        if not np.all(cam_mul[:3] > 0):
            cam_mul = np.asarray(raw.daylight_whitebalance, dtype=np.float64)
        if cam_mul[3] == 0:
            cam_mul[3] = cam_mul[1]
        white = float(raw.white_level)
        black_mean = float(black.mean())
        gain = cam_mul / cam_mul.min() * 65535.0 / max(1.0, white - black_mean)
        # Per 2x2 position of the pattern: black and gain of its channel.
        self._black = black[pattern].astype(np.float32)
        self._gain = gain[pattern].astype(np.float32)
        self._matrix = rgb_cam(raw).astype(np.float32)

    # --- geometry -----------------------------------------------------------------------

    def _to_sensor(self, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
        """The sensor box under an oriented box (LibRaw's flip_index: swap, then mirror)."""
        if self.flip & 4:
            x0, y0, x1, y1 = y0, x0, y1, x1  # oriented (row, col) = sensor (col, row) before mirroring
        h, w = self.sensor_height, self.sensor_width
        if self.flip & 2:
            y0, y1 = h - y1, h - y0
        if self.flip & 1:
            x0, x1 = w - x1, w - x0
        return x0, y0, x1, y1

    def _orient(self, block: np.ndarray) -> np.ndarray:
        if self.flip & 2:
            block = block[::-1]
        if self.flip & 1:
            block = block[:, ::-1]
        if self.flip & 4:
            block = block.transpose(1, 0, 2)
        return np.ascontiguousarray(block)

    # --- development --------------------------------------------------------------------

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Linear 16-bit sRGB of the oriented frame's pixels ``[y0:y1, x0:x1]`` (clipped to the frame).

        Returns
        -------
        ndarray, uint16, (y1 - y0, x1 - x0, 3)
            As LibRaw's full-size decode with the pipeline's settings
            (:func:`pipeline.imaging.decode.decode_raw_linear`), but for the demosaic.

        Raises
        ------
        ValueError
            If the box is empty or outside the frame.
        """
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(self.width, x1), min(self.height, y1)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"region ({x0}, {y0}, {x1}, {y1}) is empty or outside the {self.width}x{self.height} frame")
        sx0, sy0, sx1, sy1 = self._to_sensor(x0, y0, x1, y1)
        # With a margin, on the pattern's 2x2 grid so the block starts on the pattern's first photosite.
        bx0 = max(0, (sx0 - MARGIN) & ~1)
        by0 = max(0, (sy0 - MARGIN) & ~1)
        bx1 = min(self.sensor_width, sx1 + MARGIN)
        by1 = min(self.sensor_height, sy1 + MARGIN)
        rgb = self._develop(self.mosaic[by0:by1, bx0:bx1])
        sensor = rgb[sy0 - by0 : sy1 - by0, sx0 - bx0 : sx1 - bx0]
        return self._orient(sensor)

    def _develop(self, block: np.ndarray) -> np.ndarray:
        h, w = block.shape
        black = np.tile(self._black, (-(-h // 2), -(-w // 2)))[:h, :w]
        gain = np.tile(self._gain, (-(-h // 2), -(-w // 2)))[:h, :w]
        scaled = block.astype(np.float32)
        scaled -= black
        np.maximum(scaled, 0.0, out=scaled)
        scaled *= gain
        np.minimum(scaled, 65535.0, out=scaled)
        cfa = scaled.astype(np.uint16)  # truncates, as LibRaw's integer scaling does
        rgb = cv2.demosaicing(cfa, self.code).astype(np.float32)
        cv2.transform(rgb, self._matrix, dst=rgb)
        np.clip(rgb, 0.0, 65535.0, out=rgb)
        return rgb.astype(np.uint16)

    def whole(self) -> np.ndarray:
        """The whole frame at once (tests and small files; the point of the class is not to)."""
        return self.region(0, 0, self.width, self.height)
